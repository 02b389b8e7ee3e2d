import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { buildEvent, type EventDraft, type EventOrigin } from '../../src/domain/build-event.ts'
import { METRIC_NAMES, METRICS, type MetricName } from '../../src/domain/catalog.ts'
import { eventIdFor } from '../../src/domain/event.ts'
import { EARLIEST_MS, MAX_FUTURE_MS } from '../../src/domain/validation.ts'

const NOW_MS = Date.parse('2026-01-07T12:00:00Z')
const bounds = { nowMs: NOW_MS }
const origin: EventOrigin = { userId: 'user-123', source: 'oura', ingestedAt: '2026-01-07T12:00:01.000Z' }

function draft(overrides: Partial<EventDraft> = {}): EventDraft {
  return {
    metric: 'hrv_rmssd',
    value: 48,
    unit: 'ms',
    start: '2026-01-06T23:31:10+01:00',
    end: '2026-01-07T06:58:40+01:00',
    context: 'sleep',
    sourceRecordId: '8f9a5221-639e-4a85-81cb-4065ef23f979',
    sourceUpdatedAt: '2026-01-07T06:41:10Z',
    deviceType: 'oura_ring',
    ...overrides
  }
}

function built(input: EventDraft, op?: 'upsert' | 'delete') {
  const result = buildEvent(input, origin, bounds, op)
  assert.ok(result.ok, result.ok ? '' : `${result.rejection.code}: ${result.rejection.message}`)
  return result.event
}

function rejection(input: EventDraft): string {
  const result = buildEvent(input, origin, bounds)
  assert.equal(result.ok, false, 'expected a rejection')
  return result.ok ? '' : result.rejection.code
}

const metric = fc.constantFrom(...METRIC_NAMES)
const midpoint = (name: MetricName): number => (METRICS[name].min + METRICS[name].max) / 2

describe('buildEvent', () => {
  test('builds the design §6 example event', () => {
    assert.deepEqual(built(draft()), {
      event_id: eventIdFor({
        userId: 'user-123',
        source: 'oura',
        sourceRecordId: '8f9a5221-639e-4a85-81cb-4065ef23f979',
        metric: 'hrv_rmssd',
        context: 'sleep'
      }),
      schema_version: 1,
      user_id: 'user-123',
      source: 'oura',
      device_type: 'oura_ring',
      metric: 'hrv_rmssd',
      value: 48,
      unit: 'ms',
      start: '2026-01-06T23:31:10+01:00',
      end: '2026-01-07T06:58:40+01:00',
      context: 'sleep',
      source_record_id: '8f9a5221-639e-4a85-81cb-4065ef23f979',
      source_updated_at: '2026-01-07T06:41:10.000Z',
      op: 'upsert',
      ingested_at: '2026-01-07T12:00:01.000Z'
    })
  })

  test('marks deletions with op "delete"', () => {
    assert.equal(built(draft(), 'delete').op, 'delete')
  })

  for (const name of METRIC_NAMES) {
    test(`${name}: a value in ${METRICS[name].unit} comes out unchanged, labelled ${METRICS[name].unit}`, () => {
      const event = built(draft({ metric: name, value: midpoint(name), unit: METRICS[name].unit }))
      assert.equal(event.unit, METRICS[name].unit)
      assert.equal(event.value, midpoint(name))
      assert.equal(event.metric, name)
    })
  }

  const conversions: Array<{ metric: MetricName, value: number, unit: string | undefined, expected: number }> = [
    { metric: 'active_calories', value: 2092, unit: 'kJ', expected: 500 },
    { metric: 'distance_meters', value: 3.5, unit: 'km', expected: 3500 },
    { metric: 'distance_meters', value: 1, unit: 'mi', expected: 1609.344 },
    { metric: 'skin_temperature', value: 95, unit: 'degF', expected: 35 },
    { metric: 'temperature_deviation', value: -0.9, unit: 'degF', expected: -0.5 },
    { metric: 'deep_sleep_minutes', value: 1.5, unit: 'hours', expected: 90 },
    { metric: 'spo2', value: 0.96, unit: '%', expected: 96 },
    { metric: 'spo2', value: 96, unit: '%', expected: 96 },
    { metric: 'heart_rate', value: 1, unit: 'count/s', expected: 60 },
    { metric: 'steps', value: 1200, unit: undefined, expected: 1200 }
  ]
  for (const row of conversions) {
    test(`${row.metric}: ${row.value} ${row.unit ?? '(no unit)'} is stored as ${row.expected} ${METRICS[row.metric].unit}`, () => {
      const event = built(draft({ metric: row.metric, value: row.value, unit: row.unit }))
      assert.ok(Math.abs(event.value - row.expected) <= 1e-9 * Math.max(1, Math.abs(row.expected)), String(event.value))
      assert.equal(event.unit, METRICS[row.metric].unit)
    })
  }

  const rejections: Array<{ title: string, overrides: Partial<EventDraft>, code: string }> = [
    { title: 'an unknown unit', overrides: { unit: 'furlongs' }, code: 'BB_SAMPLE_UNIT_UNSUPPORTED' },
    { title: 'a unit of another dimension', overrides: { unit: 'bpm' }, code: 'BB_SAMPLE_UNIT_UNSUPPORTED' },
    { title: 'NaN', overrides: { value: Number.NaN }, code: 'BB_SAMPLE_NOT_FINITE' },
    { title: 'Infinity', overrides: { value: Number.POSITIVE_INFINITY }, code: 'BB_SAMPLE_NOT_FINITE' },
    { title: 'a value above the bound', overrides: { value: 501 }, code: 'BB_SAMPLE_OUT_OF_RANGE' },
    { title: 'a value that leaves the bounds after conversion', overrides: { value: 1, unit: 's' }, code: 'BB_SAMPLE_OUT_OF_RANGE' },
    { title: 'a heart rate sent as a fraction', overrides: { metric: 'heart_rate', value: 0.8, unit: 'bpm' }, code: 'BB_SAMPLE_OUT_OF_RANGE' },
    { title: 'a start without a zone', overrides: { start: '2026-01-06T23:31:10' }, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'an end without a zone', overrides: { end: '2026-01-07T06:58:40' }, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'a start that is not a timestamp', overrides: { start: 'yesterday' }, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'a date that does not exist', overrides: { start: '2026-02-30T10:00:00Z', end: '2026-02-30T11:00:00Z' }, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'end before start', overrides: { start: '2026-01-07T06:58:40+01:00', end: '2026-01-06T23:31:10+01:00' }, code: 'BB_SAMPLE_END_BEFORE_START' },
    { title: 'end before start across zones', overrides: { start: '2026-01-07T05:00:00-01:00', end: '2026-01-07T05:30:00+00:00' }, code: 'BB_SAMPLE_END_BEFORE_START' },
    { title: 'a start before 2000', overrides: { start: '1999-12-31T23:59:59Z', end: '2000-01-01T00:00:01Z' }, code: 'BB_SAMPLE_TOO_OLD' },
    { title: 'an end more than 24 h ahead', overrides: { start: '2026-01-08T12:00:00Z', end: '2026-01-08T12:00:01Z' }, code: 'BB_SAMPLE_IN_FUTURE' },
    { title: 'a span over 8 days', overrides: { start: '2025-12-01T00:00:00Z', end: '2025-12-10T00:00:00Z' }, code: 'BB_SAMPLE_SPAN_TOO_LONG' },
    { title: 'a source_updated_at that is not a timestamp', overrides: { sourceUpdatedAt: 'last tuesday' }, code: 'BB_SAMPLE_BAD_TIME' },
    { title: 'a source_updated_at without a zone', overrides: { sourceUpdatedAt: '2026-01-07T06:41:10' }, code: 'BB_SAMPLE_BAD_TIME' }
  ]
  for (const row of rejections) {
    test(`rejects ${row.title} with ${row.code}`, () => {
      assert.equal(rejection(draft(row.overrides)), row.code)
    })
  }

  test('a rejection message names the problem without the value', () => {
    const result = buildEvent(draft({ value: 123_456.789 }), origin, bounds)
    assert.ok(!result.ok)
    assert.ok(!result.rejection.message.includes('123456'), result.rejection.message)
  })

  test('end is written in the offset of start, as the same instant', () => {
    const event = built(draft({ start: '2026-01-06T23:31:10+01:00', end: '2026-01-07T05:58:40Z' }))
    assert.equal(event.end, '2026-01-07T06:58:40+01:00')
  })

  test('keeps milliseconds and reads the Health Auto Export date form', () => {
    const event = built(draft({ start: '2026-01-07 06:30:00.250 +0100', end: '2026-01-07 06:31:00 +0100' }))
    assert.equal(event.start, '2026-01-07T06:30:00.250+01:00')
    assert.equal(event.end, '2026-01-07T06:31:00+01:00')
  })

  test('source_updated_at is normalized to UTC, and null when unknown', () => {
    assert.equal(built(draft({ sourceUpdatedAt: '2026-01-07T07:41:10+01:00' })).source_updated_at, '2026-01-07T06:41:10.000Z')
    assert.equal(built(draft({ sourceUpdatedAt: null })).source_updated_at, null)
    assert.equal(built(draft({ sourceUpdatedAt: undefined })).source_updated_at, null)
    const withoutField: EventDraft = draft()
    delete withoutField.sourceUpdatedAt
    assert.equal(built(withoutField).source_updated_at, null)
  })

  test('the event id is the storage key\'s id, independent of value and times', () => {
    const a = built(draft({ value: 40 }))
    const b = built(draft({ value: 60, start: '2026-01-06T22:00:00Z', end: '2026-01-07T06:00:00Z' }))
    assert.equal(a.event_id, b.event_id)
    assert.notEqual(built(draft({ context: null })).event_id, a.event_id)
  })

  test('for every metric, any in-range value in its canonical unit builds an event in that unit', () => {
    const spelling = (unit: string) => fc.constantFrom<string | undefined>(undefined, '', unit, unit.toUpperCase(), ` ${unit} `)
    const input = metric.chain((name) => fc.tuple(
      fc.constant(name),
      fc.double({ min: METRICS[name].min, max: METRICS[name].max, noNaN: true }),
      spelling(METRICS[name].unit)))
    fc.assert(fc.property(input, ([name, value, unit]) => {
      const event = built(draft({ metric: name, value, unit }))
      assert.equal(event.unit, METRICS[name].unit)
      assert.equal(event.value, value)
    }), { numRuns: 2000 })
  })

  test('NaN and ±Infinity never build an event, for any metric and unit', () => {
    const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)
    const unit = fc.constantFrom(undefined, 'ms', 'min', 'hours', '%', 'fraction', 'degF', 'degC', 'kJ', 'km', 'mi', 'count/min', 'count')
    fc.assert(fc.property(metric, nonFinite, unit, (name, value, written) => {
      const result = buildEvent(draft({ metric: name, value, unit: written }), origin, bounds)
      assert.equal(result.ok, false)
      assert.ok(!result.ok && ['BB_SAMPLE_NOT_FINITE', 'BB_SAMPLE_UNIT_UNSUPPORTED'].includes(result.rejection.code))
    }))
  })

  test('a value outside its metric\'s bounds is rejected as out of range, any inside accepted', () => {
    const input = metric.chain((name) => {
      const { min, max } = METRICS[name]
      return fc.tuple(fc.constant(name), fc.double({ min: min - (max - min), max: max + (max - min), noNaN: true }))
    })
    fc.assert(fc.property(input, ([name, value]) => {
      // Without a unit, spo2 reads 0 < v ≤ 1 as a fraction; name the unit to test the bound itself.
      const result = buildEvent(draft({ metric: name, value, unit: METRICS[name].unit }), origin, bounds)
      const { min, max } = METRICS[name]
      const isFraction = name === 'spo2' && value > 0 && value <= 1
      const canonical = isFraction ? value * 100 : value
      if (canonical >= min && canonical <= max) {
        assert.ok(result.ok)
      } else {
        assert.ok(!result.ok && result.rejection.code === 'BB_SAMPLE_OUT_OF_RANGE')
      }
    }), { numRuns: 2000 })
  })

  test('end before start is always rejected', () => {
    const instant = fc.integer({ min: EARLIEST_MS, max: NOW_MS })
    fc.assert(fc.property(instant, fc.integer({ min: 1, max: 86_400_000 }), (startMs, gap) => {
      const start = new Date(startMs).toISOString()
      const end = new Date(startMs - gap).toISOString()
      assert.equal(rejection(draft({ start, end })), 'BB_SAMPLE_END_BEFORE_START')
    }))
  })

  test('an end more than 24 h in the future is always rejected', () => {
    const ahead = fc.integer({ min: MAX_FUTURE_MS + 1, max: 10 * 365 * 86_400_000 })
    fc.assert(fc.property(ahead, (distance) => {
      const end = new Date(NOW_MS + distance).toISOString()
      assert.equal(rejection(draft({ start: end, end })), 'BB_SAMPLE_IN_FUTURE')
    }))
  })

  test('a start before 2000 is always rejected', () => {
    const old = fc.integer({ min: Date.parse('1970-01-01T00:00:00Z'), max: EARLIEST_MS - 1 })
    fc.assert(fc.property(old, (startMs) => {
      const start = new Date(startMs).toISOString()
      assert.equal(rejection(draft({ start, end: start })), 'BB_SAMPLE_TOO_OLD')
    }))
  })

  test('timestamps without a zone are always rejected', () => {
    const instant = fc.integer({ min: EARLIEST_MS, max: NOW_MS })
    fc.assert(fc.property(instant, fc.constantFrom('start', 'end', 'both'), (epochMs, which) => {
      const zoned = new Date(epochMs).toISOString()
      const bare = zoned.slice(0, -1)
      const start = which === 'end' ? zoned : bare
      const end = which === 'start' ? zoned : bare
      assert.equal(rejection(draft({ start, end })), 'BB_SAMPLE_BAD_TIME')
    }))
  })
})
