/**
 * Workload of the HealthKit benchmark: realistic native-format samples with fresh uuids, the request bodies the
 * bridge receives, and the exact rows the bridge would store for them (for the raw baseline).
 */
import { randomBytes } from 'node:crypto'
import { buildEvent } from '../../src/domain/build-event.ts'
import type { BiometricEvent } from '../../src/domain/event.ts'
import { offsetMinutesOf } from '../../src/domain/time.ts'
import { normalizeNativeSample } from '../../src/providers/healthkit/native.ts'

const WATCH_SOURCE = { name: 'Apple Watch', bundle_id: 'com.apple.health.watch', product_type: 'Watch7,1' }
const WATCH_DEVICE = { model: 'Watch', manufacturer: 'Apple Inc.' }
const PHONE_SOURCE = { name: 'iPhone', bundle_id: 'com.apple.health', product_type: 'iPhone15,2' }
const PHONE_DEVICE = { model: 'iPhone', manufacturer: 'Apple Inc.' }

/** Samples start a week before the run and step one minute apart, so every one is in range. */
const BASE_MS = Date.now() - 7 * 24 * 3_600_000

/**
 * One sample of a realistic mix: 70 % heart rate, 10 % steps, 10 % active energy, 5 % HRV, 5 % sleep stages.
 * `uuid` must be unique per sample for the sample to be a real insert.
 */
export function sample(uuid: string, index: number): Record<string, unknown> {
  const atMs = BASE_MS + (index % 10_000) * 60_000
  const at = new Date(atMs).toISOString()
  const kind = index % 20
  if (kind < 14) {
    return {
      uuid, type: 'HKQuantityTypeIdentifierHeartRate', start: at, end: at, value: 55 + (index % 60), unit: 'count/min',
      source: WATCH_SOURCE, device: WATCH_DEVICE
    }
  }
  const end = new Date(atMs + 60_000).toISOString()
  if (kind < 16) {
    return {
      uuid, type: 'HKQuantityTypeIdentifierStepCount', start: at, end, value: 20 + (index % 90), unit: 'count',
      source: PHONE_SOURCE, device: PHONE_DEVICE
    }
  }
  if (kind < 18) {
    return {
      uuid, type: 'HKQuantityTypeIdentifierActiveEnergyBurned', start: at, end, value: 0.5 + (index % 7) / 10, unit: 'kcal',
      source: WATCH_SOURCE, device: WATCH_DEVICE
    }
  }
  if (kind === 18) {
    return {
      uuid, type: 'HKQuantityTypeIdentifierHeartRateVariabilitySDNN', start: at, end: at, value: 30 + (index % 50), unit: 'ms',
      source: WATCH_SOURCE, device: WATCH_DEVICE
    }
  }
  return {
    uuid, type: 'HKCategoryTypeIdentifierSleepAnalysis', start: at, end: new Date(atMs + 20 * 60_000).toISOString(),
    value: 3 + (index % 3), source: WATCH_SOURCE, device: WATCH_DEVICE
  }
}

/** A HealthKit-style uuid that no earlier request used (random prefix per batch, counter inside). */
export function freshUuidPrefix(): string {
  const hex = randomBytes(12).toString('hex').toUpperCase()
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-`
}

export interface Batch {
  samples: Record<string, unknown>[]
  /** The request body, exactly as sent. */
  body: Buffer
}

export function makeBatch(size: number): Batch {
  const prefix = freshUuidPrefix()
  const samples = Array.from({ length: size }, (_, i) => sample(`${prefix}${String(i).padStart(12, '0')}`, i))
  return { samples, body: Buffer.from(JSON.stringify({ samples, deleted: [] })) }
}

/**
 * Column arrays of the rows the bridge writes for one batch: the `events` columns plus the outbox payload (the
 * event as JSON), computed with the bridge's own normalizer so the baseline inserts the same rows.
 */
export interface BaselineRows {
  event_id: string[]
  user_id: string[]
  source: string[]
  source_record_id: string[]
  metric: string[]
  context: string[]
  device_type: string[]
  value: number[]
  unit: string[]
  start_at: string[]
  end_at: string[]
  tz_offset_min: number[]
  source_updated_at: (string | null)[]
  ingested_at: string[]
  payload: string[]
}

export function baselineRows(userId: string, samples: readonly Record<string, unknown>[]): BaselineRows {
  const nowMs = Date.now()
  const origin = { userId, source: 'healthkit' as const, ingestedAt: new Date(nowMs).toISOString() }
  const events: BiometricEvent[] = []
  for (const input of samples) {
    const outcome = normalizeNativeSample(input)
    if (outcome.kind !== 'drafts') throw new Error(`workload sample not accepted: ${JSON.stringify(outcome)}`)
    for (const draft of outcome.drafts) {
      const built = buildEvent(draft, origin, { nowMs })
      if (!built.ok) throw new Error(`workload sample rejected: ${built.rejection.code}`)
      events.push(built.event)
    }
  }
  return {
    event_id: events.map((e) => e.event_id),
    user_id: events.map((e) => e.user_id),
    source: events.map((e) => e.source),
    source_record_id: events.map((e) => e.source_record_id),
    metric: events.map((e) => e.metric),
    context: events.map((e) => e.context ?? ''),
    device_type: events.map((e) => e.device_type),
    value: events.map((e) => e.value),
    unit: events.map((e) => e.unit),
    start_at: events.map((e) => e.start),
    end_at: events.map((e) => e.end),
    tz_offset_min: events.map((e) => offsetMinutesOf(e.start)),
    source_updated_at: events.map((e) => e.source_updated_at),
    ingested_at: events.map((e) => e.ingested_at),
    payload: events.map((e) => JSON.stringify(e))
  }
}

/**
 * The raw baseline: ONE autocommit statement (so one transaction and one WAL flush) that upserts the events
 * with the bridge's conflict rule and inserts one outbox row per written event, in input order. The same durable
 * work as the bridge's path, minus HTTP, JSON parsing, validation, normalization and BEGIN/COMMIT round trips.
 */
export const BASELINE_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::float8[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::int2[],
                       $13::timestamptz[], $14::timestamptz[], $15::text[]) WITH ORDINALITY
    AS x(event_id, user_id, source, source_record_id, metric, context, device_type, value, unit, start_at, end_at,
         tz_offset_min, source_updated_at, ingested_at, payload, ord)
), written AS (
  INSERT INTO events AS e (event_id, user_id, source, source_record_id, metric, context, device_type, value, unit,
                           start_at, end_at, tz_offset_min, source_updated_at, ingested_at)
  SELECT event_id, user_id, source, source_record_id, metric, context, device_type, value, unit,
         start_at, end_at, tz_offset_min, source_updated_at, ingested_at
  FROM input
  ON CONFLICT (event_id) DO UPDATE SET
    device_type = excluded.device_type, value = excluded.value, unit = excluded.unit,
    start_at = excluded.start_at, end_at = excluded.end_at, tz_offset_min = excluded.tz_offset_min,
    source_updated_at = excluded.source_updated_at, ingested_at = excluded.ingested_at
  WHERE coalesce(excluded.source_updated_at, '-infinity') > coalesce(e.source_updated_at, '-infinity')
     OR (coalesce(excluded.source_updated_at, '-infinity') = coalesce(e.source_updated_at, '-infinity')
         AND (e.value, e.start_at, e.end_at, e.device_type)
             IS DISTINCT FROM (excluded.value, excluded.start_at, excluded.end_at, excluded.device_type))
  RETURNING event_id
)
INSERT INTO outbox (event_id, user_id, op, payload)
SELECT i.event_id, i.user_id, 'upsert', i.payload
FROM written w JOIN input i USING (event_id)
ORDER BY i.ord`

export function baselineParams(rows: BaselineRows): unknown[] {
  return [rows.event_id, rows.user_id, rows.source, rows.source_record_id, rows.metric, rows.context, rows.device_type,
    rows.value, rows.unit, rows.start_at, rows.end_at, rows.tz_offset_min, rows.source_updated_at, rows.ingested_at,
    rows.payload]
}
