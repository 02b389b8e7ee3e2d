import type { AuthorizedApi, ReceiptChanges, ReceiptHandler } from '../../pipeline/receipt-work.ts'
import { emptyChanges } from '../../pipeline/receipt-work.ts'
import type { ClaimedReceipt } from '../../storage/receipts-repository.ts'
import { ProviderRequestError } from '../client/provider-client.ts'
import { asObject } from '../json-object.ts'
import { pages, type PagingStyle } from '../client/paging.ts'
import { OURA_DATA_TYPES, OURA_HEART_RATE_PATH, ouraCollectionPath, ouraDocumentPath, parseOuraDataType, type OuraDataType } from './documents.ts'
import { normalizeOuraDocument, normalizeOuraHeartRate, type OuraOutcome } from './normalize.ts'

/** `data_type` of range receipts (reconciliation, backfill) that fetch heart-rate rows rather than documents. */
export const OURA_HEART_RATE_RANGE = 'heartrate'

/** What a backfill or reconciliation fetches: every mapped collection, and heart rate. */
export const OURA_RANGE_DATA_TYPES: readonly string[] = [...OURA_DATA_TYPES, OURA_HEART_RATE_RANGE]

const OURA_PAGING: PagingStyle = { itemsField: 'data', cursorParam: 'next_token' }
const DAY_MS = 86_400_000

/**
 * Works off one Oura receipt. A notification names one document: `delete` retracts its events, `create`/`update`
 * fetch it (a 404 means it is gone, so its events are retracted too), and a sleep also brings the heart-rate rows
 * of its night. A range receipt (reconciliation, backfill) pages through one collection.
 */
export const handleOuraReceipt: ReceiptHandler = async (receipt, api) => {
  if (receipt.rangeStart !== null && receipt.rangeEnd !== null) return fetchRange(receipt, api, receipt.rangeStart, receipt.rangeEnd)
  const dataType = parseOuraDataType(receipt.dataType)
  const changes = emptyChanges()
  if (dataType === undefined || receipt.objectId === null) return changes
  if (receipt.eventType === 'delete') {
    changes.retracted.push(receipt.objectId)
    return changes
  }
  let document: unknown
  try {
    document = await api.getJson(ouraDocumentPath(dataType, receipt.objectId))
  } catch (error) {
    if (error instanceof ProviderRequestError && error.status === 404) {
      changes.retracted.push(receipt.objectId)
      return changes
    }
    throw error
  }
  addOutcome(changes, normalizeOuraDocument(dataType, document))
  if (dataType === 'sleep') await addSleepHeartRate(changes, document, api)
  return changes
}

function addOutcome(changes: ReceiptChanges, outcome: OuraOutcome): void {
  if (outcome.kind === 'drafts') {
    changes.drafts.push(...outcome.drafts)
    if (outcome.record !== undefined) changes.complete.push(outcome.record)
  }
  else if (outcome.kind === 'rejected') changes.rejected.push(outcome.rejection)
  else changes.retracted.push(outcome.sourceRecordId)
}

/** The heart-rate rows Oura recorded between bedtime start and end (Oura sends no webhook for heart rate). */
async function addSleepHeartRate(changes: ReceiptChanges, document: unknown, api: AuthorizedApi): Promise<void> {
  const sleep = asObject(document)
  const start = sleep?.bedtime_start
  const end = sleep?.bedtime_end
  if (typeof start !== 'string' || typeof end !== 'string' || sleep?.type === 'deleted') return
  await fetchHeartRate(changes, api, start, end)
}

async function fetchHeartRate(changes: ReceiptChanges, api: AuthorizedApi, start: string, end: string): Promise<void> {
  for await (const rows of pages(api, OURA_HEART_RATE_PATH, { start_datetime: start, end_datetime: end }, OURA_PAGING)) {
    for (const outcome of normalizeOuraHeartRate(rows)) addOutcome(changes, outcome)
  }
}

async function fetchRange(receipt: ClaimedReceipt, api: AuthorizedApi, start: Date, end: Date): Promise<ReceiptChanges> {
  const changes = emptyChanges()
  if (receipt.dataType === OURA_HEART_RATE_RANGE) {
    await fetchHeartRate(changes, api, start.toISOString(), end.toISOString())
    return changes
  }
  const dataType: OuraDataType | undefined = parseOuraDataType(receipt.dataType)
  if (dataType === undefined) return changes
  // Which documents a date range selects differs per endpoint (by bedtime start, by the 04:00 activity day …);
  // a day of margin on both sides gets every document whose day touches the range under any of them.
  const query = { start_date: isoDay(start.getTime() - DAY_MS), end_date: isoDay(end.getTime() + DAY_MS) }
  for await (const documents of pages(api, ouraCollectionPath(dataType), query, OURA_PAGING)) {
    for (const document of documents) addOutcome(changes, normalizeOuraDocument(dataType, document))
  }
  return changes
}

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
