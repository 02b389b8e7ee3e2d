import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { METRIC_NAMES, METRICS } from '../../src/domain/catalog.ts'
import {
  EARLIEST_MS, MAX_FUTURE_MS, MAX_SPAN_MS, parseInstant, validateSpan, validateValue
} from '../../src/domain/validation.ts'

const HOUR_MS = 3_600_000
const NOW_MS = Date.parse('2026-01-07T12:00:00Z')
const bounds = { nowMs: NOW_MS }
const metric = fc.constantFrom(...METRIC_NAMES)

describe('parseInstant', () => {
  const accepted: Array<[string, string]> = [
    ['2026-01-06T23:31:10+01:00', '2026-01-06T22:31:10.000Z'],
    ['2026-01-07T06:55:02.100Z', '2026-01-07T06:55:02.100Z'],
    ['2026-01-07T06:55:02z', '2026-01-07T06:55:02.000Z'],
    ['2026-01-07T06:55:02.123456+00:00', '2026-01-07T06:55:02.123Z'],
    ['2026-01-07T06:55Z', '2026-01-07T06:55:00.000Z'],
    ['2026-01-07T06:55:02-0800', '2026-01-07T14:55:02.000Z'],
    ['2026-01-07 06:30:00 +0100', '2026-01-07T05:30:00.000Z'],
    ['2026-01-07T00:00:00+14:00', '2026-01-06T10:00:00.000Z'],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z']
  ]
  for (const [text, iso] of accepted) {
    test(`reads ${text} as ${iso}`, () => {
      assert.equal(parseInstant(text), Date.parse(iso))
    })
  }

  const refused: Array<[unknown, string]> = [
    ['2026-01-07T06:55:02', 'no zone'],
    ['2026-01-07T06:55:02.123', 'no zone, with milliseconds'],
    ['2026-01-07 06:55', 'no zone, space separated'],
    ['2026-01-07', 'a date without a time'],
    ['2026-02-30T10:00:00Z', 'a day that does not exist'],
    ['2025-02-29T10:00:00Z', 'February 29 outside a leap year'],
    ['2026-13-01T10:00:00Z', 'month 13'],
    ['2026-00-10T10:00:00Z', 'month 0'],
    ['2026-01-00T10:00:00Z', 'day 0'],
    ['2026-01-07T25:00:00Z', 'hour 25'],
    ['2026-01-07T10:00:00+24:00', 'an offset of 24 hours'],
    ['Tue, 06 Jan 2026 10:00:00 +0100', 'an RFC 2822 date'],
    ['Jan 6 2026 10:00 +01:00', 'a free-form date'],
    ['not a date at all +01:00', 'garbage with a zone'],
    ['1767693600Z', 'epoch seconds'],
    ['', 'an empty string'],
    ['Z', 'a bare zone'],
    [`2026-01-07T06:55:02.${'1'.repeat(40)}Z`, 'more than 40 characters'],
    [1767693600000, 'a number'],
    [null, 'null'],
    [undefined, 'undefined'],
    [new Date(NOW_MS), 'a Date object']
  ]
  for (const [value, why] of refused) {
    test(`refuses ${why}`, () => {
      assert.equal(parseInstant(value), undefined)
    })
  }

  test('refuses any timestamp written without a zone', () => {
    const instant = fc.integer({ min: EARLIEST_MS, max: Date.parse('2100-01-01T00:00:00Z') })
    fc.assert(fc.property(instant, fc.boolean(), fc.boolean(), (epochMs, withMs, spaced) => {
      let text = new Date(epochMs).toISOString().slice(0, withMs ? -1 : -5)
      if (spaced) text = text.replace('T', ' ')
      assert.equal(parseInstant(text), undefined, text)
    }))
  })
})

describe('validateValue', () => {
  for (const name of METRIC_NAMES) {
    const { min, max } = METRICS[name]
    const step = Math.max(1e-6, (max - min) * 1e-6)
    test(`${name}: accepts ${min} and ${max}, refuses ${min - step} and ${max + step}`, () => {
      assert.equal(validateValue(name, min), undefined)
      assert.equal(validateValue(name, max), undefined)
      assert.equal(validateValue(name, (min + max) / 2), undefined)
      assert.equal(validateValue(name, min - step)?.code, 'BB_SAMPLE_OUT_OF_RANGE')
      assert.equal(validateValue(name, max + step)?.code, 'BB_SAMPLE_OUT_OF_RANGE')
    })
  }

  const examples: Array<[typeof METRIC_NAMES[number], number, string | undefined]> = [
    ['heart_rate', 19.9, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['heart_rate', 20, undefined],
    ['heart_rate', 300, undefined],
    ['heart_rate', 300.1, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['heart_rate', 0.8, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['spo2', 49.9, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['spo2', 50, undefined],
    ['spo2', 100, undefined],
    ['spo2', 100.5, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['spo2', 0.97, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['temperature_deviation', -0.4, undefined],
    ['steps', -1, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['strain', 21.1, 'BB_SAMPLE_OUT_OF_RANGE'],
    ['deep_sleep_minutes', 24 * 60 + 1, 'BB_SAMPLE_OUT_OF_RANGE']
  ]
  for (const [name, value, code] of examples) {
    test(`${name} ${value}: ${code ?? 'accepted'}`, () => {
      assert.equal(validateValue(name, value)?.code, code)
    })
  }

  test('the out-of-range message names the metric, bounds and unit', () => {
    assert.equal(validateValue('heart_rate', 301)?.message, 'heart_rate must be within 20–300 bpm')
  })

  test('NaN and ±Infinity never pass, for any metric', () => {
    const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)
    fc.assert(fc.property(metric, nonFinite, (name, value) => {
      assert.equal(validateValue(name, value)?.code, 'BB_SAMPLE_NOT_FINITE')
    }))
  })

  test('any finite value within a metric\'s bounds is accepted', () => {
    const inside = metric.chain((name) =>
      fc.tuple(fc.constant(name), fc.double({ min: METRICS[name].min, max: METRICS[name].max, noNaN: true })))
    fc.assert(fc.property(inside, ([name, value]) => {
      assert.equal(validateValue(name, value), undefined)
    }), { numRuns: 2000 })
  })

  test('any finite value outside a metric\'s bounds is refused as out of range', () => {
    const outside = metric.chain((name) => {
      const { min, max } = METRICS[name]
      // fast-check orders -0 before 0, but numerically -0 is 0 and inside [0, max].
      const below = fc.double({ max: min, maxExcluded: true, noNaN: true, noDefaultInfinity: true })
        .filter((value) => value < min)
      const above = fc.double({ min: max, minExcluded: true, noNaN: true, noDefaultInfinity: true })
      return fc.tuple(fc.constant(name), fc.oneof(below, above))
    })
    fc.assert(fc.property(outside, ([name, value]) => {
      assert.equal(validateValue(name, value)?.code, 'BB_SAMPLE_OUT_OF_RANGE')
    }), { numRuns: 2000 })
  })
})

describe('validateSpan', () => {
  const start = Date.parse('2026-01-06T23:00:00Z')
  const cases: Array<{ title: string, startMs: number, endMs: number, code: string | undefined }> = [
    { title: 'an ordinary span', startMs: start, endMs: start + 8 * HOUR_MS, code: undefined },
    { title: 'an instant (end = start)', startMs: start, endMs: start, code: undefined },
    { title: 'end one millisecond before start', startMs: start, endMs: start - 1, code: 'BB_SAMPLE_END_BEFORE_START' },
    { title: 'start exactly at 2000-01-01', startMs: EARLIEST_MS, endMs: EARLIEST_MS + HOUR_MS, code: undefined },
    { title: 'start one millisecond before 2000', startMs: EARLIEST_MS - 1, endMs: EARLIEST_MS + HOUR_MS, code: 'BB_SAMPLE_TOO_OLD' },
    { title: 'start in 1970', startMs: 0, endMs: 0, code: 'BB_SAMPLE_TOO_OLD' },
    { title: 'end exactly 24 h ahead', startMs: NOW_MS, endMs: NOW_MS + MAX_FUTURE_MS, code: undefined },
    { title: 'end 24 h and 1 ms ahead', startMs: NOW_MS, endMs: NOW_MS + MAX_FUTURE_MS + 1, code: 'BB_SAMPLE_IN_FUTURE' },
    { title: 'a sample a year ahead', startMs: NOW_MS + 365 * 24 * HOUR_MS, endMs: NOW_MS + 365 * 24 * HOUR_MS, code: 'BB_SAMPLE_IN_FUTURE' },
    { title: 'a span of exactly 8 days', startMs: start - MAX_SPAN_MS, endMs: start, code: undefined },
    { title: 'a span of 8 days and 1 ms', startMs: start - MAX_SPAN_MS - 1, endMs: start, code: 'BB_SAMPLE_SPAN_TOO_LONG' },
    { title: 'a NaN start', startMs: Number.NaN, endMs: start, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'a NaN end', startMs: start, endMs: Number.NaN, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'an infinite end', startMs: start, endMs: Number.POSITIVE_INFINITY, code: 'BB_SAMPLE_BAD_TIME' }
  ]
  for (const row of cases) {
    test(`${row.title}: ${row.code ?? 'accepted'}`, () => {
      assert.equal(validateSpan(row.startMs, row.endMs, bounds)?.code, row.code)
    })
  }

  const plausible = fc.integer({ min: EARLIEST_MS, max: NOW_MS + MAX_FUTURE_MS })

  test('end before start is always refused', () => {
    fc.assert(fc.property(plausible, fc.integer({ min: 1, max: 10 * MAX_SPAN_MS }), (startMs, gap) => {
      assert.equal(validateSpan(startMs, startMs - gap, bounds)?.code, 'BB_SAMPLE_END_BEFORE_START')
    }))
  })

  test('an end more than 24 h after now is always refused', () => {
    const ahead = fc.integer({ min: MAX_FUTURE_MS + 1, max: 100 * 365 * 24 * HOUR_MS })
    fc.assert(fc.property(ahead, fc.integer({ min: 0, max: MAX_SPAN_MS }), (distance, span) => {
      const endMs = NOW_MS + distance
      assert.equal(validateSpan(endMs - span, endMs, bounds)?.code, 'BB_SAMPLE_IN_FUTURE')
    }))
  })

  test('a start before 2000 is always refused', () => {
    const old = fc.integer({ min: Date.parse('1900-01-01T00:00:00Z'), max: EARLIEST_MS - 1 })
    fc.assert(fc.property(old, fc.integer({ min: 0, max: MAX_SPAN_MS }), (startMs, span) => {
      assert.equal(validateSpan(startMs, startMs + span, bounds)?.code, 'BB_SAMPLE_TOO_OLD')
    }))
  })

  test('an ordered span of at most 8 days between 2000 and now + 24 h is accepted', () => {
    fc.assert(fc.property(plausible, fc.integer({ min: 0, max: MAX_SPAN_MS }), (endMs, span) => {
      fc.pre(endMs - span >= EARLIEST_MS)
      assert.equal(validateSpan(endMs - span, endMs, bounds), undefined)
    }))
  })
})
