import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { FillToken } from '../../src/cache/cache.ts'
import { createMemoryCache } from '../../src/cache/memory.ts'
import { eventIdFor, type BiometricEvent } from '../../src/domain/event.ts'
import { formatInstant } from '../../src/domain/time.ts'

/** Bounds of the in-process adapter; its semantics are covered by the shared suite in event-cache.int.test.ts. */

function event(userId: string, minute: number): BiometricEvent {
  const start = formatInstant(Date.UTC(2026, 0, 6) + minute * 60_000, 0)
  return {
    event_id: eventIdFor({ userId, source: 'healthkit', sourceRecordId: `r-${minute}`, metric: 'heart_rate', context: null }),
    schema_version: 1, user_id: userId, source: 'healthkit', device_type: 'apple_watch', metric: 'heart_rate', value: 60, unit: 'bpm',
    start, end: start, context: null, source_record_id: `r-${minute}`, source_updated_at: null, op: 'upsert',
    ingested_at: '2026-01-07T00:00:00.000Z'
  }
}

async function token(cache: ReturnType<typeof createMemoryCache>, userId: string): Promise<FillToken> {
  const read = await cache.getLatest(userId)
  assert.ok(!read.hit && read.fillToken !== undefined)
  return read.fillToken
}

describe('in-process cache bounds', () => {
  test('holds at most maxUsers users, evicting the least recently used', async () => {
    const cache = createMemoryCache({ ttlSeconds: 300, maxSeriesEntries: 10, maxUsers: 2 })
    for (const user of ['u1', 'u2']) await cache.fillLatest(user, [event(user, 1)], await token(cache, user))
    assert.equal((await cache.getLatest('u1')).hit, true, 'u1 is now the most recently used')
    await cache.fillLatest('u3', [event('u3', 1)], await token(cache, 'u3'))
    assert.deepEqual([(await cache.getLatest('u1')).hit, (await cache.getLatest('u2')).hit, (await cache.getLatest('u3')).hit], [true, false, true])
  })

  test('an eviction never lets a fill from before a forget through', async () => {
    const cache = createMemoryCache({ ttlSeconds: 300, maxSeriesEntries: 10, maxUsers: 1 })
    const early = await token(cache, 'u1')
    await cache.forget([{ user_id: 'u1', metric: 'heart_rate' }])
    await cache.fillLatest('u2', [], await token(cache, 'u2'))
    await cache.fillLatest('u1', [event('u1', 1)], early)
    assert.equal((await cache.getLatest('u1')).hit, false)
  })

  test('holds at most maxTotalPoints series points across users', async () => {
    const cache = createMemoryCache({ ttlSeconds: 300, maxSeriesEntries: 10, maxTotalPoints: 15 })
    await cache.recordCommitted(Array.from({ length: 10 }, (_, i) => event('u1', i)))
    await cache.recordCommitted(Array.from({ length: 10 }, (_, i) => event('u2', i)))
    assert.deepEqual([cache.seriesSize('u1', 'heart_rate'), cache.seriesSize('u2', 'heart_rate')], [0, 10])
  })

  test('holds at most maxClaims claims; a dropped claim can be claimed again', async () => {
    const cache = createMemoryCache({ ttlSeconds: 300, maxSeriesEntries: 10, maxClaims: 2 })
    assert.deepEqual([await cache.claimOnce('a', 60), await cache.claimOnce('b', 60), await cache.claimOnce('c', 60)], [true, true, true])
    assert.deepEqual([await cache.claimOnce('a', 60), await cache.claimOnce('c', 60)], [true, false])
    await cache.close()
  })
})
