import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { METRIC_NAMES } from '../../src/domain/catalog.ts'
import { CONTEXTS, SOURCES, eventIdFor, type StorageKey } from '../../src/domain/event.ts'

// Version nibble 5, variant bits 10xx (RFC 4122 §4.1.1, §4.1.3).
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const base: StorageKey = {
  userId: 'user-123',
  source: 'oura',
  sourceRecordId: '8f9a5221-639e-4a85-81cb-4065ef23f979',
  metric: 'hrv_rmssd',
  context: 'sleep'
}

// Control characters and the unit separator included: ids come from apps and devices, not from us.
const id = fc.oneof(fc.string(), fc.string({ unit: 'binary-ascii' }), fc.string({ unit: 'binary' }))
const storageKey = fc.record({
  userId: id,
  source: fc.constantFrom(...SOURCES),
  sourceRecordId: id,
  metric: fc.constantFrom(...METRIC_NAMES),
  context: fc.constantFrom(null, ...CONTEXTS)
})

describe('eventIdFor', () => {
  // Event ids are stored and published; consumers deduplicate on them. A change here re-keys every event
  // already written, so these values are pinned.
  test('is stable across releases', () => {
    assert.equal(eventIdFor(base), '58b883ce-6972-5ead-acde-08cbb1e28ea4')
    assert.equal(eventIdFor({
      userId: 'user-123',
      source: 'healthkit',
      sourceRecordId: '5E1C0B7A-3F0D-4C41-9A55-8B2A1D3E4F60',
      metric: 'heart_rate',
      context: null
    }), 'c775acae-86ad-5073-a8e6-b46c4ff443d6')
  })

  test('is an RFC 4122 version 5 UUID in lower-case canonical form', () => {
    fc.assert(fc.property(storageKey, (key) => {
      assert.match(eventIdFor(key), UUID_V5)
    }))
  })

  test('is deterministic: equal keys give equal ids', () => {
    fc.assert(fc.property(storageKey, (key) => {
      assert.equal(eventIdFor(key), eventIdFor({ ...key }))
    }))
  })

  test('differs when any one key field differs', () => {
    const field = fc.constantFrom('userId', 'source', 'sourceRecordId', 'metric', 'context')
    fc.assert(fc.property(storageKey, storageKey, field, (key, other, name) => {
      const changed: StorageKey = { ...key, [name]: other[name] }
      fc.pre(changed[name] !== key[name])
      assert.notEqual(eventIdFor(changed), eventIdFor(key))
    }), { numRuns: 2000 })
  })

  test('differs between a null context and every named context', () => {
    const ids = [null, ...CONTEXTS].map((context) => eventIdFor({ ...base, context }))
    assert.equal(new Set(ids).size, ids.length)
    assert.notEqual(eventIdFor({ ...base, context: null }), eventIdFor({ ...base, context: 'sleep' }))
  })

  test('a separator inside one field cannot shift a field boundary', () => {
    const a = eventIdFor({ ...base, userId: 'u\u001foura', sourceRecordId: 'r' })
    const b = eventIdFor({ ...base, userId: 'u', sourceRecordId: 'oura\u001fr' })
    assert.notEqual(a, b)
    const c = eventIdFor({ ...base, userId: 'a,b', sourceRecordId: 'c' })
    const d = eventIdFor({ ...base, userId: 'a', sourceRecordId: 'b,c' })
    assert.notEqual(c, d)
  })

  test('distinct lone surrogates give distinct ids', () => {
    assert.notEqual(eventIdFor({ ...base, userId: '\ud800' }), eventIdFor({ ...base, userId: '\ud801' }))
  })

  test('is case-sensitive in ids (HealthKit uuids are upper case, provider ids lower case)', () => {
    assert.notEqual(
      eventIdFor({ ...base, sourceRecordId: 'abc' }),
      eventIdFor({ ...base, sourceRecordId: 'ABC' }))
  })

  test('gives distinct ids to many distinct keys', () => {
    const ids = new Set<string>()
    let count = 0
    for (const source of SOURCES) {
      for (const metric of METRIC_NAMES) {
        for (const context of [null, ...CONTEXTS]) {
          for (const record of ['1', '2', '10']) {
            ids.add(eventIdFor({ userId: 'u', source, sourceRecordId: record, metric, context }))
            count++
          }
        }
      }
    }
    assert.equal(ids.size, count)
  })
})
