import type { AuthorizedApi, ReceiptChanges, ReceiptHandler } from '../../pipeline/receipt-work.ts'
import { emptyChanges } from '../../pipeline/receipt-work.ts'
import type { ClaimedReceipt } from '../../storage/receipts-repository.ts'
import { pages, type PagingStyle } from '../client/paging.ts'
import { ProviderRequestError } from '../client/provider-client.ts'
import { asObject } from '../json-object.ts'
import {
  normalizeWhoopCycle, normalizeWhoopRecovery, normalizeWhoopSleep, normalizeWhoopWorkout, whoopRecoveryRecordId, type WhoopOutcome
} from './normalize.ts'

const API = '/developer/v2'
const WHOOP_PAGING: PagingStyle = { itemsField: 'records', cursorParam: 'nextToken' }
/** WHOOP's largest page (reference §2.3): fewer requests of the shared 100-a-minute budget. */
const PAGE_LIMIT = '25'
const DAY_MS = 86_400_000

const sleepPath = (id: string): string => `${API}/activity/sleep/${encodeURIComponent(id)}`
const workoutPath = (id: string): string => `${API}/activity/workout/${encodeURIComponent(id)}`
const cycleRecoveryPath = (cycleId: string): string => `${API}/cycle/${encodeURIComponent(cycleId)}/recovery`

/**
 * Works off one WHOOP receipt. A notification names one document: `*.deleted` retracts its events; `*.updated`
 * fetches it (a 404 means it is gone, so its events are retracted too). A recovery has no route of its own: the
 * notification names its SLEEP, whose `cycle_id` leads to `/cycle/{id}/recovery`. Documents not yet scored yield
 * nothing now; WHOOP notifies again once they are. A range receipt (reconciliation, backfill) pages through one
 * collection; cycles (day strain) come only this way, as WHOOP sends no webhook for them.
 */
export const handleWhoopReceipt: ReceiptHandler = async (receipt, api) => {
  if (receipt.rangeStart !== null && receipt.rangeEnd !== null) return fetchRange(receipt, api, receipt.rangeStart, receipt.rangeEnd)
  const changes = emptyChanges()
  const id = receipt.objectId
  if (id === null) return changes
  if (receipt.eventType === 'deleted') {
    // A recovery is deleted with its sleep (reference §2.5), whether or not WHOOP also says so.
    if (receipt.dataType === 'sleep') changes.retracted.push(id, whoopRecoveryRecordId(id))
    else if (receipt.dataType === 'recovery') changes.retracted.push(whoopRecoveryRecordId(id))
    else if (receipt.dataType === 'workout') changes.retracted.push(id)
    return changes
  }
  switch (receipt.dataType) {
    case 'sleep': {
      const sleep = await getOrGone(api, sleepPath(id))
      if (sleep === undefined) changes.retracted.push(id, whoopRecoveryRecordId(id))
      else addOutcome(changes, normalizeWhoopSleep(sleep))
      return changes
    }
    case 'recovery':
      await addRecoveryOfSleep(changes, api, id)
      return changes
    case 'workout': {
      const workout = await getOrGone(api, workoutPath(id))
      if (workout === undefined) changes.retracted.push(id)
      else addOutcome(changes, normalizeWhoopWorkout(workout))
      return changes
    }
    default:
      return changes
  }
}

/** The document, or undefined when WHOOP answers 404 (deleted since the notification). */
async function getOrGone(api: AuthorizedApi, path: string): Promise<unknown> {
  try {
    return await api.getJson(path)
  } catch (error) {
    if (error instanceof ProviderRequestError && error.status === 404) return undefined
    throw error
  }
}

/** sleep → its cycle → the cycle's recovery, framed by the sleep's start and end. */
async function addRecoveryOfSleep(changes: ReceiptChanges, api: AuthorizedApi, sleepId: string): Promise<void> {
  const sleep = await getOrGone(api, sleepPath(sleepId))
  const cycleId = cycleIdOf(sleep)
  if (sleep === undefined || cycleId === undefined) {
    if (sleep === undefined) changes.retracted.push(whoopRecoveryRecordId(sleepId))
    else changes.rejected.push({ code: 'BB_SAMPLE_MALFORMED', message: 'the recovery\'s sleep has no cycle_id' })
    return
  }
  const recovery = await getOrGone(api, cycleRecoveryPath(cycleId))
  if (recovery === undefined) changes.retracted.push(whoopRecoveryRecordId(sleepId))
  else addOutcome(changes, normalizeWhoopRecovery(recovery, sleep))
}

/** Cycle ids are int64: kept as their decimal text (a JSON number is exact up to 2^53, beyond any WHOOP id so far). */
function cycleIdOf(document: unknown): string | undefined {
  const id = asObject(document)?.cycle_id
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return String(id)
  return typeof id === 'string' && /^\d{1,19}$/.test(id) ? id : undefined
}

function addOutcome(changes: ReceiptChanges, outcome: WhoopOutcome): void {
  if (outcome.kind === 'drafts') {
    changes.drafts.push(...outcome.drafts)
    changes.complete.push(outcome.record)
  } else if (outcome.kind === 'rejected') changes.rejected.push(outcome.rejection)
}

const COLLECTIONS: Readonly<Record<string, { path: string, normalize: (document: unknown) => WhoopOutcome }>> = {
  sleep: { path: `${API}/activity/sleep`, normalize: normalizeWhoopSleep },
  workout: { path: `${API}/activity/workout`, normalize: normalizeWhoopWorkout },
  cycle: { path: `${API}/cycle`, normalize: normalizeWhoopCycle }
}

async function fetchRange(receipt: ClaimedReceipt, api: AuthorizedApi, start: Date, end: Date): Promise<ReceiptChanges> {
  const changes = emptyChanges()
  // WHOOP selects by a document's start (`start` inclusive, `end` exclusive); a day of margin on both sides takes
  // in a sleep that began the evening before the range and a cycle still running past its end.
  const query = { start: new Date(start.getTime() - DAY_MS).toISOString(), end: new Date(end.getTime() + DAY_MS).toISOString(), limit: PAGE_LIMIT }
  if (receipt.dataType === 'recovery') {
    // Recoveries are framed by their sleeps: one pass over the sleeps of the range, a single fetch for any other.
    const sleeps = new Map<string, unknown>()
    for await (const page of pages(api, COLLECTIONS.sleep!.path, query, WHOOP_PAGING)) {
      for (const sleep of page) {
        const id = asObject(sleep)?.id
        if (typeof id === 'string') sleeps.set(id, sleep)
      }
    }
    for await (const page of pages(api, `${API}/recovery`, query, WHOOP_PAGING)) {
      for (const recovery of page) {
        const sleepId = asObject(recovery)?.sleep_id
        if (typeof sleepId !== 'string') {
          changes.rejected.push({ code: 'BB_SAMPLE_MALFORMED', message: 'a recovery must name its sleep_id' })
          continue
        }
        const sleep = sleeps.get(sleepId) ?? await getOrGone(api, sleepPath(sleepId))
        if (sleep !== undefined) addOutcome(changes, normalizeWhoopRecovery(recovery, sleep))
      }
    }
    return changes
  }
  const collection = COLLECTIONS[receipt.dataType]
  if (collection === undefined) return changes
  for await (const page of pages(api, collection.path, query, WHOOP_PAGING)) {
    for (const document of page) addOutcome(changes, collection.normalize(document))
  }
  return changes
}
