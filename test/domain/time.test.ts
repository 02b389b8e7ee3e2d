import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { formatInstant, offsetMinutesOf } from '../../src/domain/time.ts'
import { parseInstant } from '../../src/domain/validation.ts'

const MAX_OFFSET_MINUTES = 14 * 60

describe('offsetMinutesOf', () => {
  const cases: Array<[string, number]> = [
    ['2026-01-06T23:31:10Z', 0],
    ['2026-01-06T23:31:10z', 0],
    ['2026-01-06T23:31:10+00:00', 0],
    ['2026-01-06T23:31:10-00:00', 0],
    ['2026-01-06T23:31:10+01:00', 60],
    ['2026-01-06T23:31:10.123+02:00', 120],
    ['2026-01-06T23:31:10-05:00', -300],
    ['2026-01-06T23:31:10+05:30', 330],
    ['2026-01-06T23:31:10+05:45', 345],
    ['2026-01-06T23:31:10-03:30', -210],
    ['2026-01-06T23:31:10-00:30', -30],
    ['2026-01-06T23:31:10+14:00', 840],
    ['2026-01-06T23:31:10-12:00', -720],
    ['2026-01-07 06:30:00 +0100', 60],
    ['2026-01-07 06:30:00 -0930', -570],
    ['2026-01-06T23:31:10', 0]
  ]
  for (const [text, expected] of cases) {
    test(`${text} is ${expected} minutes east of UTC`, () => {
      // === rather than Object.is: "-00:00" may read as -0, which is the same offset.
      const actual = offsetMinutesOf(text)
      assert.ok(actual === expected, `got ${actual}`)
    })
  }
})

describe('formatInstant', () => {
  const design = Date.parse('2026-01-06T22:31:10Z')
  const cases: Array<{ epochMs: number, offset: number, expected: string }> = [
    { epochMs: 0, offset: 0, expected: '1970-01-01T00:00:00Z' },
    { epochMs: design, offset: 60, expected: '2026-01-06T23:31:10+01:00' },
    { epochMs: design, offset: 0, expected: '2026-01-06T22:31:10Z' },
    { epochMs: design, offset: -300, expected: '2026-01-06T17:31:10-05:00' },
    { epochMs: design, offset: 330, expected: '2026-01-07T04:01:10+05:30' },
    { epochMs: design, offset: -30, expected: '2026-01-06T22:01:10-00:30' },
    { epochMs: design, offset: 840, expected: '2026-01-07T12:31:10+14:00' },
    { epochMs: design, offset: -840, expected: '2026-01-06T08:31:10-14:00' },
    { epochMs: design + 774, offset: 0, expected: '2026-01-06T22:31:10.774Z' },
    { epochMs: design + 5, offset: 60, expected: '2026-01-06T23:31:10.005+01:00' },
    // The local date differs from the UTC date across midnight; the instant is the same.
    { epochMs: Date.parse('2026-03-01T00:30:00Z'), offset: -60, expected: '2026-02-28T23:30:00-01:00' },
    { epochMs: Date.parse('2024-02-29T23:30:00Z'), offset: 60, expected: '2024-03-01T00:30:00+01:00' }
  ]
  for (const row of cases) {
    test(`${row.epochMs} at ${row.offset} minutes is ${row.expected}`, () => {
      assert.equal(formatInstant(row.epochMs, row.offset), row.expected)
    })
  }

  test('writes milliseconds only when present, so provider timestamps round-trip unchanged', () => {
    for (const text of ['2026-01-06T23:31:10+01:00', '2026-01-07T06:55:02.100Z', '2026-01-07T00:00:00-07:00']) {
      const ms = parseInstant(text)
      assert.ok(ms !== undefined)
      assert.equal(formatInstant(ms, offsetMinutesOf(text)), text)
    }
  })

  const instant = fc.integer({ min: Date.parse('0001-01-02T00:00:00Z'), max: Date.parse('9999-12-30T00:00:00Z') })
  const offset = fc.integer({ min: -MAX_OFFSET_MINUTES, max: MAX_OFFSET_MINUTES })

  test('parsing a formatted instant gives back the instant and the offset', () => {
    fc.assert(fc.property(instant, offset, (epochMs, offsetMinutes) => {
      const text = formatInstant(epochMs, offsetMinutes)
      assert.equal(Date.parse(text), epochMs, text)
      assert.equal(offsetMinutesOf(text), offsetMinutes, text)
    }), { numRuns: 2000 })
  })

  test('formatted instants from 2000 on pass parseInstant unchanged', () => {
    const recent = fc.integer({ min: Date.parse('2000-01-01T00:00:00Z'), max: Date.parse('2100-01-01T00:00:00Z') })
    fc.assert(fc.property(recent, offset, (epochMs, offsetMinutes) => {
      assert.equal(parseInstant(formatInstant(epochMs, offsetMinutes)), epochMs)
    }), { numRuns: 2000 })
  })

  test('the formatted text has the fixed ISO-8601 shape', () => {
    const shape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?(?:Z|[+-]\d{2}:\d{2})$/
    fc.assert(fc.property(instant, offset, (epochMs, offsetMinutes) => {
      assert.match(formatInstant(epochMs, offsetMinutes), shape)
    }))
  })
})
