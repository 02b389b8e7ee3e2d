import type { Queryable } from '../storage/database.ts'
import { insertReceipts, RECEIPT_PRIORITY, type ReceiptProvider } from '../storage/receipts-repository.ts'

const DAY_MS = 86_400_000

/** Days of the reconciliation window: webhooks missed in that time cost latency, not data. */
export const RECONCILE_DAYS = 2

export interface RangeRequest {
  provider: ReceiptProvider
  providerUserId: string
  /** The provider's collections to fetch (one receipt each, so each pages and retries on its own). */
  dataTypes: readonly string[]
  kind: 'backfill' | 'reconcile'
  endMs: number
  days: number
  /** Makes the receipts unique: the connect time for a backfill, the period for a reconciliation round. */
  dedupSuffix: string
}

/**
 * Queues the fetch of a time range as ordinary receipts, so it gets the worker pool's retries, backoff, budget
 * and dead-lettering for free, behind live notifications in priority. Returns how many were new.
 */
export async function enqueueRange(db: Queryable, request: RangeRequest): Promise<number> {
  if (request.days <= 0) return 0
  const range = { start: new Date(request.endMs - request.days * DAY_MS), end: new Date(request.endMs) }
  const stored = await insertReceipts(db, request.dataTypes.map((dataType) => ({
    provider: request.provider,
    dedupKey: `${request.kind}:${request.providerUserId}:${request.dedupSuffix}:${dataType}`,
    eventType: request.kind,
    dataType,
    objectId: null,
    providerUserId: request.providerUserId,
    status: 'pending' as const,
    priority: RECEIPT_PRIORITY[request.kind],
    range
  })))
  return stored.filter(Boolean).length
}
