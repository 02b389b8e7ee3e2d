import type { MetricName } from '../../domain/catalog.ts'

/** HealthKit quantity types the bridge maps, by identifier without the HKQuantityTypeIdentifier prefix. */
export const QUANTITY_TYPES: Readonly<Record<string, MetricName>> = {
  HeartRate: 'heart_rate',
  HeartRateVariabilitySDNN: 'hrv_sdnn',
  RestingHeartRate: 'resting_heart_rate',
  RespiratoryRate: 'respiratory_rate',
  AppleSleepingWristTemperature: 'skin_temperature',
  OxygenSaturation: 'spo2',
  ActiveEnergyBurned: 'active_calories',
  StepCount: 'steps',
  DistanceWalkingRunning: 'distance_meters',
  VO2Max: 'vo2_max'
}

export const SLEEP_ANALYSIS = 'SleepAnalysis'

/**
 * HKCategoryValueSleepAnalysis raw values → stage metric. inBed (0) overlaps the stage spans and
 * asleepUnspecified (1) has no stage, so both are valid input that yields no event.
 */
export const SLEEP_STAGES: Readonly<Record<number, MetricName | null>> = {
  0: null,
  1: null,
  2: 'awake_minutes',
  3: 'light_sleep_minutes',
  4: 'deep_sleep_minutes',
  5: 'rem_sleep_minutes'
}

const PREFIXES = ['HKQuantityTypeIdentifier', 'HKCategoryTypeIdentifier']

export function shortTypeName(identifier: string): string {
  for (const prefix of PREFIXES) {
    if (identifier.startsWith(prefix)) return identifier.slice(prefix.length)
  }
  return identifier
}
