/** Canonical units of the catalog (design §7). */
export type CanonicalUnit =
  | 'ms' | 'bpm' | 'breaths/min' | 'degC' | '%' | 'score' | 'min' | 'kcal' | 'count' | 'm' | 'strain' | 'mL/kg/min'

export interface MetricDefinition {
  name: string
  unit: CanonicalUnit
  /** Physiological (or definitional) bounds in the canonical unit, inclusive. */
  min: number
  max: number
  description: string
  /** True when the value is a difference of temperatures, not an absolute temperature. */
  isDifference?: boolean
}

const DAY_MINUTES = 24 * 60

/**
 * The metric catalog as data. Bounds are deliberately wide: they reject sensor garbage and unit mistakes
 * (a heart rate of 0.8 is a fraction, 4,000 steps of distance is a unit error), not unusual physiology.
 */
export const METRICS = {
  hrv_rmssd: { unit: 'ms', min: 1, max: 500, description: 'Heart-rate variability, RMSSD' },
  hrv_sdnn: { unit: 'ms', min: 1, max: 500, description: 'Heart-rate variability, SDNN' },
  heart_rate: { unit: 'bpm', min: 20, max: 300, description: 'Heart rate' },
  resting_heart_rate: { unit: 'bpm', min: 20, max: 200, description: 'Resting heart rate' },
  respiratory_rate: { unit: 'breaths/min', min: 2, max: 80, description: 'Respiratory rate' },
  // A deviation is a temperature difference: degF converts by 5/9 without the 32° offset.
  temperature_deviation: { unit: 'degC', min: -10, max: 10, description: 'Body temperature deviation from baseline', isDifference: true },
  skin_temperature: { unit: 'degC', min: 20, max: 45, description: 'Skin or wrist temperature' },
  spo2: { unit: '%', min: 50, max: 100, description: 'Blood oxygen saturation' },
  sleep_score: { unit: 'score', min: 0, max: 100, description: 'Sleep score' },
  sleep_performance: { unit: '%', min: 0, max: 100, description: 'Sleep performance' },
  deep_sleep_minutes: { unit: 'min', min: 0, max: DAY_MINUTES, description: 'Deep (slow-wave) sleep' },
  rem_sleep_minutes: { unit: 'min', min: 0, max: DAY_MINUTES, description: 'REM sleep' },
  light_sleep_minutes: { unit: 'min', min: 0, max: DAY_MINUTES, description: 'Light (core) sleep' },
  awake_minutes: { unit: 'min', min: 0, max: DAY_MINUTES, description: 'Awake time in a sleep period' },
  total_sleep_minutes: { unit: 'min', min: 0, max: DAY_MINUTES, description: 'Total sleep' },
  recovery_score: { unit: 'score', min: 0, max: 100, description: 'Readiness / recovery score' },
  hrv_balance: { unit: 'score', min: 0, max: 100, description: 'HRV balance contributor' },
  temperature_score: { unit: 'score', min: 0, max: 100, description: 'Body temperature contributor' },
  activity_balance: { unit: 'score', min: 0, max: 100, description: 'Activity balance contributor' },
  activity_score: { unit: 'score', min: 0, max: 100, description: 'Activity score' },
  active_calories: { unit: 'kcal', min: 0, max: 20_000, description: 'Active energy' },
  steps: { unit: 'count', min: 0, max: 200_000, description: 'Steps' },
  distance_meters: { unit: 'm', min: 0, max: 500_000, description: 'Distance walked or run' },
  strain: { unit: 'strain', min: 0, max: 21, description: 'WHOOP day strain' },
  vo2_max: { unit: 'mL/kg/min', min: 5, max: 100, description: 'VO2 max' }
} as const satisfies Record<string, Omit<MetricDefinition, 'name'>>


export type MetricName = keyof typeof METRICS

export const METRIC_NAMES = Object.keys(METRICS) as MetricName[]

export function isMetricName(name: string): name is MetricName {
  return Object.hasOwn(METRICS, name)
}

export function metricDefinition(name: MetricName): MetricDefinition {
  const definition: MetricDefinition = { name, ...METRICS[name] }
  return definition
}
