import type { Queryable } from './database.ts'

/** Number of outbox lanes; fixed by migration 0002 (`hashtext(user_id) & 15`). */
export const OUTBOX_LANES = 16

export interface OutboxRow {
  id: string
  userId: string
  payload: string
  attempts: number
}

/** Lanes of the outbox (migration 0002: `hashtext(user_id) & 15`). */
const LANES = 16

/**
 * Takes or renews the leases this node may hold: its fair share of the lanes (16 ÷ the nodes seen within a lease
 * lifetime, rounded up), its own first, then free or expired ones. Lanes above the share are given back, so a node
 * that joins gets lanes within one renewal of the others. Returns the lanes held afterwards. Call it between
 * rounds only: a lane given back must have no batch in flight. Taking is one statement with SKIP LOCKED and the
 * holder condition re-checked, so two nodes racing for a lane cannot both win it.
 */
export async function acquireLeases(db: Queryable, holder: string, ttlMs: number): Promise<number[]> {
  const ttl = 'make_interval(secs => $2::double precision / 1000)'
  await db.query(
    `INSERT INTO relay_nodes (holder, seen_at) VALUES ($1, now()) ON CONFLICT (holder) DO UPDATE SET seen_at = now()`, [holder])
  const { rows: [live] } = await db.query<{ nodes: number }>(
    `SELECT count(*)::int AS nodes FROM relay_nodes WHERE seen_at > now() - ${ttl} OR holder = $1`, [holder, ttlMs])
  const share = Math.ceil(LANES / Math.max(1, Number(live?.nodes ?? 1)))
  await db.query(
    `UPDATE relay_leases SET holder = NULL, expires_at = '-infinity'
     WHERE holder = $1 AND lane NOT IN (SELECT lane FROM relay_leases WHERE holder = $1 ORDER BY lane LIMIT $2)`, [holder, share])
  const { rows } = await db.query<{ lane: number }>(
    `UPDATE relay_leases SET holder = $1, expires_at = now() + ${ttl}
     WHERE (holder = $1 OR holder IS NULL OR expires_at < now())
       AND lane IN (SELECT lane FROM relay_leases WHERE holder = $1 OR holder IS NULL OR expires_at < now()
                    ORDER BY holder IS NOT DISTINCT FROM $1 DESC, lane LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING lane`, [holder, ttlMs, share])
  return rows.map((row) => Number(row.lane)).sort((a, b) => a - b)
}

/** A stopping node gives its lanes back and stops counting towards the others' share. */
export async function releaseLeases(db: Queryable, holder: string): Promise<void> {
  await db.query(`UPDATE relay_leases SET holder = NULL, expires_at = '-infinity' WHERE holder = $1`, [holder])
  await db.query('DELETE FROM relay_nodes WHERE holder = $1 OR seen_at < now() - interval \'1 day\'', [holder])
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
