import { METRICS, type CanonicalUnit, type MetricName } from './catalog.ts'

type Dimension =
  | 'duration' | 'rate' | 'temperature' | 'proportion' | 'energy' | 'count' | 'length' | 'vo2' | 'score' | 'strain'

interface UnitDefinition {
  dimension: Dimension
  /** value_in_base = value × factor + offset; each dimension's base (factor 1, offset 0) is a catalog unit. */
  factor: number
  offset: number
}

const linear = (dimension: Dimension, factor: number): UnitDefinition => ({ dimension, factor, offset: 0 })

// Spellings seen from HealthKit (HKUnit strings), Health Auto Export (locale dependent) and provider APIs.
// Keys are compared lower-cased with spaces removed.
const UNITS: Record<string, UnitDefinition> = {
  ms: linear('duration', 1),
  s: linear('duration', 1000),
  sec: linear('duration', 1000),
  min: linear('duration', 60_000),
  h: linear('duration', 3_600_000),
  hr: linear('duration', 3_600_000),
  hours: linear('duration', 3_600_000),

  bpm: linear('rate', 1),
  'count/min': linear('rate', 1),
  'beats/min': linear('rate', 1),
  'breaths/min': linear('rate', 1),
  '/min': linear('rate', 1),
  'count/s': linear('rate', 60),

  degc: linear('temperature', 1),
  '°c': linear('temperature', 1),
  c: linear('temperature', 1),
  degf: { dimension: 'temperature', factor: 5 / 9, offset: -32 * 5 / 9 },
  '°f': { dimension: 'temperature', factor: 5 / 9, offset: -32 * 5 / 9 },
  f: { dimension: 'temperature', factor: 5 / 9, offset: -32 * 5 / 9 },

  '%': linear('proportion', 1),
  percent: linear('proportion', 1),
  fraction: linear('proportion', 100),

  kcal: linear('energy', 1),
  // HKUnit spells the large (food) calorie "Cal" and the small one "cal": the one case-sensitive spelling.
  Cal: linear('energy', 1),
  cal: linear('energy', 1 / 1000),
  kj: linear('energy', 1 / 4.184),
  j: linear('energy', 1 / 4184),

  count: linear('count', 1),
  steps: linear('count', 1),

  m: linear('length', 1),
  km: linear('length', 1000),
  cm: linear('length', 0.01),
  mi: linear('length', 1609.344),
  ft: linear('length', 0.3048),
  yd: linear('length', 0.9144),

  'ml/kg/min': linear('vo2', 1),
  'ml/(kg·min)': linear('vo2', 1),
  'ml/(kg*min)': linear('vo2', 1),
  'ml/min·kg': linear('vo2', 1),
  'ml/kg·min': linear('vo2', 1),

  score: linear('score', 1),
  strain: linear('strain', 1)
}

/** Every accepted unit spelling, in its lookup form (lower case, no spaces). */
export const UNIT_SPELLINGS: readonly string[] = Object.keys(UNITS)

function lookup(unit: string): UnitDefinition | undefined {
  const trimmed = unit.trim()
  if (trimmed === 'Cal' || trimmed === 'cal') return UNITS[trimmed]
  const key = trimmed.toLowerCase().replaceAll(' ', '')
  return Object.hasOwn(UNITS, key) ? UNITS[key] : undefined
}

export function isKnownUnit(unit: string): boolean {
  return lookup(unit) !== undefined
}

/**
 * Converts `value` from one unit to another of the same dimension. Returns undefined when either unit is
 * unknown or the dimensions differ. `difference` converts a temperature difference (no offset).
 */
export function convert(value: number, from: string, to: string, difference = false): number | undefined {
  const source = lookup(from)
  const target = lookup(to)
  if (source === undefined || target === undefined || source.dimension !== target.dimension) return undefined
  if (source === target) return value
  const sourceOffset = difference ? 0 : source.offset
  const targetOffset = difference ? 0 : target.offset
  return (value * source.factor + sourceOffset - targetOffset) / target.factor
}

/** Longest unit spelling quoted in a rejection message, in UTF-16 code units (every known one is far shorter). */
const MAX_UNIT_ECHO = 32

export type CanonicalValue = { ok: true, value: number } | { ok: false, reason: string }

/**
 * Converts a measured value into its metric's canonical unit. A missing unit means the canonical one.
 * SpO₂ arrives as a fraction from HealthKit (HKUnit.percent measures 0.0–1.0) and as 0–100 elsewhere; a value
 * of at most 1 can only be a fraction, since an oxygen saturation of 1 % is not survivable.
 */
export function toCanonical(metric: MetricName, value: number, deliveredUnit: string | undefined): CanonicalValue {
  const definition = METRICS[metric]
  const canonical: CanonicalUnit = definition.unit
  const unit = deliveredUnit?.trim() === '' ? undefined : deliveredUnit
  if (metric === 'spo2' && Number.isFinite(value) && value > 0 && value <= 1 &&
    (unit === undefined || lookup(unit)?.dimension === 'proportion')) {
    return { ok: true, value: value * 100 }
  }
  if (unit === undefined) return { ok: true, value }
  const converted = convert(value, unit, canonical, 'isDifference' in definition && definition.isDifference)
  if (converted === undefined) {
    // The unit comes from the client: name it, but never echo an arbitrarily long string back in an answer.
    const shown = unit.length > MAX_UNIT_ECHO ? `${unit.slice(0, MAX_UNIT_ECHO)}…` : unit
    return { ok: false, reason: `unit "${shown}" cannot be converted to ${canonical}` }
  }
  return { ok: true, value: converted }
}
