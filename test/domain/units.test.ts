import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { METRIC_NAMES, METRICS, type MetricName } from '../../src/domain/catalog.ts'
import { UNIT_SPELLINGS, convert, isKnownUnit, toCanonical } from '../../src/domain/units.ts'

const RELATIVE_TOLERANCE = 1e-9

/** Equal within 1e-9 relative to the larger magnitude; values near 0 are compared on a scale of 1. */
function assertClose(actual: number | undefined, expected: number, label: string): void {
  assert.ok(actual !== undefined, `${label}: conversion refused`)
  const scale = Math.max(1, Math.abs(expected), Math.abs(actual))
  assert.ok(Math.abs(actual - expected) <= RELATIVE_TOLERANCE * scale, `${label}: got ${actual}, expected ${expected}`)
}

interface AliasCase {
  alias: string
  dimension: string
  value: number
  to: string
  expected: number
}

// One row per spelling in units.ts, converted to a catalog unit of its dimension. Expectations are computed by
// hand from the unit's definition, not from the code under test.
const ALIASES: AliasCase[] = [
  { alias: 'ms', dimension: 'duration', value: 48, to: 'ms', expected: 48 },
  { alias: 's', dimension: 'duration', value: 0.048, to: 'ms', expected: 48 },
  { alias: 'sec', dimension: 'duration', value: 90, to: 'min', expected: 1.5 },
  { alias: 'min', dimension: 'duration', value: 42, to: 'min', expected: 42 },
  { alias: 'h', dimension: 'duration', value: 1.5, to: 'min', expected: 90 },
  { alias: 'hr', dimension: 'duration', value: 2, to: 'min', expected: 120 },
  { alias: 'hours', dimension: 'duration', value: 7.25, to: 'min', expected: 435 },

  { alias: 'bpm', dimension: 'rate', value: 61, to: 'bpm', expected: 61 },
  { alias: 'count/min', dimension: 'rate', value: 72, to: 'bpm', expected: 72 },
  { alias: 'beats/min', dimension: 'rate', value: 58, to: 'bpm', expected: 58 },
  { alias: 'breaths/min', dimension: 'rate', value: 14.5, to: 'breaths/min', expected: 14.5 },
  { alias: '/min', dimension: 'rate', value: 15, to: 'breaths/min', expected: 15 },
  { alias: 'count/s', dimension: 'rate', value: 1.2, to: 'bpm', expected: 72 },

  { alias: 'degc', dimension: 'temperature', value: 36.6, to: 'degC', expected: 36.6 },
  { alias: '°c', dimension: 'temperature', value: 34.1, to: 'degC', expected: 34.1 },
  { alias: 'c', dimension: 'temperature', value: 33, to: 'degC', expected: 33 },
  { alias: 'degf', dimension: 'temperature', value: 98.6, to: 'degC', expected: 37 },
  { alias: '°f', dimension: 'temperature', value: 32, to: 'degC', expected: 0 },
  { alias: 'f', dimension: 'temperature', value: 212, to: 'degC', expected: 100 },

  { alias: '%', dimension: 'proportion', value: 97, to: '%', expected: 97 },
  { alias: 'percent', dimension: 'proportion', value: 88, to: '%', expected: 88 },
  { alias: 'fraction', dimension: 'proportion', value: 0.97, to: '%', expected: 97 },

  { alias: 'kcal', dimension: 'energy', value: 512, to: 'kcal', expected: 512 },
  { alias: 'Cal', dimension: 'energy', value: 512, to: 'kcal', expected: 512 },
  { alias: 'cal', dimension: 'energy', value: 512_000, to: 'kcal', expected: 512 },
  { alias: 'kj', dimension: 'energy', value: 4184, to: 'kcal', expected: 1000 },
  { alias: 'j', dimension: 'energy', value: 418_400, to: 'kcal', expected: 100 },

  { alias: 'count', dimension: 'count', value: 8421, to: 'count', expected: 8421 },
  { alias: 'steps', dimension: 'count', value: 1234, to: 'count', expected: 1234 },

  { alias: 'm', dimension: 'length', value: 5, to: 'm', expected: 5 },
  { alias: 'km', dimension: 'length', value: 5.2, to: 'm', expected: 5200 },
  { alias: 'cm', dimension: 'length', value: 150, to: 'm', expected: 1.5 },
  { alias: 'mi', dimension: 'length', value: 3.1, to: 'm', expected: 4988.9664 },
  { alias: 'ft', dimension: 'length', value: 1000, to: 'm', expected: 304.8 },
  { alias: 'yd', dimension: 'length', value: 100, to: 'm', expected: 91.44 },

  { alias: 'ml/kg/min', dimension: 'vo2', value: 42.5, to: 'mL/kg/min', expected: 42.5 },
  { alias: 'ml/(kg·min)', dimension: 'vo2', value: 42.5, to: 'mL/kg/min', expected: 42.5 },
  { alias: 'ml/(kg*min)', dimension: 'vo2', value: 42.5, to: 'mL/kg/min', expected: 42.5 },
  { alias: 'ml/min·kg', dimension: 'vo2', value: 42.5, to: 'mL/kg/min', expected: 42.5 },
  { alias: 'ml/kg·min', dimension: 'vo2', value: 42.5, to: 'mL/kg/min', expected: 42.5 },

  { alias: 'score', dimension: 'score', value: 82, to: 'score', expected: 82 },
  { alias: 'strain', dimension: 'strain', value: 12.3, to: 'strain', expected: 12.3 }
]

describe('unit spellings', () => {
  test('the table above covers every spelling units.ts accepts, once', () => {
    const tabled = ALIASES.map((row) => row.alias)
    assert.equal(new Set(tabled).size, tabled.length)
    assert.deepEqual([...tabled].sort(), [...UNIT_SPELLINGS].sort())
  })

  test('every catalog unit is a known unit', () => {
    for (const metric of METRIC_NAMES) assert.ok(isKnownUnit(METRICS[metric].unit), METRICS[metric].unit)
  })

  for (const row of ALIASES) {
    test(`${row.value} ${row.alias} is ${row.expected} ${row.to}`, () => {
      assertClose(convert(row.value, row.alias, row.to), row.expected, row.alias)
    })
  }
})

describe('convert', () => {
  const cases: Array<{ title: string, value: number, from: string, to: string, expected: number, difference?: boolean }> = [
    { title: 'kJ to kcal', value: 418.4, from: 'kJ', to: 'kcal', expected: 100 },
    { title: 'kcal to kJ', value: 100, from: 'kcal', to: 'kJ', expected: 418.4 },
    { title: 'km to m', value: 10, from: 'km', to: 'm', expected: 10_000 },
    { title: 'mi to m', value: 1, from: 'mi', to: 'm', expected: 1609.344 },
    { title: 'mi to km', value: 26.2, from: 'mi', to: 'km', expected: 42.1648128 },
    { title: 'degF to degC, absolute', value: 98.6, from: 'degF', to: 'degC', expected: 37 },
    { title: 'degF to degC, absolute, below zero', value: -40, from: 'degF', to: 'degC', expected: -40 },
    { title: 'degC to degF, absolute', value: 100, from: 'degC', to: 'degF', expected: 212 },
    { title: 'degF to degC, difference', value: 1.8, from: 'degF', to: 'degC', expected: 1, difference: true },
    { title: 'degF to degC, negative difference', value: -0.9, from: 'degF', to: 'degC', expected: -0.5, difference: true },
    { title: 'degC to degF, difference', value: 0.5, from: 'degC', to: 'degF', expected: 0.9, difference: true },
    { title: 'a difference flag changes nothing without an offset', value: 3, from: 'km', to: 'm', expected: 3000, difference: true },
    { title: 'hours to min', value: 8, from: 'hours', to: 'min', expected: 480 },
    { title: 's to min', value: 5400, from: 's', to: 'min', expected: 90 },
    { title: 'ms to min', value: 1_800_000, from: 'ms', to: 'min', expected: 30 },
    { title: 'fraction to %', value: 0.42, from: 'fraction', to: '%', expected: 42 },
    { title: '% to fraction', value: 42, from: '%', to: 'fraction', expected: 0.42 },
    { title: 'count/s to count/min', value: 2, from: 'count/s', to: 'count/min', expected: 120 }
  ]
  for (const row of cases) {
    test(`${row.title}: ${row.value} ${row.from} is ${row.expected} ${row.to}`, () => {
      assertClose(convert(row.value, row.from, row.to, row.difference ?? false), row.expected, row.title)
    })
  }

  const spellings: Array<[string, string]> = [
    ['KJ', 'kj'], ['Kj', 'kj'], [' kJ ', 'kj'], ['k J', 'kj'], ['DEGF', 'degf'], ['Deg F', 'degf'], ['°F', '°f'],
    ['mL/kg/min', 'ml/kg/min'], ['ML / KG / MIN', 'ml/kg/min'], ['Count/Min', 'count/min'], ['HOURS', 'hours'],
    ['KM', 'km'], ['Mi', 'mi'], ['Fraction', 'fraction'], ['\tkcal\n', 'kcal']
  ]
  for (const [written, canonical] of spellings) {
    test(`"${written}" reads as "${canonical}" (case and spaces do not matter)`, () => {
      assert.ok(isKnownUnit(written))
      assert.equal(convert(7, written, canonical), 7)
    })
  }

  for (const unknown of ['furlong', 'mmHg', 'kg', '', ' ', 'k-j', 'kcal/h', 'constructor', 'toString', '__proto__']) {
    test(`refuses the unknown unit "${unknown}"`, () => {
      assert.equal(isKnownUnit(unknown), false)
      assert.equal(convert(1, unknown, 'm'), undefined)
      assert.equal(convert(1, 'm', unknown), undefined)
    })
  }

  const crossings: Array<[string, string]> = [
    ['km', 'kcal'], ['kJ', 'm'], ['degF', '%'], ['hours', 'bpm'], ['bpm', 'min'], ['count', 'm'], ['score', '%'],
    ['strain', 'score'], ['mL/kg/min', 'bpm'], ['fraction', 'count']
  ]
  for (const [from, to] of crossings) {
    test(`refuses to convert ${from} to ${to} (different dimensions)`, () => {
      assert.equal(convert(1, from, to), undefined)
    })
  }
})

describe('toCanonical', () => {
  const cases: Array<{ metric: MetricName, value: number, unit: string | undefined, expected: number }> = [
    { metric: 'active_calories', value: 2092, unit: 'kJ', expected: 500 },
    { metric: 'distance_meters', value: 5, unit: 'km', expected: 5000 },
    { metric: 'distance_meters', value: 2, unit: 'mi', expected: 3218.688 },
    { metric: 'skin_temperature', value: 93.2, unit: 'degF', expected: 34 },
    // A deviation is a difference: 0.9 °F of deviation is 0.5 °C, not −17.3 °C.
    { metric: 'temperature_deviation', value: 0.9, unit: 'degF', expected: 0.5 },
    { metric: 'temperature_deviation', value: -0.45, unit: '°F', expected: -0.25 },
    { metric: 'deep_sleep_minutes', value: 1.25, unit: 'hours', expected: 75 },
    { metric: 'rem_sleep_minutes', value: 5400, unit: 's', expected: 90 },
    { metric: 'heart_rate', value: 64, unit: 'count/min', expected: 64 },
    { metric: 'sleep_performance', value: 0.85, unit: 'fraction', expected: 85 },
    { metric: 'hrv_sdnn', value: 0.0482, unit: 's', expected: 48.2 },
    { metric: 'steps', value: 4321, unit: undefined, expected: 4321 },
    { metric: 'steps', value: 4321, unit: '', expected: 4321 },
    { metric: 'vo2_max', value: 44.1, unit: 'mL/(kg·min)', expected: 44.1 }
  ]
  for (const row of cases) {
    test(`${row.metric}: ${row.value} ${row.unit ?? '(no unit)'} is ${row.expected} ${METRICS[row.metric].unit}`, () => {
      const result = toCanonical(row.metric, row.value, row.unit)
      assert.ok(result.ok, JSON.stringify(result))
      assertClose(result.value, row.expected, row.metric)
    })
  }

  // HealthKit measures OxygenSaturation as a fraction even when its unit says %; a value of at most 1 cannot
  // be a survivable percentage.
  const spo2: Array<{ value: number, unit: string | undefined, expected: number }> = [
    { value: 0.97, unit: '%', expected: 97 },
    { value: 0.97, unit: undefined, expected: 97 },
    { value: 0.97, unit: '', expected: 97 },
    { value: 0.97, unit: 'fraction', expected: 97 },
    { value: 0.97, unit: 'percent', expected: 97 },
    { value: 1, unit: '%', expected: 100 },
    { value: 97, unit: '%', expected: 97 },
    { value: 97, unit: undefined, expected: 97 },
    { value: 1.5, unit: '%', expected: 1.5 },
    { value: 0, unit: '%', expected: 0 }
  ]
  for (const row of spo2) {
    test(`spo2: ${row.value} ${row.unit ?? '(no unit)'} reads as ${row.expected} %`, () => {
      const result = toCanonical('spo2', row.value, row.unit)
      assert.ok(result.ok)
      assertClose(result.value, row.expected, 'spo2')
    })
  }

  test('spo2: the fraction heuristic does not apply to a unit of another dimension', () => {
    assert.equal(toCanonical('spo2', 0.97, 'bpm').ok, false)
  })

  test('the fraction heuristic is for spo2 only', () => {
    const result = toCanonical('sleep_performance', 0.97, '%')
    assert.ok(result.ok)
    assert.equal(result.value, 0.97)
  })

  test('rejects an unknown unit with a reason naming it', () => {
    const result = toCanonical('heart_rate', 60, 'furlongs')
    assert.equal(result.ok, false)
    assert.ok(!result.ok && result.reason.includes('furlongs') && result.reason.includes('bpm'))
  })

  test('rejects a unit of another dimension', () => {
    for (const [metric, unit] of [['heart_rate', 'ms'], ['steps', 'km'], ['active_calories', 'm'], ['spo2', 'degC']] as const) {
      assert.equal(toCanonical(metric, 60, unit).ok, false, `${metric} in ${unit}`)
    }
  })

  test('the canonical unit, in any case, converts to itself for every metric', () => {
    for (const metric of METRIC_NAMES) {
      const { unit, min, max } = METRICS[metric]
      const value = (min + max) / 2
      for (const written of [unit, unit.toUpperCase(), ` ${unit} `]) {
        assert.deepEqual(toCanonical(metric, value, written), { ok: true, value }, `${metric} in "${written}"`)
      }
    }
  })
})

describe('unit properties', () => {
  const byDimension = new Map<string, string[]>()
  for (const row of ALIASES) byDimension.set(row.dimension, [...byDimension.get(row.dimension) ?? [], row.alias])
  const sameDimensionPair = fc.constantFrom(...byDimension.values())
    .chain((aliases) => fc.tuple(fc.constantFrom(...aliases), fc.constantFrom(...aliases)))
  const finite = fc.double({ min: -1e9, max: 1e9, noNaN: true })

  test('converting to a unit of the same dimension and back is the identity', () => {
    fc.assert(fc.property(sameDimensionPair, finite, fc.boolean(), ([from, to], value, difference) => {
      const there = convert(value, from, to, difference)
      assert.ok(there !== undefined)
      assertClose(convert(there, to, from, difference), value, `${from} → ${to} → ${from}`)
    }), { numRuns: 2000 })
  })

  test('conversion between different dimensions is always refused', () => {
    const rows = fc.constantFrom(...ALIASES)
    fc.assert(fc.property(rows, rows, finite, (a, b, value) => {
      fc.pre(a.dimension !== b.dimension)
      assert.equal(convert(value, a.alias, b.alias), undefined)
    }))
  })

  test('conversion is linear for units without an offset: twice the input, twice the output', () => {
    const withOffset = ['degf', '°f', 'f']
    const linearPair = sameDimensionPair.filter(([from, to]) => !withOffset.includes(from) && !withOffset.includes(to))
    fc.assert(fc.property(linearPair, finite, ([from, to], value) => {
      const once = convert(value, from, to)
      assert.ok(once !== undefined)
      assertClose(convert(2 * value, from, to), 2 * once, `${from} → ${to}`)
    }))
  })

  test('non-finite values stay non-finite through any conversion', () => {
    const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)
    fc.assert(fc.property(sameDimensionPair, nonFinite, ([from, to], value) => {
      const converted = convert(value, from, to)
      assert.ok(converted !== undefined && !Number.isFinite(converted))
    }))
  })
})
