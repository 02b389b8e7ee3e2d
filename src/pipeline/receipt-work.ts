import type { EventDraft } from '../domain/build-event.ts'
import type { Rejection } from '../domain/validation.ts'
import type { ClaimedReceipt } from '../storage/receipts-repository.ts'

/** GET a provider JSON document as the receipt's user; tokens, refresh and the one retry after a 401 are handled. */
export interface AuthorizedApi {
  getJson(path: string, query?: Readonly<Record<string, string>>): Promise<unknown>
}

/** What working off one receipt changes: the pipeline commits all of it, with the receipt, in one transaction. */
export interface ReceiptChanges {
  drafts: EventDraft[]
  /** Provider record ids whose stored events must go (deleted documents, retracted sleeps). */
  retracted: string[]
  /**
   * Records whose drafts above are complete at the given revision: their stored events that the drafts no longer
   * yield (a field the provider cleared) are deleted. Heart-rate rows and other instants are not listed.
   */
  complete: Array<{ sourceRecordId: string, sourceUpdatedAt: string | null }>
  /** Documents (or rows) that could not be mapped; the rest of the receipt still counts. */
  rejected: Rejection[]
}

/** A provider's part of the worker: fetch what a receipt names and map it to drafts. Knows no storage. */
export type ReceiptHandler = (receipt: ClaimedReceipt, api: AuthorizedApi) => Promise<ReceiptChanges>

export const emptyChanges = (): ReceiptChanges => ({ drafts: [], retracted: [], complete: [], rejected: [] })
