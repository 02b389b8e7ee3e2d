import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import type { StoredPoint } from '../../src/cache/cache.ts'
import { PointRing } from '../../src/cache/point-ring.ts'
import { formatInstant } from '../../src/domain/time.ts'

const MIN_MS = Date.parse('2000-01-01T00:00:00Z')
const MAX_MS = Date.parse('2100-01-01T00:00:00Z')

/** A point as the bridge makes them: a lower-case UUID and a start that formatInstant wrote. */
const regularPoint = fc.record({
  event_id: fc.uuid(),
  startMs: fc.integer({ min: MIN_MS, max: MAX_MS }),
  offsetMin: fc.integer({ min: -720, max: 840 }),
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  updatedMs: fc.option(fc.integer({ min: MIN_MS, max: MAX_MS }), { nil: null }),
  ingestedMs: fc.integer({ min: MIN_MS, max: MAX_MS })
}).map(({ offsetMin, ...point }): StoredPoint => ({ ...point, start: formatInstant(point.startMs, offsetMin) }))

/** Points the compact columns cannot reproduce: upper-case or non-UUID ids, starts written another way. */
const irregularPoint = fc.tuple(regularPoint, fc.constantFrom('id', 'start', 'both')).map(([point, what]): StoredPoint => ({
  ...point,
  event_id: what === 'start' ? point.event_id : what === 'id' ? point.event_id.toUpperCase() : `record-${point.event_id.slice(0, 8)}`,
  start: what === 'id' ? point.start : new Date(point.startMs).toISOString()
}))

describe('compact series ring', () => {
  test('reads back exactly what was pushed, newest first, keeping the newest `capacity` points', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.array(fc.oneof({ weight: 4, arbitrary: regularPoint }, { weight: 1, arbitrary: irregularPoint }), { maxLength: 120 }),
      (capacity, points) => {
        const ring = new PointRing(capacity)
        const overwritten = points.map((point) => ring.push(point))
        const kept = points.slice(-capacity)
        assert.equal(ring.size, kept.length)
        assert.deepEqual(overwritten, points.map((_, index) => index >= capacity))
        assert.deepEqual(ring.oldestFirst(), kept)
        assert.deepEqual([...ring.newestFirst()], [...kept].reverse())
        assert.deepEqual(ring.fromNewest(0), kept.at(-1))
        assert.equal(ring.newestStartMs(), kept.at(-1)?.startMs)
        assert.equal(ring.fromNewest(kept.length), undefined)
      }))
  })

  test('an overwritten irregular point leaves nothing behind for the regular point in its slot', () => {
    const ring = new PointRing(1)
    const start = formatInstant(Date.parse('2026-03-01T06:00:00Z'), 60)
    ring.push({ event_id: 'NOT-A-UUID', start: '2026-03-01T05:00:00.000Z', value: 1, startMs: Date.parse(start), updatedMs: null, ingestedMs: 0 })
    const regular = { event_id: '0b8f1c0e-6a43-5d8e-9f00-1c2d3e4f5a6b', start, value: 2, startMs: Date.parse(start), updatedMs: 5, ingestedMs: 7 }
    assert.equal(ring.push(regular), true)
    assert.deepEqual(ring.oldestFirst(), [regular])
  })
})
