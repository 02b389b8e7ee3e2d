import type { Queryable } from './database.ts'

export type ReceiptProvider = 'oura' | 'whoop'

/** Live notifications first, then reconciliation, then backfill (column `priority`). */
export const RECEIPT_PRIORITY = { live: 0, reconcile: 1, backfill: 2 } as const

export interface NewReceipt {
  provider: ReceiptProvider
  dedupKey: string
  eventType: string
  dataType: string
  objectId: string | null
  providerUserId: string
  /** `pending` receipts are worked off; `ignored` ones (types the bridge does not map) are only kept. */
  status: 'pending' | 'ignored'
  priority?: number
  /** Reconciliation and backfill: the time range of the collection to fetch. */
  range?: { start: Date, end: Date }
}

/** A receipt a worker claimed: leased to it until `locked_until`, `attempts` already counts this attempt. */
export interface ClaimedReceipt {
  id: string
  provider: ReceiptProvider
  eventType: string
  dataType: string
  objectId: string | null
  providerUserId: string
  attempts: number
  priority: number
  rangeStart: Date | null
  rangeEnd: Date | null
  receivedAt: Date
}

/** Stores a verified notification once; returns false when it was already stored (a duplicate delivery). */
export async function insertReceipt(db: Queryable, receipt: NewReceipt): Promise<boolean> {
  const [stored] = await insertReceipts(db, [receipt])
  return stored === true
}

/**
 * Stores several receipts in one statement (one commit); per receipt, whether it was new. Of two receipts with
 * the same key in one call, the first counts as new and the second as its duplicate.
 */
export async function insertReceipts(db: Queryable, receipts: readonly NewReceipt[]): Promise<boolean[]> {
  if (receipts.length === 0) return []
  const { rows } = await db.query<{ provider: string, dedup_key: string }>(
    `INSERT INTO webhook_receipts (provider, dedup_key, event_type, data_type, object_id, provider_user_id, status, finished_at,
                                   priority, range_start, range_end)
     SELECT r.provider, r.dedup_key, r.event_type, r.data_type, r.object_id, r.provider_user_id, r.status,
            CASE WHEN r.status = 'ignored' THEN now() END, r.priority, r.range_start, r.range_end
     FROM json_to_recordset($1::json) AS r(provider text, dedup_key text, event_type text, data_type text, object_id text,
                                           provider_user_id text, status text, priority smallint, range_start timestamptz,
                                           range_end timestamptz)
     ON CONFLICT (provider, dedup_key) DO NOTHING
     RETURNING provider, dedup_key`,
    [JSON.stringify(receipts.map((receipt) => ({
      provider: receipt.provider, dedup_key: receipt.dedupKey, event_type: receipt.eventType, data_type: receipt.dataType,
      object_id: receipt.objectId, provider_user_id: receipt.providerUserId, status: receipt.status,
      priority: receipt.priority ?? RECEIPT_PRIORITY.live, range_start: receipt.range?.start ?? null, range_end: receipt.range?.end ?? null
    })))])
  const inserted = new Set(rows.map((row) => `${row.provider}\n${row.dedup_key}`))
  return receipts.map((receipt) => inserted.delete(`${receipt.provider}\n${receipt.dedupKey}`))
}

/**
 * Live notifications waiting to be worked off: what back-pressure is about (backfill may queue many more).
 * `upTo` bounds the work: intake only needs to know whether the backlog reached its limit, and counting a
 * backlog of millions every second would cost more than the notifications themselves.
 */
export async function pendingReceiptCount(db: Queryable, upTo?: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM (
       SELECT 1 FROM webhook_receipts WHERE status = 'pending' AND priority = 0 LIMIT $1) AS pending`, [upTo ?? null])
  return Number(rows[0]?.n ?? 0)
}

interface ReceiptRow {
  id: string
  provider: ReceiptProvider
  event_type: string
  data_type: string
  object_id: string | null
  provider_user_id: string
  attempts: number
  priority: number
  range_start: Date | null
  range_end: Date | null
  received_at: Date
}

const toClaimed = (row: ReceiptRow): ClaimedReceipt => ({
  id: row.id,
  provider: row.provider,
  eventType: row.event_type,
  dataType: row.data_type,
  objectId: row.object_id,
  providerUserId: row.provider_user_id,
  attempts: Number(row.attempts),
  priority: Number(row.priority),
  rangeStart: row.range_start,
  rangeEnd: row.range_end,
  receivedAt: row.received_at
})

/**
 * Leases up to `limit` due receipts to the caller for `leaseMs`, highest priority and oldest first. SKIP LOCKED
 * lets several processes claim at once without waiting on each other; the lease lets another process take a
 * receipt over when its holder dies. Times come from the database clock, so nodes' clocks need not agree.
 * The statement lives in the database (migration 0006) because its plan is pinned there: see that file.
 */
export async function claimDueReceipts(
  db: Queryable, providers: readonly ReceiptProvider[], limit: number, leaseMs: number
): Promise<ClaimedReceipt[]> {
  if (limit <= 0 || providers.length === 0) return []
  const { rows } = await db.query<ReceiptRow>(
    `SELECT id::text AS id, provider, event_type, data_type, object_id, provider_user_id, attempts, priority,
            range_start, range_end, received_at
     FROM claim_due_receipts($1::text[], $2::integer, $3::double precision)`,
    [providers, limit, leaseMs])
  return rows.map(toClaimed).sort((a, b) => a.priority - b.priority || Number(a.id) - Number(b.id))
}

export type ReceiptEnd = 'done' | 'skipped' | 'dead'

/** Ends a receipt: `done` (worked off), `skipped` (nothing to do, e.g. no connection), `dead` (gave up). */
export async function finishReceipt(db: Queryable, id: string, end: ReceiptEnd, errorCode: string | null = null): Promise<void> {
  await finishReceipts(db, [id], end, errorCode)
}

export async function finishReceipts(db: Queryable, ids: readonly string[], end: ReceiptEnd, errorCode: string | null = null): Promise<void> {
  if (ids.length === 0) return
  await db.query(
    `UPDATE webhook_receipts SET status = $2, finished_at = now(), locked_until = NULL, last_error_code = $3
     WHERE id = ANY($1::bigint[]) AND status = 'pending'`,
    [ids, end, errorCode])
}

/**
 * Schedules another attempt in `delayMs` and gives the lease back. `refundAttempt` takes back the attempt the
 * claim counted, for a try that never reached the provider.
 */
export async function rescheduleReceipt(
  db: Queryable, id: string, delayMs: number, errorCode: string, options: { refundAttempt?: boolean } = {}
): Promise<void> {
  await db.query(
    `UPDATE webhook_receipts SET next_attempt_at = now() + $2 * interval '1 millisecond', locked_until = NULL, last_error_code = $3,
       attempts = CASE WHEN $4 THEN greatest(attempts - 1, 0) ELSE attempts END
     WHERE id = $1::bigint AND status = 'pending'`,
    [id, Math.max(0, Math.round(delayMs)), errorCode, options.refundAttempt === true])
}

/**
 * Gives leases back without counting the attempt, e.g. on a graceful stop: another process (or this one after a
 * restart) picks the receipts up at once instead of after the lease.
 */
export async function releaseReceipts(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return
  await db.query(
    `UPDATE webhook_receipts SET locked_until = NULL, attempts = greatest(attempts - 1, 0)
     WHERE id = ANY($1::bigint[]) AND status = 'pending'`, [ids])
}

export interface DeadReceipt {
  id: string
  provider: ReceiptProvider
  eventType: string
  dataType: string
  attempts: number
  lastErrorCode: string | null
  receivedAt: Date
  finishedAt: Date | null
}

/** Dead-lettered receipts, oldest first. Object and user ids are left out: this is for operators' screens. */
export async function listDeadReceipts(db: Queryable, limit: number): Promise<DeadReceipt[]> {
  const { rows } = await db.query<{
    id: string, provider: ReceiptProvider, event_type: string, data_type: string, attempts: number,
    last_error_code: string | null, received_at: Date, finished_at: Date | null
  }>(
    `SELECT id::text AS id, provider, event_type, data_type, attempts, last_error_code, received_at, finished_at
     FROM webhook_receipts WHERE status = 'dead' ORDER BY id LIMIT $1`, [limit])
  return rows.map((row) => ({
    id: row.id, provider: row.provider, eventType: row.event_type, dataType: row.data_type, attempts: Number(row.attempts),
    lastErrorCode: row.last_error_code, receivedAt: row.received_at, finishedAt: row.finished_at
  }))
}

/** Puts dead receipts back to work with a fresh attempt budget; `ids` undefined replays all. Returns how many. */
export async function replayDeadReceipts(db: Queryable, ids: readonly string[] | undefined): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE webhook_receipts SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL, finished_at = NULL
     WHERE status = 'dead' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))`, [ids === undefined ? null : ids])
  return rowCount
}

/** Deletes finished receipts older than the retention (dead ones stay for the operator), at most `limit`. */
export async function pruneFinishedReceipts(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM webhook_receipts WHERE id IN (
       SELECT id FROM webhook_receipts
       WHERE status IN ('done', 'ignored', 'skipped') AND finished_at < now() - $1 * interval '1 millisecond'
       LIMIT $2)`, [retentionMs, limit])
  return rowCount
}

/** When the newest live notification of a provider arrived, for the silence gauge after a restart. */
export async function lastLiveReceiptAt(db: Queryable, provider: ReceiptProvider): Promise<Date | undefined> {
  const { rows } = await db.query<{ received_at: Date }>(
    'SELECT received_at FROM webhook_receipts WHERE provider = $1 AND priority = 0 ORDER BY id DESC LIMIT 1', [provider])
  return rows[0]?.received_at
}
