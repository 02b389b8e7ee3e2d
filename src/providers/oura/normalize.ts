import type { EventDraft } from '../../domain/build-event.ts'
import type { MetricName } from '../../domain/catalog.ts'
import { formatInstant, offsetMinutesOf } from '../../domain/time.ts'
import { parseInstant, type Rejection } from '../../domain/validation.ts'
import { parseOuraDataType, type OuraDataType } from './documents.ts'
import { asObject } from '../json-object.ts'

/** What one fetched Oura document (or one heart-rate row) turned into. */
export type OuraOutcome =
  /**
   * One draft per metric Oura filled in; empty when every mapped field is null. `record` (documents only, not
   * heart-rate rows) says the drafts are the whole record at that revision: stored events of the record that
   * are not among them describe fields Oura has since cleared.
   */
  | { kind: 'drafts', drafts: EventDraft[], record?: { sourceRecordId: string, sourceUpdatedAt: string | null } }
  | { kind: 'rejected', rejection: Rejection }
  /**
   * The document exists but no longer describes a sleep period (`type` `deleted` or `rest`). It yields no
   * events, and events stored from an earlier revision of the same document are stale: the caller deletes the
   * rows of `sourceRecordId`, as for a provider delete.
   */
  | { kind: 'retracted', sourceRecordId: string }

export type HeartRateOutcome = Exclude<OuraOutcome, { kind: 'retracted' }>

interface FieldMapping {
  metric: MetricName
  /** Property path inside the document. */
  field: readonly string[]
  /** The unit Oura delivers the field in (spec 1.29); buildEvent converts it to the catalog's. */
  unit: string
}

// Design §7, Oura column. Oura's nightly HRV is rMSSD although the API spec does not name the method; the
// catalog files it as hrv_rmssd so it never lands in one series with HealthKit's SDNN.
const SLEEP_FIELDS: readonly FieldMapping[] = [
  { metric: 'hrv_rmssd', field: ['average_hrv'], unit: 'ms' },
  { metric: 'heart_rate', field: ['average_heart_rate'], unit: 'bpm' },
  { metric: 'resting_heart_rate', field: ['lowest_heart_rate'], unit: 'bpm' },
  { metric: 'respiratory_rate', field: ['average_breath'], unit: 'breaths/min' },
  { metric: 'deep_sleep_minutes', field: ['deep_sleep_duration'], unit: 's' },
  { metric: 'rem_sleep_minutes', field: ['rem_sleep_duration'], unit: 's' },
  { metric: 'light_sleep_minutes', field: ['light_sleep_duration'], unit: 's' },
  { metric: 'awake_minutes', field: ['awake_time'], unit: 's' },
  { metric: 'total_sleep_minutes', field: ['total_sleep_duration'], unit: 's' }
]

type DailyDataType = Exclude<OuraDataType, 'sleep'>

const DAILY_FIELDS: Readonly<Record<DailyDataType, readonly FieldMapping[]>> = {
  daily_sleep: [{ metric: 'sleep_score', field: ['score'], unit: 'score' }],
  daily_readiness: [
    { metric: 'recovery_score', field: ['score'], unit: 'score' },
    // A deviation from the personal baseline, so a temperature difference (units.ts converts it without offset).
    { metric: 'temperature_deviation', field: ['temperature_deviation'], unit: 'degC' },
    { metric: 'hrv_balance', field: ['contributors', 'hrv_balance'], unit: 'score' },
    { metric: 'temperature_score', field: ['contributors', 'body_temperature'], unit: 'score' },
    { metric: 'activity_balance', field: ['contributors', 'activity_balance'], unit: 'score' }
  ],
  daily_activity: [
    { metric: 'activity_score', field: ['score'], unit: 'score' },
    { metric: 'active_calories', field: ['active_calories'], unit: 'kcal' },
    { metric: 'steps', field: ['steps'], unit: 'count' },
    // The walking distance that would burn the same energy, not a distance travelled; daily_activity has no other.
    { metric: 'distance_meters', field: ['equivalent_walking_distance'], unit: 'm' }
  ],
  // A percentage per the spec; should Oura ever send a 0–1 fraction, toCanonical scales values ≤ 1 by 100.
  daily_spo2: [{ metric: 'spo2', field: ['spo2_percentage', 'average'], unit: '%' }],
  vo2_max: [{ metric: 'vo2_max', field: ['vo2_max'], unit: 'mL/kg/min' }]
}

/**
 * Local hour at which the provider's day starts: Oura defines daily activity as the 24 hours from 04:00; every
 * other daily document belongs to its calendar day.
 */
const DAY_START_HOUR: Readonly<Record<DailyDataType, number>> = {
  daily_sleep: 0,
  daily_readiness: 0,
  daily_activity: 4,
  daily_spo2: 0,
  vo2_max: 0
}

const SLEEP_TYPES = new Set(['sleep', 'long_sleep', 'late_nap', 'deleted', 'rest'])
/**
 * `deleted`: the user removed the period in the app. `rest`: Oura rejected it as a false detection (the wearer
 * rested but did not sleep). Neither is a sleep period, so its averages and stage totals would be wrong as sleep
 * metrics; and since a document can turn into either after it was first scored, its events are retracted.
 */
const RETRACTED_SLEEP_TYPES = new Set(['deleted', 'rest'])

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/
const ZONE_PATTERN = /(?:Z|[+-]\d{2}:?\d{2})$/i
/** Oura ids are UUIDs; anything printable and bounded is accepted, since the id is only ever a storage key. */
const ID_PATTERN = /^[\x21-\x7e]{1,128}$/

function rejected(code: Rejection['code'], message: string): HeartRateOutcome {
  return { kind: 'rejected', rejection: { code, message } }
}

/** A LocalizedDateTime: ISO-8601 with the wearer's offset at the time. */
function zonedTimestamp(value: unknown): string | undefined {
  return parseInstant(value) === undefined ? undefined : value as string
}

/** Oura's UtcDateTime fields are UTC by definition, so a missing zone means Z rather than an ambiguity. */
function utcTimestamp(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const zoned = ZONE_PATTERN.test(value) ? value : `${value}Z`
  return parseInstant(zoned) === undefined ? undefined : zoned
}

/** The number at `path`; null when Oura left it (or an object on the way) null or absent; undefined when mistyped. */
function numberAt(document: Record<string, unknown>, path: readonly string[]): number | null | undefined {
  let current: unknown = document
  for (const key of path) {
    if (current == null) return null
    const object = asObject(current)
    if (object === undefined) return undefined
    current = Object.hasOwn(object, key) ? object[key] : undefined
  }
  if (current == null) return null
  return typeof current === 'number' ? current : undefined
}

type DraftFrame = Omit<EventDraft, 'metric' | 'value' | 'unit'>

function draftsOf(fields: readonly FieldMapping[], document: Record<string, unknown>, frame: DraftFrame): OuraOutcome {
  const drafts: EventDraft[] = []
  for (const { metric, field, unit } of fields) {
    const value = numberAt(document, field)
    if (value === undefined) return rejected('BB_SAMPLE_MALFORMED', `${field.join('.')} must be a number or null`)
    if (value === null) continue
    drafts.push({ ...frame, metric, value, unit })
  }
  return { kind: 'drafts', drafts, record: { sourceRecordId: frame.sourceRecordId, sourceUpdatedAt: frame.sourceUpdatedAt ?? null } }
}

/**
 * The provider's day as a span: `day` at the day-start hour, in the offset of the document's `timestamp`, to the
 * same time one day later. Only the offset is taken from `timestamp`: for readiness, sleep and activity it is the
 * day start, but for VO2 max it is the moment of the estimate, so its clock time is never used. Without a
 * timestamp (daily SpO₂ has none) the wearer's offset is unknown and UTC is used.
 */
function daySpan(day: unknown, offsetMinutes: number, startHour: number): { start: string, end: string } | undefined {
  if (typeof day !== 'string' || !DATE_PATTERN.test(day)) return undefined
  const midnightUtcMs = parseInstant(`${day}T00:00:00Z`)
  if (midnightUtcMs === undefined) return undefined
  const startMs = midnightUtcMs + startHour * HOUR_MS - offsetMinutes * 60_000
  return { start: formatInstant(startMs, offsetMinutes), end: formatInstant(startMs + DAY_MS, offsetMinutes) }
}

function normalizeSleep(
  document: Record<string, unknown>, sourceRecordId: string, sourceUpdatedAt: string | null
): OuraOutcome {
  const type = document.type
  // Older payloads omit the type; they are sleep periods.
  if (type != null && (typeof type !== 'string' || !SLEEP_TYPES.has(type))) {
    return rejected('BB_SAMPLE_MALFORMED', 'sleep type must be sleep, long_sleep, late_nap, rest or deleted')
  }
  if (typeof type === 'string' && RETRACTED_SLEEP_TYPES.has(type)) return { kind: 'retracted', sourceRecordId }
  const start = zonedTimestamp(document.bedtime_start)
  const end = zonedTimestamp(document.bedtime_end)
  if (start === undefined || end === undefined) {
    return rejected('BB_SAMPLE_BAD_TIME', 'bedtime_start and bedtime_end must be ISO-8601 timestamps with a zone')
  }
  return draftsOf(SLEEP_FIELDS, document, {
    start, end, context: 'sleep', sourceRecordId, sourceUpdatedAt, deviceType: 'oura_ring'
  })
}

function normalizeDaily(
  dataType: DailyDataType, document: Record<string, unknown>, sourceRecordId: string, sourceUpdatedAt: string | null
): OuraOutcome {
  let offsetMinutes = 0
  if (document.timestamp != null) {
    const timestamp = zonedTimestamp(document.timestamp)
    if (timestamp === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'timestamp must be an ISO-8601 timestamp with a zone')
    offsetMinutes = offsetMinutesOf(timestamp)
  }
  const span = daySpan(document.day, offsetMinutes, DAY_START_HOUR[dataType])
  if (span === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'day must be a calendar date (YYYY-MM-DD)')
  return draftsOf(DAILY_FIELDS[dataType], document, {
    ...span, context: 'day', sourceRecordId, sourceUpdatedAt, deviceType: 'oura_ring'
  })
}

/**
 * Maps one fetched Oura v2 document (`GET /v2/usercollection/{type}/{id}` or one `data[]` entry of a collection)
 * to event drafts per the catalog's Oura column. `dataType` is the webhook spelling or the path spelling.
 * Shape problems come back as a rejection; units and bounds are left to buildEvent.
 */
export function normalizeOuraDocument(dataType: string, input: unknown): OuraOutcome {
  const type = parseOuraDataType(dataType)
  if (type === undefined) {
    return rejected('BB_SAMPLE_UNKNOWN_TYPE', `Oura data type ${String(dataType).slice(0, 40)} is not supported`)
  }
  const document = asObject(input)
  if (document === undefined) return rejected('BB_SAMPLE_MALFORMED', 'an Oura document must be an object')
  const id = document.id
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    return rejected('BB_SAMPLE_MALFORMED', 'id must be a non-empty string of at most 128 printable characters')
  }
  // meta arrived with spec 1.29; older documents have none, and then revisions cannot be ordered.
  let sourceUpdatedAt: string | null = null
  if (document.meta != null) {
    const meta = asObject(document.meta)
    if (meta === undefined) return rejected('BB_SAMPLE_MALFORMED', 'meta must be an object')
    if (meta.updated_at != null) {
      const updatedAt = utcTimestamp(meta.updated_at)
      if (updatedAt === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'meta.updated_at must be an ISO-8601 timestamp')
      sourceUpdatedAt = updatedAt
    }
  }
  return type === 'sleep'
    ? normalizeSleep(document, id, sourceUpdatedAt)
    : normalizeDaily(type, document, id, sourceUpdatedAt)
}

/**
 * Maps one row of the `heartrate` collection (`{ bpm, source, timestamp }`) to an instant heart_rate draft.
 * Rows have no id, so the instant itself, written in UTC, is the source_record_id (design §6): spelling the same
 * instant `+00:00` or `Z` keeps one key. The context stays null, as for every instant sample: a context names the
 * period a value summarizes (a night, a day, a workout), and Oura's `source` (awake, live, session …) is a
 * measurement mode with no catalog equivalent. It is part of the storage key as well, so a row Oura later
 * relabels would otherwise be stored twice.
 */
export function normalizeOuraHeartRateRow(input: unknown): HeartRateOutcome {
  const row = asObject(input)
  if (row === undefined) return rejected('BB_SAMPLE_MALFORMED', 'a heart-rate row must be an object')
  const at = utcTimestamp(row.timestamp)
  const atMs = parseInstant(at)
  if (at === undefined || atMs === undefined) {
    return rejected('BB_SAMPLE_BAD_TIME', 'timestamp must be an ISO-8601 timestamp')
  }
  if (row.bpm == null) return { kind: 'drafts', drafts: [] }
  if (typeof row.bpm !== 'number') return rejected('BB_SAMPLE_MALFORMED', 'bpm must be a number')
  return {
    kind: 'drafts',
    drafts: [{
      metric: 'heart_rate',
      value: row.bpm,
      unit: 'bpm',
      start: at,
      end: at,
      context: null,
      sourceRecordId: formatInstant(atMs, 0),
      sourceUpdatedAt: null,
      deviceType: 'oura_ring'
    }]
  }
}

/** One outcome per row, in order, so a caller can count and report rejected rows by index. */
export function normalizeOuraHeartRate(rows: readonly unknown[]): HeartRateOutcome[] {
  return rows.map((row) => normalizeOuraHeartRateRow(row))
}
