import type { Queryable } from './database.ts'

/** Number of outbox lanes; fixed by migration 0002 (`hashtext(user_id) & 15`). */
export const OUTBOX_LANES = 16

export interface OutboxRow {
  id: string
  userId: string
  payload: string
  attempts: number
}

/**
 * Takes or renews the leases this node may hold: free lanes, expired lanes and its own. Returns the lanes
 * held afterwards. One statement, so two nodes racing for a lane cannot both win it.
 */
export async function acquireLeases(db: Queryable, holder: string, ttlMs: number): Promise<number[]> {
  const { rows } = await db.query<{ lane: number }>(
    `UPDATE relay_leases SET holder = $1, expires_at = now() + make_interval(secs => $2::double precision / 1000)
     WHERE holder = $1 OR holder IS NULL OR expires_at < now()
     RETURNING lane`, [holder, ttlMs])
  return rows.map((row) => Number(row.lane)).sort((a, b) => a - b)
}

export async function releaseLeases(db: Queryable, holder: string): Promise<void> {
  await db.query(`UPDATE relay_leases SET holder = NULL, expires_at = '-infinity' WHERE holder = $1`, [holder])
}

/**
 * The oldest pending rows of a lane, in commit order.
 *
 * Written so that it is answered through `outbox_pending_by_lane (lane, id)`: with `lane = $1 … ORDER BY id` the
 * planner prefers walking the primary key from the oldest row and filtering, which reads every published row still
 * kept (an hour's worth) and the other lanes' rows before it finds this lane's — working off a backlog of 200k rows
 * then costs PostgreSQL quadratic time. `lane = ANY($1)` with `ORDER BY lane, id` selects the same rows in the same
 * order, but only the lane index delivers that order without sorting the whole lane.
 */
export async function pendingRows(db: Queryable, lane: number, limit: number): Promise<OutboxRow[]> {
  const { rows } = await db.query<{ id: string, user_id: string, payload: string, attempts: number }>(
    `SELECT id::text AS id, user_id, payload, attempts FROM outbox
     WHERE lane = ANY($1::smallint[]) AND published_at IS NULL AND dead_lettered_at IS NULL
     ORDER BY outbox.lane, outbox.id LIMIT $2`, [[lane], limit])
  return rows.map((row) => ({ id: row.id, userId: row.user_id, payload: row.payload, attempts: Number(row.attempts) }))
}

/**
 * Which of `lanes` hold pending rows: one statement, so a relay round need not query every lane it holds to find
 * the few with work. Each lane is probed through `outbox_pending_by_lane` as in pendingRows.
 */
export async function lanesWithPending(db: Queryable, lanes: readonly number[]): Promise<number[]> {
  if (lanes.length === 0) return []
  const { rows } = await db.query<{ lane: number }>(
    `SELECT l.lane FROM unnest($1::smallint[]) AS l(lane)
     CROSS JOIN LATERAL (
       SELECT 1 FROM outbox
       WHERE outbox.lane = ANY(ARRAY[l.lane]) AND published_at IS NULL AND dead_lettered_at IS NULL
       ORDER BY outbox.lane, outbox.id LIMIT 1) AS pending
     ORDER BY l.lane`, [lanes])
  return rows.map((row) => Number(row.lane))
}

export async function markPublished(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return
  // One array literal (the ids are digit strings from pendingRows): a single index scan over them, and neither
  // JSON nor pg's per-element array escaping to pay for on a thousand ids.
  await db.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [`{${ids.join(',')}}`])
}

export async function recordAttemptFailure(db: Queryable, id: string, error: string): Promise<number> {
  const { rows } = await db.query<{ attempts: number }>(
    'UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1::bigint RETURNING attempts', [id, error.slice(0, 500)])
  return Number(rows[0]?.attempts ?? 0)
}

export async function pendingCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL')
  return Number(rows[0]?.n ?? 0)
}

/** Deletes finished rows older than the retention, in bounded chunks; returns how many went. */
export async function pruneFinished(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM outbox WHERE id IN (
       SELECT id FROM outbox
       WHERE (published_at IS NOT NULL OR dead_lettered_at IS NOT NULL)
         AND coalesce(published_at, dead_lettered_at) < now() - make_interval(secs => $1::double precision / 1000)
       ORDER BY id LIMIT $2)`, [retentionMs, limit])
  return rowCount
}
