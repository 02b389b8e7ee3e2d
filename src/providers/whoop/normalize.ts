import type { EventDraft } from '../../domain/build-event.ts'
import type { EventContext } from '../../domain/event.ts'
import type { MetricName } from '../../domain/catalog.ts'
import { formatInstant, offsetMinutesOf } from '../../domain/time.ts'
import { parseInstant, type Rejection } from '../../domain/validation.ts'
import { asObject } from '../json-object.ts'

/** What one fetched WHOOP document turned into. */
export type WhoopOutcome =
  /** The drafts are the whole record at that revision (see OuraOutcome for why that matters). */
  | { kind: 'drafts', drafts: EventDraft[], record: { sourceRecordId: string, sourceUpdatedAt: string | null } }
  | { kind: 'rejected', rejection: Rejection }
  /**
   * Not scored (yet): `score_state` PENDING_SCORE or UNSCORABLE, or a cycle still running. No events; WHOOP sends
   * `*.updated` again once it is scored, and reconciliation covers cycles.
   */
  | { kind: 'unscored' }

interface FieldMapping {
  metric: MetricName
  /** Property path inside `score`. */
  field: readonly string[]
  /** Unit as WHOOP delivers it (reference §2.4); buildEvent converts to the catalog's. */
  unit?: string
}

// Design §7, WHOOP column.
const SLEEP_FIELDS: readonly FieldMapping[] = [
  { metric: 'respiratory_rate', field: ['respiratory_rate'], unit: 'breaths/min' },
  { metric: 'sleep_performance', field: ['sleep_performance_percentage'], unit: '%' },
  { metric: 'deep_sleep_minutes', field: ['stage_summary', 'total_slow_wave_sleep_time_milli'], unit: 'ms' },
  { metric: 'rem_sleep_minutes', field: ['stage_summary', 'total_rem_sleep_time_milli'], unit: 'ms' },
  { metric: 'light_sleep_minutes', field: ['stage_summary', 'total_light_sleep_time_milli'], unit: 'ms' },
  { metric: 'awake_minutes', field: ['stage_summary', 'total_awake_time_milli'], unit: 'ms' }
]
const RECOVERY_FIELDS: readonly FieldMapping[] = [
  { metric: 'recovery_score', field: ['recovery_score'] },
  // WHOOP's HRV is RMSSD (the field says so), so it shares the series with Oura's, never HealthKit's SDNN.
  { metric: 'hrv_rmssd', field: ['hrv_rmssd_milli'], unit: 'ms' },
  { metric: 'resting_heart_rate', field: ['resting_heart_rate'], unit: 'bpm' },
  { metric: 'spo2', field: ['spo2_percentage'], unit: '%' },
  { metric: 'skin_temperature', field: ['skin_temp_celsius'], unit: 'degC' }
]
const WORKOUT_FIELDS: readonly FieldMapping[] = [
  { metric: 'heart_rate', field: ['average_heart_rate'], unit: 'bpm' },
  { metric: 'active_calories', field: ['kilojoule'], unit: 'kJ' },
  { metric: 'distance_meters', field: ['distance_meter'], unit: 'm' }
]
const CYCLE_FIELDS: readonly FieldMapping[] = [{ metric: 'strain', field: ['strain'] }]

const ID = /^[A-Za-z0-9._:-]{1,128}$/
const OFFSET = /^(?:Z|[+-]\d{2}:\d{2})$/

const rejected = (code: Rejection['code'], message: string): WhoopOutcome => ({ kind: 'rejected', rejection: { code, message } })

/**
 * The record id of a recovery. WHOOP recoveries have no id of their own: they belong to a sleep (the webhook
 * names the sleep) and a cycle. A prefix keeps `recovery.deleted` from retracting the sleep's own events.
 */
export const whoopRecoveryRecordId = (sleepId: string): string => `recovery:${sleepId}`

function numberAt(score: Record<string, unknown>, path: readonly string[]): number | null | undefined {
  let value: unknown = score
  for (const key of path) {
    const object = asObject(value)
    if (object === undefined) return null
    value = object[key]
  }
  if (value == null) return null
  return typeof value === 'number' ? value : undefined
}

/** Start and end of a document in the wearer's offset (`timezone_offset`), as WHOOP's UTC instants. */
function span(document: Record<string, unknown>): { start: string, end: string } | undefined {
  const startMs = parseInstant(document.start)
  const endMs = parseInstant(document.end)
  const offset = document.timezone_offset ?? 'Z'
  if (startMs === undefined || endMs === undefined || typeof offset !== 'string' || !OFFSET.test(offset)) return undefined
  const minutes = offset === 'Z' ? 0 : offsetMinutesOf(offset)
  return { start: formatInstant(startMs, minutes), end: formatInstant(endMs, minutes) }
}

interface Frame {
  start: string
  end: string
  context: EventContext
  sourceRecordId: string
  sourceUpdatedAt: string | null
}

function draftsOf(fields: readonly FieldMapping[], score: Record<string, unknown>, frame: Frame, extra: EventDraft[] = []): WhoopOutcome {
  const drafts: EventDraft[] = []
  for (const { metric, field, unit } of fields) {
    const value = numberAt(score, field)
    if (value === undefined) return rejected('BB_SAMPLE_MALFORMED', `score.${field.join('.')} must be a number or null`)
    if (value === null) continue
    drafts.push({ ...frame, metric, value, unit, deviceType: 'whoop_band' })
  }
  drafts.push(...extra)
  return { kind: 'drafts', drafts, record: { sourceRecordId: frame.sourceRecordId, sourceUpdatedAt: frame.sourceUpdatedAt } }
}

/** The common frame of a scored document; undefined fields come back as a rejection or `unscored`. */
function scored(input: unknown, idField: string): { document: Record<string, unknown>, score: Record<string, unknown>, id: string, updatedAt: string | null } | WhoopOutcome {
  const document = asObject(input)
  if (document === undefined) return rejected('BB_SAMPLE_MALFORMED', 'a WHOOP document must be an object')
  const rawId = document[idField]
  const id = typeof rawId === 'number' && Number.isSafeInteger(rawId) ? String(rawId) : rawId
  if (typeof id !== 'string' || !ID.test(id)) return rejected('BB_SAMPLE_MALFORMED', `${idField} must be a WHOOP id`)
  if (document.score_state !== 'SCORED') return { kind: 'unscored' }
  const score = asObject(document.score)
  if (score === undefined) return rejected('BB_SAMPLE_MALFORMED', 'a SCORED document must carry a score object')
  const updatedMs = document.updated_at == null ? undefined : parseInstant(document.updated_at)
  if (document.updated_at != null && updatedMs === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'updated_at must be an ISO-8601 timestamp')
  return { document, score, id, updatedAt: updatedMs === undefined ? null : new Date(updatedMs).toISOString() }
}

const isOutcome = (value: object): value is WhoopOutcome => 'kind' in value

/** `GET /developer/v2/activity/sleep/{id}` → sleep stages, respiratory rate, sleep performance (context sleep). */
export function normalizeWhoopSleep(input: unknown): WhoopOutcome {
  const parsed = scored(input, 'id')
  if (isOutcome(parsed)) return parsed
  const frame = span(parsed.document)
  if (frame === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'start, end and timezone_offset must be ISO-8601 with a zone')
  const base = { ...frame, context: 'sleep' as const, sourceRecordId: parsed.id, sourceUpdatedAt: parsed.updatedAt }
  // Total sleep is not a WHOOP field: light + slow wave + REM (design §7), when all three are there.
  const stages = ['total_light_sleep_time_milli', 'total_slow_wave_sleep_time_milli', 'total_rem_sleep_time_milli']
    .map((name) => numberAt(parsed.score, ['stage_summary', name]))
  const total: EventDraft[] = stages.every((value) => typeof value === 'number')
    ? [{ ...base, metric: 'total_sleep_minutes', value: stages.reduce((a, b) => a + b, 0), unit: 'ms', deviceType: 'whoop_band' }]
    : []
  return draftsOf(SLEEP_FIELDS, parsed.score, base, total)
}

/**
 * `GET /developer/v2/cycle/{cycle_id}/recovery` → recovery score, HRV, resting heart rate, SpO₂, skin temperature,
 * spanning the sleep it was computed from (context sleep). `sleep` is that sleep document (its start and end).
 */
export function normalizeWhoopRecovery(input: unknown, sleep: unknown): WhoopOutcome {
  const parsed = scored(input, 'sleep_id')
  if (isOutcome(parsed)) return parsed
  const sleepDocument = asObject(sleep)
  const frame = sleepDocument === undefined ? undefined : span(sleepDocument)
  if (frame === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'the recovery\'s sleep must have start, end and timezone_offset')
  return draftsOf(RECOVERY_FIELDS, parsed.score, {
    ...frame, context: 'sleep', sourceRecordId: whoopRecoveryRecordId(parsed.id), sourceUpdatedAt: parsed.updatedAt
  })
}

/** `GET /developer/v2/activity/workout/{id}` → average heart rate, energy (kJ → kcal), distance (context workout). */
export function normalizeWhoopWorkout(input: unknown): WhoopOutcome {
  const parsed = scored(input, 'id')
  if (isOutcome(parsed)) return parsed
  const frame = span(parsed.document)
  if (frame === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'start, end and timezone_offset must be ISO-8601 with a zone')
  return draftsOf(WORKOUT_FIELDS, parsed.score, { ...frame, context: 'workout', sourceRecordId: parsed.id, sourceUpdatedAt: parsed.updatedAt })
}

/** `GET /developer/v2/cycle` rows → day strain (context day). A cycle still running (no `end`) is not final. */
export function normalizeWhoopCycle(input: unknown): WhoopOutcome {
  const document = asObject(input)
  if (document !== undefined && document.end == null && document.score_state === 'SCORED') return { kind: 'unscored' }
  const parsed = scored(input, 'id')
  if (isOutcome(parsed)) return parsed
  const frame = span(parsed.document)
  if (frame === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'start, end and timezone_offset must be ISO-8601 with a zone')
  return draftsOf(CYCLE_FIELDS, parsed.score, { ...frame, context: 'day', sourceRecordId: parsed.id, sourceUpdatedAt: parsed.updatedAt })
}
