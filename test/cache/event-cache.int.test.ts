import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { EventCache, FillToken, SeriesPoint } from '../../src/cache/cache.ts'
import { createMemoryCache } from '../../src/cache/memory.ts'
import { createRedisCache } from '../../src/cache/redis.ts'
import { eventIdFor, type BiometricEvent } from '../../src/domain/event.ts'
import { formatInstant } from '../../src/domain/time.ts'
import { createLogger } from '../../src/lib/logger.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { TEST_REDIS_URL, redisKeyPrefix, requireRedis } from '../helpers/services.ts'

/**
 * One behavioural suite, run against the in-process adapter and against real Redis: both must answer alike.
 */

const BASE_MS = Date.UTC(2026, 0, 6, 22, 0, 0)
const MINUTE_MS = 60_000

interface EventSpec {
  record: string
  minute: number
  value?: number
  metric?: string
  updatedMinute?: number
  ingestedMinute?: number
}

function event(userId: string, spec: EventSpec): BiometricEvent {
  const metric = spec.metric ?? 'heart_rate'
  const startMs = BASE_MS + spec.minute * MINUTE_MS
  return {
    event_id: eventIdFor({ userId, source: 'healthkit', sourceRecordId: spec.record, metric, context: null }),
    schema_version: 1,
    user_id: userId,
    source: 'healthkit',
    device_type: 'apple_watch',
    metric,
    value: spec.value ?? 60,
    unit: 'bpm',
    start: formatInstant(startMs, 60),
    end: formatInstant(startMs, 60),
    context: null,
    source_record_id: spec.record,
    source_updated_at: spec.updatedMinute === undefined ? null : new Date(BASE_MS + spec.updatedMinute * MINUTE_MS).toISOString(),
    op: 'upsert',
    ingested_at: new Date(BASE_MS + (spec.ingestedMinute ?? 1000) * MINUTE_MS).toISOString()
  }
}

const point = (e: BiometricEvent): SeriesPoint => ({ event_id: e.event_id, start: e.start, value: e.value })

/** Newest first by (start, event_id), as PostgreSQL orders a recent series. */
const newestFirst = (events: readonly BiometricEvent[]): BiometricEvent[] =>
  [...events].sort((a, b) => Date.parse(b.start) - Date.parse(a.start) || (a.event_id < b.event_id ? 1 : -1))

interface Harness {
  cache: EventCache
  /** Points physically held in a series, for the cap. */
  seriesLength(userId: string, metric: string): Promise<number>
  /** How far the adapter may exceed the cap between trims. */
  slack: number
}

interface HarnessOptions {
  ttlSeconds?: number
  cap?: number
}

const silent = createLogger({ level: 'silent', format: 'json' })

const adapters: Record<'memory' | 'redis', (t: TestContext, options?: HarnessOptions) => Promise<Harness | undefined>> = {
  memory(_t, options = {}) {
    const cache = createMemoryCache({ ttlSeconds: options.ttlSeconds ?? 300, maxSeriesEntries: options.cap ?? 100 })
    return Promise.resolve({ cache, seriesLength: (userId, metric) => Promise.resolve(cache.seriesSize(userId, metric)), slack: 0 })
  },
  async redis(t, options = {}) {
    if (!(await requireRedis(t))) return undefined
    const keyPrefix = redisKeyPrefix(t)
    const cache = await createRedisCache({
      url: TEST_REDIS_URL, keyPrefix, ttlSeconds: options.ttlSeconds ?? 300, maxSeriesEntries: options.cap ?? 100,
      metrics: createMetrics(), logger: silent
    })
    const raw = new Redis(TEST_REDIS_URL)
    t.after(async () => {
      await cache.close()
      raw.disconnect()
    })
    // XADD MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default).
    return { cache, seriesLength: (userId, metric) => raw.xlen(`${keyPrefix}series:${userId}:${metric}`), slack: 100 }
  }
}

async function missToken(cache: EventCache, userId: string): Promise<FillToken> {
  const read = await cache.getLatest(userId)
  assert.equal(read.hit, false, 'expected a miss')
  assert.ok(!read.hit && read.fillToken !== undefined, 'a miss on a healthy cache carries a fill token')
  return read.fillToken
}

async function latestOf(cache: EventCache, userId: string): Promise<Record<string, BiometricEvent> | undefined> {
  const read = await cache.getLatest(userId)
  return read.hit ? read.value : undefined
}

async function seriesToken(cache: EventCache, userId: string, metric: string, limit: number): Promise<FillToken> {
  const read = await cache.recentSeries(userId, metric, limit)
  assert.equal(read.hit, false, 'expected a series miss')
  assert.ok(!read.hit && read.fillToken !== undefined)
  return read.fillToken
}

async function recent(cache: EventCache, userId: string, metric: string, limit: number): Promise<SeriesPoint[] | undefined> {
  const read = await cache.recentSeries(userId, metric, limit)
  return read.hit ? read.value : undefined
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`)
}

for (const [name, build] of Object.entries(adapters)) {
  describe(`event cache (${name})`, () => {
    test('latest: misses until filled, and a fill never overwrites a newer concurrent write', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-1'
      const token = await missToken(cache, user)
      const newer = event(user, { record: 'hr-2', minute: 2, value: 70 })
      await cache.recordCommitted([newer])
      assert.equal(await latestOf(cache, user), undefined, 'writes alone do not make a complete picture')

      const snapshot = [event(user, { record: 'hr-1', minute: 1 }), event(user, { record: 's-1', minute: 1, metric: 'steps', value: 10 })]
      await cache.fillLatest(user, snapshot, token)
      assert.deepEqual(await latestOf(cache, user), { heart_rate: newer, steps: snapshot[1] })

      const empty = 'cache-user-empty'
      await cache.fillLatest(empty, [], await missToken(cache, empty))
      assert.deepEqual(await latestOf(cache, empty), {}, 'a user without data is a hit too')
    })

    test('latest: only a newer measurement replaces it; a revision replaces only if newer', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-2'
      await cache.fillLatest(user, [], await missToken(cache, user))
      const a = event(user, { record: 'a', minute: 5, value: 60, updatedMinute: 10 })
      await cache.recordCommitted([a])
      await cache.recordCommitted([event(user, { record: 'b', minute: 4, value: 99 })])
      assert.equal((await latestOf(cache, user))?.heart_rate?.event_id, a.event_id, 'an older measurement does not replace')

      const revised = { ...a, value: 65, source_updated_at: new Date(BASE_MS + 20 * MINUTE_MS).toISOString() }
      await cache.recordCommitted([revised])
      assert.equal((await latestOf(cache, user))?.heart_rate?.value, 65, 'a newer revision replaces')
      await cache.recordCommitted([{ ...a, value: 61 }])
      assert.equal((await latestOf(cache, user))?.heart_rate?.value, 65, 'a late older revision does not')

      // Same start: the greater event_id is the newer measurement, as in SQL (start_at DESC, event_id DESC).
      const tie = [event(user, { record: 't-1', minute: 7 }), event(user, { record: 't-2', minute: 7 })]
      const winner = [...tie].sort((x, y) => (x.event_id < y.event_id ? 1 : -1))[0]!
      await cache.recordCommitted([winner])
      await cache.recordCommitted(tie.filter((e) => e !== winner))
      assert.equal((await latestOf(cache, user))?.heart_rate?.event_id, winner.event_id)

      // A late, older revision at a later start is no candidate, but another event in its batch still is.
      const late = event(user, { record: 'late', minute: 9, updatedMinute: 30 })
      await cache.recordCommitted([late])
      const other = event(user, { record: 'other', minute: 10 })
      await cache.recordCommitted([other, { ...late, start: formatInstant(BASE_MS + 11 * MINUTE_MS, 60), source_updated_at: new Date(BASE_MS).toISOString() }])
      assert.equal((await latestOf(cache, user))?.heart_rate?.event_id, other.event_id)
    })

    test('latest: a revision that moves the cached measurement earlier drops the picture', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-3'
      const moving = event(user, { record: 'm', minute: 30, updatedMinute: 1 })
      await cache.fillLatest(user, [moving], await missToken(cache, user))
      assert.ok(await latestOf(cache, user))
      await cache.recordCommitted([{ ...moving, start: formatInstant(BASE_MS, 60), source_updated_at: new Date(BASE_MS + 2 * MINUTE_MS).toISOString() }])
      assert.equal(await latestOf(cache, user), undefined, 'which event is latest is unknown now: read PostgreSQL')
    })

    test('forget drops the latest picture and the series, and refuses fills that started before it', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-4'
      const before = event(user, { record: 'x', minute: 1 })
      const token = await missToken(cache, user)
      const series = await seriesToken(cache, user, 'heart_rate', 5)
      await cache.forget([{ user_id: user, metric: 'heart_rate' }])
      await cache.fillLatest(user, [before], token)
      await cache.fillSeries(user, 'heart_rate', [before], 5, series)
      assert.equal(await latestOf(cache, user), undefined, 'the snapshot may hold the deleted event')
      assert.equal(await recent(cache, user, 'heart_rate', 5), undefined)

      await cache.fillLatest(user, [before], await missToken(cache, user))
      await cache.fillSeries(user, 'heart_rate', [before], 5, await seriesToken(cache, user, 'heart_rate', 5))
      assert.ok(await latestOf(cache, user))
      assert.deepEqual(await recent(cache, user, 'heart_rate', 5), [point(before)])
      await cache.forget([before])
      assert.equal(await latestOf(cache, user), undefined)
      assert.equal(await recent(cache, user, 'heart_rate', 5), undefined)
    })

    test('latest values and series expire after the TTL', async (t) => {
      const harness = await build(t, { ttlSeconds: 1 })
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-5'
      const e = event(user, { record: 'e', minute: 1 })
      await cache.fillLatest(user, [e], await missToken(cache, user))
      await cache.fillSeries(user, 'heart_rate', [e], 5, await seriesToken(cache, user, 'heart_rate', 5))
      assert.ok(await latestOf(cache, user))
      await eventually(async () => await latestOf(cache, user) === undefined && await recent(cache, user, 'heart_rate', 5) === undefined, 'expiry')
    })

    test('series: newest first, capped, ties ordered by event_id, and a miss until a fill proves completeness', async (t) => {
      const cap = 250
      const harness = await build(t, { cap })
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-6'
      assert.equal(await recent(cache, user, 'heart_rate', 10), undefined)
      await cache.fillSeries(user, 'heart_rate', [], 10, await seriesToken(cache, user, 'heart_rate', 10))
      assert.deepEqual(await recent(cache, user, 'heart_rate', 10), [], 'an exhaustive snapshot: the user has none')

      const written = Array.from({ length: 1000 }, (_, i) => event(user, { record: `p-${i}`, minute: Math.floor(i / 2), value: 40 + (i % 100) }))
      for (let offset = 0; offset < written.length; offset += 100) await cache.recordCommitted(written.slice(offset, offset + 100))
      const length = await harness.seriesLength(user, 'heart_rate')
      assert.ok(length >= cap && length <= cap + harness.slack, `series length ${length} within [${cap}, ${cap + harness.slack}]`)
      assert.deepEqual(await recent(cache, user, 'heart_rate', cap), newestFirst(written).slice(0, cap).map(point))
      assert.deepEqual(await recent(cache, user, 'heart_rate', 3), newestFirst(written).slice(0, 3).map(point),
        'two points share each minute: the cut falls inside a tie and follows event_id')
    })

    test('series: a fill merges with concurrent writes, answers only what it proves, and out-of-order points invalidate', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      const user = 'cache-user-7'
      const stored = Array.from({ length: 10 }, (_, i) => event(user, { record: `s-${i}`, minute: i }))
      const token = await seriesToken(cache, user, 'heart_rate', 5)
      const concurrent = event(user, { record: 's-10', minute: 10 })
      await cache.recordCommitted([concurrent])
      await cache.fillSeries(user, 'heart_rate', newestFirst(stored).slice(0, 5), 5, token)
      const all = newestFirst([...stored, concurrent])
      assert.deepEqual(await recent(cache, user, 'heart_rate', 5), all.slice(0, 5).map(point))
      assert.deepEqual(await recent(cache, user, 'heart_rate', 6), all.slice(0, 6).map(point))
      assert.equal(await recent(cache, user, 'heart_rate', 7), undefined, 'nothing proves what lies below the snapshot')

      const revised = { ...concurrent, value: 88, source_updated_at: new Date(BASE_MS + 50 * MINUTE_MS).toISOString() }
      await cache.recordCommitted([revised])
      assert.deepEqual(await recent(cache, user, 'heart_rate', 2), [point(revised), point(all[1]!)], 'one point per event: its newest revision')

      const larger = await seriesToken(cache, user, 'heart_rate', 8)
      await cache.fillSeries(user, 'heart_rate', newestFirst([...stored, revised]).slice(0, 8), 8, larger)
      assert.deepEqual(await recent(cache, user, 'heart_rate', 8), newestFirst([...stored, revised]).slice(0, 8).map(point))

      await cache.recordCommitted([event(user, { record: 'old', minute: 3 })])
      assert.equal(await recent(cache, user, 'heart_rate', 2), undefined, 'a point below the newest one breaks the window')

      const sparse = [event(user, { record: 'v-1', minute: 1, metric: 'vo2_max' }), event(user, { record: 'v-2', minute: 2, metric: 'vo2_max' })]
      await cache.fillSeries(user, 'vo2_max', newestFirst(sparse), 50, await seriesToken(cache, user, 'vo2_max', 50))
      const three = event(user, { record: 'v-3', minute: 3, metric: 'vo2_max' })
      await cache.recordCommitted([three])
      assert.deepEqual(await recent(cache, user, 'vo2_max', 50), newestFirst([...sparse, three]).map(point), 'exhaustive: fewer than asked is the answer')
    })

    test('claimOnce: the first claim wins, repeats lose, and the key frees after its TTL', async (t) => {
      const harness = await build(t)
      if (harness === undefined) return
      const { cache } = harness
      assert.equal(await cache.claimOnce('oura:evt-1', 1), true)
      assert.equal(await cache.claimOnce('oura:evt-1', 1), false)
      assert.equal(await cache.claimOnce('oura:evt-2', 1), true)
      await eventually(async () => await cache.claimOnce('oura:evt-1', 60) === true, 'claim expiry')
      assert.equal(await cache.state(), 'up')
    })
  })
}
