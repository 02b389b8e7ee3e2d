import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { ExpiringClaims } from '../../src/cache/expiring-claims.ts'

/** The obvious implementation (a Map walked from its start to drop the oldest): the model the queue must match. */
class ModelClaims {
  private readonly expiries = new Map<string, number>()
  private readonly capacity: number
  constructor(capacity: number) { this.capacity = capacity }
  claim(key: string, nowMs: number, ttlMs: number): boolean {
    const held = this.expiries.get(key)
    if (held !== undefined && held > nowMs) return false
    this.expiries.delete(key)
    for (const oldKey of this.expiries.keys()) {
      if (this.expiries.size < this.capacity) break
      this.expiries.delete(oldKey)
    }
    this.expiries.set(key, nowMs + ttlMs)
    return true
  }
  isClaimed(key: string, nowMs: number): boolean {
    const held = this.expiries.get(key)
    return held !== undefined && held > nowMs
  }
  get size(): number { return this.expiries.size }
}

describe('in-process dedup claims', () => {
  test('a key is claimed once until it expires; then it can be claimed again', () => {
    const claims = new ExpiringClaims(10)
    assert.equal(claims.claim('a', 1000, 500), true)
    assert.equal(claims.claim('a', 1499, 500), false)
    assert.equal(claims.isClaimed('a', 1499), true)
    assert.equal(claims.isClaimed('a', 1500), false)
    assert.equal(claims.claim('a', 1500, 500), true)
  })

  test('at capacity the oldest claim goes first; a key claimed again counts from its new claim', () => {
    const claims = new ExpiringClaims(3)
    claims.claim('a', 0, 10)
    claims.claim('b', 1, 10)
    claims.claim('a', 20, 10) // expired, claimed again: now the newest
    claims.claim('c', 21, 10)
    claims.claim('d', 22, 10) // full: 'b' is the oldest
    assert.deepEqual(['a', 'b', 'c', 'd'].map((key) => claims.isClaimed(key, 23)), [true, false, true, true])
    assert.equal(claims.size, 3)
  })

  test('behaves exactly like the Map-walking model for any sequence of claims and checks', () => {
    const operation = fc.record({ key: fc.integer({ min: 0, max: 12 }), advanceMs: fc.integer({ min: 0, max: 40 }), ttlMs: fc.integer({ min: 1, max: 60 }), check: fc.boolean() })
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(operation, { maxLength: 300 }), (capacity, operations) => {
      const claims = new ExpiringClaims(capacity)
      const model = new ModelClaims(capacity)
      let nowMs = 0
      for (const { key, advanceMs, ttlMs, check } of operations) {
        nowMs += advanceMs
        const name = `k${key}`
        if (check) assert.equal(claims.isClaimed(name, nowMs), model.isClaimed(name, nowMs))
        else assert.equal(claims.claim(name, nowMs, ttlMs), model.claim(name, nowMs, ttlMs))
        assert.equal(claims.size, model.size)
      }
    }), { seed: 42, numRuns: 300 })
  })

  test('stays bounded over many more claims than its capacity, re-claims included', () => {
    const claims = new ExpiringClaims(1000)
    for (let i = 0; i < 50_000; i++) claims.claim(`k${i % 1500}`, i, 100)
    assert.equal(claims.size, 1000)
    // The last claim is held; the one 1,000 claims back was dropped at capacity although its TTL had not run out.
    assert.equal(claims.isClaimed(`k${49_999 % 1500}`, 49_999), true)
    assert.equal(claims.isClaimed(`k${(49_999 - 1000) % 1500}`, 49_999 - 1000 + 50), false)
  })
})
