import type { BiometricEvent, DeviceType, EventContext, Source } from '../domain/event.ts'
import { SCHEMA_VERSION } from '../domain/event.ts'
import { formatInstant, offsetMinutesOf } from '../domain/time.ts'
import type { Queryable } from './database.ts'

// The revision rule, as a condition on a stored row `s` and an incoming row `i`: true when the stored row stays
// (it is newer, or the same revision with the same values). An identical re-delivery changes nothing and
// announces nothing.
const STORED_STAYS = (s: string, i: string): string => `
  coalesce(${i}.source_updated_at, '-infinity') < coalesce(${s}.source_updated_at, '-infinity')
  OR (coalesce(${i}.source_updated_at, '-infinity') = coalesce(${s}.source_updated_at, '-infinity')
      AND (${s}.value, ${s}.start_at, ${s}.end_at, ${s}.device_type)
          IS NOT DISTINCT FROM (${i}.value, ${i}.start_at, ${i}.end_at, ${i}.device_type))`

// $1 is the events' JSON texts (the outbox payloads) joined by newlines, which JSON.stringify never writes raw;
// $2 their zone offsets in minutes, comma-separated. The columns are read back out of each payload, so every
// event is serialized once, and its payload is stored exactly as JSON.stringify wrote it.
// With `skipStored`, rows whose stored version stays are dropped before the insert, by a primary-key probe that
// takes no lock: ON CONFLICT locks every conflicting row even when its WHERE leaves it alone, and each lock is a
// WAL record that dirties the row's page. The ON CONFLICT rule still decides races with concurrent writers.
// The probe is a scalar subquery so that it stays one index lookup per row: written as NOT EXISTS, the planner
// turned it into a hash anti-join over a sequential scan of `events` whenever the table had no statistics.
const upsertWithOutbox = (skipStored: boolean): string => `
WITH input AS (
  SELECT e.event_id, e.user_id, e.source, e.source_record_id, e.metric, coalesce(e.context, '') AS context,
         e.device_type, e.value, e.unit, e.start AS start_at, e."end" AS end_at, x.tz_offset_min,
         e.source_updated_at, e.ingested_at, x.payload, x.ord
  FROM ROWS FROM (
    unnest(string_to_array($1::text, E'\\n')),
    unnest(string_to_array($2::text, ',')::smallint[])
  ) WITH ORDINALITY AS x(payload, tz_offset_min, ord)
  CROSS JOIN LATERAL json_to_record(x.payload::json) AS e(
    event_id uuid, user_id text, source text, source_record_id text, metric text, context text, device_type text,
    value double precision, unit text, start timestamptz, "end" timestamptz, source_updated_at timestamptz,
    ingested_at timestamptz)
), candidates AS (
  SELECT * FROM input i
  ${skipStored ? `WHERE NOT coalesce((SELECT ${STORED_STAYS('s', 'i')} FROM events s WHERE s.event_id = i.event_id), false)` : ''}
), written AS (
  INSERT INTO events AS e (event_id, user_id, source, source_record_id, metric, context, device_type, value, unit,
                           start_at, end_at, tz_offset_min, source_updated_at, ingested_at)
  SELECT event_id, user_id, source, source_record_id, metric, context, device_type, value, unit,
         start_at, end_at, tz_offset_min, source_updated_at, ingested_at
  FROM candidates
  ON CONFLICT (event_id) DO UPDATE SET
    device_type = excluded.device_type, value = excluded.value, unit = excluded.unit,
    start_at = excluded.start_at, end_at = excluded.end_at, tz_offset_min = excluded.tz_offset_min,
    source_updated_at = excluded.source_updated_at, ingested_at = excluded.ingested_at
  WHERE NOT (${STORED_STAYS('e', 'excluded')})
  RETURNING event_id
)
INSERT INTO outbox (event_id, user_id, op, payload)
SELECT i.event_id, i.user_id, 'upsert', i.payload
FROM written w JOIN input i USING (event_id)
ORDER BY i.ord
RETURNING event_id`

const UPSERT_WITH_OUTBOX = upsertWithOutbox(false)
const UPSERT_CHANGED_WITH_OUTBOX = upsertWithOutbox(true)

export interface UpsertOptions {
  /**
   * Probe the stored rows first and leave the ones that stay untouched: for whole documents fetched again, where
   * most rows are usually unchanged. Uploads of new samples skip the probe, which would find nothing.
   */
  skipStored?: boolean
}

/**
 * Upserts events and writes one outbox row for each event that changed, in one statement: inside the caller's
 * transaction, or atomically on its own when `tx` is not one.
 * `events` must not repeat an event_id (PostgreSQL refuses to update one row twice in a statement).
 * Returns the ids that were inserted or replaced; the others were unchanged duplicates.
 */
export async function upsertEventsWithOutbox(
  tx: Queryable, events: readonly BiometricEvent[], options: UpsertOptions = {}
): Promise<Set<string>> {
  if (events.length === 0) return new Set()
  const payloads = events.map((event) => JSON.stringify(event)).join('\n')
  const offsets = events.map((event) => offsetMinutesOf(event.start)).join(',')
  const statement = options.skipStored === true ? UPSERT_CHANGED_WITH_OUTBOX : UPSERT_WITH_OUTBOX
  const { rows: written } = await tx.query<{ event_id: string }>(statement, [payloads, offsets])
  return new Set(written.map((row) => row.event_id))
}

interface EventRow {
  event_id: string
  user_id: string
  source: string
  source_record_id: string
  metric: string
  context: string
  device_type: string
  value: number
  unit: string
  start_at: Date
  end_at: Date
  tz_offset_min: number
  source_updated_at: Date | null
  ingested_at: Date
}

const EVENT_COLUMNS = `event_id::text AS event_id, user_id, source, source_record_id, metric, context, device_type,
  value, unit, start_at, end_at, tz_offset_min, source_updated_at, ingested_at`

function toEvent(row: EventRow, op: 'upsert' | 'delete' = 'upsert', ingestedAt?: string): BiometricEvent {
  const offset = Number(row.tz_offset_min)
  return {
    event_id: row.event_id,
    schema_version: SCHEMA_VERSION,
    user_id: row.user_id,
    source: row.source as Source,
    device_type: row.device_type as DeviceType,
    metric: row.metric,
    value: Number(row.value),
    unit: row.unit,
    start: formatInstant(row.start_at.getTime(), offset),
    end: formatInstant(row.end_at.getTime(), offset),
    context: row.context === '' ? null : row.context as EventContext,
    source_record_id: row.source_record_id,
    source_updated_at: row.source_updated_at === null ? null : row.source_updated_at.toISOString(),
    op,
    ingested_at: ingestedAt ?? row.ingested_at.toISOString()
  }
}

/**
 * Deletes every event of the given source records and writes an `op: "delete"` outbox row for each, in the
 * caller's transaction. Returns the delete events.
 */
export async function deleteRecordsWithOutbox(
  tx: Queryable, userId: string, source: Source, recordIds: readonly string[], ingestedAt: string
): Promise<BiometricEvent[]> {
  if (recordIds.length === 0) return []
  const { rows } = await tx.query<EventRow>(
    `DELETE FROM events WHERE user_id = $1 AND source = $2
       AND source_record_id IN (SELECT json_array_elements_text($3::json))
     RETURNING ${EVENT_COLUMNS}`,
    [userId, source, JSON.stringify(recordIds)])
  return announceDeleted(tx, rows, ingestedAt)
}

/** A record as a provider now describes it completely: its revision and the events it yields. */
export interface CompleteRecord {
  userId: string
  source: Source
  sourceRecordId: string
  /** ISO instant of the revision; null when the provider does not version its documents. */
  sourceUpdatedAt: string | null
  keepEventIds: readonly string[]
}

/**
 * Deletes the events of complete records that their current revision no longer yields (a field the provider
 * cleared), with `op: "delete"` outbox rows. A stored event from a NEWER revision than the one given is kept:
 * a slow worker holding an old fetch never removes what a faster one stored.
 */
export async function deleteClearedEventsWithOutbox(tx: Queryable, records: readonly CompleteRecord[], ingestedAt: string): Promise<BiometricEvent[]> {
  if (records.length === 0) return []
  const { rows } = await tx.query<EventRow>(
    `DELETE FROM events e
     USING json_to_recordset($1::json) AS r(record_user text, record_source text, record_id text, revision timestamptz, keep json)
     WHERE e.user_id = r.record_user AND e.source = r.record_source AND e.source_record_id = r.record_id
       AND e.event_id::text NOT IN (SELECT json_array_elements_text(r.keep))
       AND (r.revision IS NULL OR coalesce(e.source_updated_at, '-infinity') <= r.revision)
     RETURNING ${EVENT_COLUMNS}`,
    [JSON.stringify(records.map((record) => ({
      record_user: record.userId, record_source: record.source, record_id: record.sourceRecordId,
      revision: record.sourceUpdatedAt, keep: record.keepEventIds
    })))])
  return announceDeleted(tx, rows, ingestedAt)
}

async function announceDeleted(tx: Queryable, rows: readonly EventRow[], ingestedAt: string): Promise<BiometricEvent[]> {
  const deleted = rows.map((row) => toEvent(row, 'delete', ingestedAt))
  if (deleted.length > 0) {
    await tx.query(
      `INSERT INTO outbox (event_id, user_id, op, payload)
       SELECT x.event_id, x.user_id, 'delete', x.payload
       FROM json_to_recordset($1::json) AS x(event_id uuid, user_id text, payload text)`,
      [JSON.stringify(deleted.map((event) => ({ event_id: event.event_id, user_id: event.user_id, payload: JSON.stringify(event) })))])
  }
  return deleted
}

export interface EventQuery {
  userId: string
  metric?: string | undefined
  source?: string | undefined
  /** Inclusive lower bound of `start`, epoch ms. */
  fromMs?: number | undefined
  /** Exclusive upper bound of `start`, epoch ms. */
  toMs?: number | undefined
  after?: { startMs: number, eventId: string } | undefined
  limit: number
}

/** Events ordered by (start, event_id); the pair is also the paging cursor. */
export async function queryEvents(db: Queryable, query: EventQuery): Promise<BiometricEvent[]> {
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString())
  const { rows } = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
     WHERE user_id = $1
       AND ($2::text IS NULL OR metric = $2)
       AND ($3::text IS NULL OR source = $3)
       AND ($4::timestamptz IS NULL OR start_at >= $4)
       AND ($5::timestamptz IS NULL OR start_at < $5)
       AND ($6::timestamptz IS NULL OR (start_at, event_id) > ($6, $7::uuid))
     ORDER BY events.start_at, events.event_id
     LIMIT $8`,
    [query.userId, query.metric ?? null, query.source ?? null, iso(query.fromMs), iso(query.toMs),
      iso(query.after?.startMs), query.after?.eventId ?? null, query.limit])
  return rows.map((row) => toEvent(row))
}

/** The most recent event (by start) of each metric of a user. */
export async function latestEvents(db: Queryable, userId: string): Promise<BiometricEvent[]> {
  const { rows } = await db.query<EventRow>(
    `SELECT DISTINCT ON (metric) ${EVENT_COLUMNS} FROM events
     WHERE user_id = $1 ORDER BY events.metric, events.start_at DESC, events.event_id DESC`, [userId])
  return rows.map((row) => toEvent(row))
}

/** The `limit` most recent events (by start, then event_id) of one metric of a user, newest first. */
export async function recentEvents(db: Queryable, userId: string, metric: string, limit: number): Promise<BiometricEvent[]> {
  const { rows } = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
     WHERE user_id = $1 AND metric = $2 ORDER BY events.start_at DESC, events.event_id DESC LIMIT $3`, [userId, metric, limit])
  return rows.map((row) => toEvent(row))
}
