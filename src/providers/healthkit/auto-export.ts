import type { EventDraft } from '../../domain/build-event.ts'
import type { MetricName } from '../../domain/catalog.ts'
import { parseInstant } from '../../domain/validation.ts'
import { deviceTypeOf } from './device.ts'
import type { SampleOutcome } from './native.ts'
import { asObject } from '../json-object.ts'

/** Health Auto Export metric names → catalog metric (design §7). `sleep_analysis` is handled separately. */
const EXPORT_METRICS: Readonly<Record<string, MetricName>> = {
  heart_rate_variability: 'hrv_sdnn',
  heart_rate: 'heart_rate',
  resting_heart_rate: 'resting_heart_rate',
  respiratory_rate: 'respiratory_rate',
  apple_sleeping_wrist_temperature: 'skin_temperature',
  blood_oxygen_saturation: 'spo2',
  active_energy: 'active_calories',
  step_count: 'steps',
  walking_running_distance: 'distance_meters',
  vo2_max: 'vo2_max'
}

/** Aggregated sleep fields → stage metric; `asleep` is the unstaged phase, not total sleep, so it is skipped. */
const AGGREGATED_SLEEP_FIELDS: ReadonlyArray<[string, MetricName]> = [
  ['deep', 'deep_sleep_minutes'],
  ['rem', 'rem_sleep_minutes'],
  ['core', 'light_sleep_minutes'],
  ['awake', 'awake_minutes'],
  ['totalSleep', 'total_sleep_minutes']
]

/** Unaggregated sleep spans: stage name → metric; `In Bed`, `Asleep`, `Unspecified` carry no stage. */
const SLEEP_SPAN_STAGES: Readonly<Record<string, MetricName>> = {
  Deep: 'deep_sleep_minutes',
  REM: 'rem_sleep_minutes',
  Core: 'light_sleep_minutes',
  Awake: 'awake_minutes'
}

export function isSupportedExportMetric(name: string): boolean {
  return name === 'sleep_analysis' || Object.hasOwn(EXPORT_METRICS, name)
}

/**
 * The app writes dates as `yyyy-MM-dd HH:mm:ss Z` (e.g. `2026-01-07 06:30:00 +0100`); ISO-8601 is accepted too.
 * Returns an ISO-8601 string with the original offset, or undefined.
 */
export function parseExportDate(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2}):?(\d{2})$/.exec(text)
  const iso = match === null ? text : `${match[1]}T${match[2]}${match[3]}${match[4]}:${match[5]}`
  return parseInstant(iso) === undefined ? undefined : iso
}

const rejected = (code: 'BB_SAMPLE_MALFORMED' | 'BB_SAMPLE_BAD_TIME', message: string): SampleOutcome =>
  ({ kind: 'rejected', rejection: { code, message } })

export interface ExportMetricHeader {
  name: string
  units: string | undefined
}

/** Maps one data point of a Health Auto Export metric to event drafts. */
export function normalizeExportPoint(header: ExportMetricHeader, input: unknown): SampleOutcome {
  const point = asObject(input)
  if (point === undefined) return rejected('BB_SAMPLE_MALFORMED', 'data point must be an object')
  const sourceName = typeof point.source === 'string' ? point.source : ''
  const deviceType = deviceTypeOf(sourceName, ...sourceName.split('|'))
  if (header.name === 'sleep_analysis') return normalizeSleepPoint(header, point, sourceName, deviceType)

  const metric = EXPORT_METRICS[header.name]
  if (metric === undefined) return { kind: 'ignored' }
  const date = parseExportDate(point.date)
  if (date === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'date must be "yyyy-MM-dd HH:mm:ss Z" or ISO-8601')
  // Heart rate points carry Min/Avg/Max; the catalog keeps the average.
  const value = header.name === 'heart_rate' && point.Avg !== undefined ? point.Avg : point.qty
  if (typeof value !== 'number') return rejected('BB_SAMPLE_MALFORMED', 'qty must be a number')
  return {
    kind: 'drafts',
    drafts: [{
      metric,
      value,
      unit: header.units,
      start: date,
      end: date,
      context: null,
      sourceRecordId: `hae:${header.name}:${date}:${sourceName}`,
      deviceType
    }]
  }
}

function normalizeSleepPoint(
  header: ExportMetricHeader, point: Record<string, unknown>, sourceName: string, deviceType: EventDraft['deviceType']
): SampleOutcome {
  if (typeof point.value === 'string') {
    const start = parseExportDate(point.startDate)
    const end = parseExportDate(point.endDate)
    if (start === undefined || end === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'startDate and endDate must be dates')
    // Own keys only: a stage named `constructor` or `__proto__` must not find Object.prototype's members.
    const metric = Object.hasOwn(SLEEP_SPAN_STAGES, point.value) ? SLEEP_SPAN_STAGES[point.value] : undefined
    if (metric === undefined) return { kind: 'ignored' }
    const minutes = ((parseInstant(end) ?? 0) - (parseInstant(start) ?? 0)) / 60_000
    return {
      kind: 'drafts',
      drafts: [{ metric, value: minutes, unit: 'min', start, end, context: 'sleep', sourceRecordId: `hae:sleep:${start}:${sourceName}`, deviceType }]
    }
  }
  // Aggregated night: stage totals in the metric's units (hours in practice) over sleepStart–sleepEnd.
  const start = parseExportDate(point.sleepStart) ?? parseExportDate(point.inBedStart) ?? parseExportDate(point.date)
  const end = parseExportDate(point.sleepEnd) ?? parseExportDate(point.inBedEnd) ?? start
  if (start === undefined || end === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'sleepStart and sleepEnd must be dates')
  const drafts: EventDraft[] = []
  for (const [field, metric] of AGGREGATED_SLEEP_FIELDS) {
    const value = point[field]
    if (value === undefined || value === null) continue
    if (typeof value !== 'number') return rejected('BB_SAMPLE_MALFORMED', `${field} must be a number`)
    drafts.push({
      metric, value, unit: header.units ?? 'hr', start, end, context: 'sleep', sourceRecordId: `hae:sleep:${start}:${sourceName}`, deviceType
    })
  }
  return drafts.length === 0 ? { kind: 'ignored' } : { kind: 'drafts', drafts }
}

/** Maps one Health Auto Export workout to workout-context drafts (energy, distance, average heart rate). */
export function normalizeExportWorkout(input: unknown): SampleOutcome {
  const workout = asObject(input)
  if (workout === undefined) return rejected('BB_SAMPLE_MALFORMED', 'workout must be an object')
  const start = parseExportDate(workout.start)
  const end = parseExportDate(workout.end)
  if (start === undefined || end === undefined) return rejected('BB_SAMPLE_BAD_TIME', 'start and end must be dates')
  const id = typeof workout.id === 'string' && workout.id.length <= 128 ? workout.id : `hae:workout:${start}`
  const quantities: ReadonlyArray<[unknown, MetricName]> = [
    [workout.activeEnergyBurned ?? workout.activeEnergy, 'active_calories'],
    [workout.distance, 'distance_meters'],
    [workout.avgHeartRate ?? asObject(workout.heartRate)?.avg, 'heart_rate']
  ]
  const drafts: EventDraft[] = []
  for (const [quantityInput, metric] of quantities) {
    const quantity = asObject(quantityInput)
    if (quantity === undefined) continue
    if (typeof quantity.qty !== 'number') return rejected('BB_SAMPLE_MALFORMED', `${metric} qty must be a number`)
    drafts.push({
      metric,
      value: quantity.qty,
      unit: typeof quantity.units === 'string' ? quantity.units : undefined,
      start,
      end,
      context: 'workout',
      sourceRecordId: id,
      deviceType: 'apple_watch'
    })
  }
  return drafts.length === 0 ? { kind: 'ignored' } : { kind: 'drafts', drafts }
}
