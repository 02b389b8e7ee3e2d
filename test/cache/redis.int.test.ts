import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Redis } from 'ioredis'
import type { EventCache, FillToken } from '../../src/cache/cache.ts'
import { createRedisCache, type RedisCacheOptions } from '../../src/cache/redis.ts'
import { eventIdFor, type BiometricEvent } from '../../src/domain/event.ts'
import { formatInstant } from '../../src/domain/time.ts'
import { createLogger } from '../../src/lib/logger.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { freePort } from '../helpers/redis-server.ts'
import { TEST_REDIS_URL, redisKeyPrefix, requireRedis } from '../helpers/services.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'

/** Redis-specific behaviour: failing fast, and never trusting what Redis kept through an outage. */

const BASE_MS = Date.UTC(2026, 0, 6, 22, 0, 0)

function event(userId: string, record: string, minute: number, value = 60): BiometricEvent {
  const startMs = BASE_MS + minute * 60_000
  return {
    event_id: eventIdFor({ userId, source: 'healthkit', sourceRecordId: record, metric: 'heart_rate', context: null }),
    schema_version: 1, user_id: userId, source: 'healthkit', device_type: 'apple_watch', metric: 'heart_rate', value, unit: 'bpm',
    start: formatInstant(startMs, 0), end: formatInstant(startMs, 0), context: null, source_record_id: record,
    source_updated_at: null, op: 'upsert', ingested_at: new Date(BASE_MS).toISOString()
  }
}

interface LogLine {
  level: number
  msg: string
}

function capturingLogger(lines: LogLine[]) {
  return createLogger({ level: 'debug', format: 'json', destination: { write: (text: string) => { lines.push(JSON.parse(text) as LogLine) } } })
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`)
}

async function fillToken(cache: EventCache, userId: string): Promise<FillToken> {
  const read = await cache.getLatest(userId)
  assert.ok(!read.hit && read.fillToken !== undefined, 'a miss with a fill token')
  return read.fillToken
}

async function latestValue(cache: EventCache, userId: string): Promise<number | undefined> {
  const read = await cache.getLatest(userId)
  return read.hit ? read.value.heart_rate?.value : undefined
}

function errorCount(metricsText: string, operation: string): number {
  const match = new RegExp(`^cache_errors_total\\{operation="${operation}"\\} (\\d+)$`, 'm').exec(metricsText)
  return match === null ? 0 : Number(match[1])
}

const USERS = ['redis-user-a', 'redis-user-b', 'redis-user-c', 'redis-user-d']

describe('redis cache adapter', () => {
  test('an unreachable Redis costs no request: misses, no throws, degraded, errors counted, one log line', async (t) => {
    const lines: LogLine[] = []
    const metrics = createMetrics()
    const cache = await createRedisCache({
      url: `redis://127.0.0.1:${await freePort()}`, ttlSeconds: 300, maxSeriesEntries: 100, metrics, logger: capturingLogger(lines),
      connectTimeoutMs: 200
    })
    t.after(() => cache.close())
    assert.deepEqual(await cache.getLatest(USERS[0]!), { hit: false, fillToken: undefined })
    assert.deepEqual(await cache.recentSeries(USERS[0]!, 'heart_rate', 5), { hit: false, fillToken: undefined })
    await cache.recordCommitted([event(USERS[0]!, 'r', 1)])
    await cache.forget([{ user_id: USERS[0]!, metric: 'heart_rate' }])
    await cache.fillLatest(USERS[0]!, [], '1|1' as FillToken)
    await cache.fillSeries(USERS[0]!, 'heart_rate', [], 5, '1|1' as FillToken)
    assert.equal(await cache.claimOnce('oura:evt', 60), undefined, 'unknown: the caller relies on its unique key')
    assert.equal(await cache.state(), 'degraded')
    assert.ok(errorCount(await metrics.registry.metrics(), 'connection') >= 1)
    assert.equal(lines.filter((line) => line.msg.startsWith('redis cache unavailable')).length, 1)
  })

  test('values that did not reach Redis during an outage are never served afterwards', async (t) => {
    if (!(await requireRedis(t))) return
    const target = new URL(TEST_REDIS_URL)
    const proxy = await startTcpProxy(t, target.hostname, Number(target.port || 6379))
    const lines: LogLine[] = []
    const keyPrefix = redisKeyPrefix(t)
    const cache = await createRedisCache({
      url: `redis://127.0.0.1:${proxy.port}`, keyPrefix, ttlSeconds: 300, maxSeriesEntries: 100, metrics: createMetrics(),
      logger: capturingLogger(lines), probeIntervalMs: 100
    })
    t.after(() => cache.close())
    const [a, b] = [USERS[0]!, USERS[1]!]
    await cache.fillLatest(a, [event(a, 'a-1', 1, 61)], await fillToken(cache, a))
    await cache.fillLatest(b, [event(b, 'b-1', 1, 71)], await fillToken(cache, b))
    assert.equal(await latestValue(cache, a), 61)

    proxy.cut()
    await cache.recordCommitted([event(a, 'a-2', 2, 62)])
    assert.deepEqual(await cache.getLatest(a), { hit: false, fillToken: undefined }, 'while down, reads go to PostgreSQL')
    assert.equal(await cache.state(), 'degraded')

    proxy.restore()
    await eventually(async () => await cache.state() === 'up', 'recovery')
    assert.equal(await latestValue(cache, a), undefined, 'the value Redis kept for a is stale: dropped before trusting it again')
    assert.equal(await latestValue(cache, b), 71, 'users without failed writes keep their cache')
    await cache.fillLatest(a, [event(a, 'a-2', 2, 62)], await fillToken(cache, a))
    assert.equal(await latestValue(cache, a), 62)

    assert.equal(lines.filter((line) => line.msg.startsWith('redis cache unavailable')).length, 1, 'one line per state change')
    assert.equal(lines.filter((line) => line.msg === 'redis cache available again').length, 1)
    const logged = JSON.stringify(lines)
    for (const user of USERS) assert.ok(!logged.includes(user), 'keys and user ids never reach the log')
  })

  test('past the remembered bound every cached value is dropped, and fills from before the outage are refused', async (t) => {
    if (!(await requireRedis(t))) return
    const target = new URL(TEST_REDIS_URL)
    const proxy = await startTcpProxy(t, target.hostname, Number(target.port || 6379))
    const cache = await createRedisCache({
      url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: redisKeyPrefix(t), ttlSeconds: 300, maxSeriesEntries: 100,
      metrics: createMetrics(), logger: capturingLogger([]), probeIntervalMs: 100, maxRememberedUsers: 2
    })
    t.after(() => cache.close())
    const [a, b, c, d] = USERS as [string, string, string, string]
    await cache.fillLatest(d, [event(d, 'd-1', 1)], await fillToken(cache, d))
    const early = await fillToken(cache, c)

    proxy.cut()
    await cache.recordCommitted([event(a, 'a', 1), event(b, 'b', 1), event(c, 'c', 1)])
    proxy.restore()
    await eventually(async () => await cache.state() === 'up', 'recovery')
    assert.equal(await latestValue(cache, d), undefined, 'every latest picture was dropped')
    await cache.fillLatest(c, [event(c, 'c-old', 0)], early)
    assert.equal(await latestValue(cache, c), undefined, 'a fill that read PostgreSQL before the outage is refused')
  })

  test('a refused command invalidates its user and leaves the cache available', async (t) => {
    if (!(await requireRedis(t))) return
    const keyPrefix = redisKeyPrefix(t)
    const lines: LogLine[] = []
    const metrics = createMetrics()
    const options: RedisCacheOptions = {
      url: TEST_REDIS_URL, keyPrefix, ttlSeconds: 300, maxSeriesEntries: 100, metrics, logger: capturingLogger(lines), probeIntervalMs: 100
    }
    const cache = await createRedisCache(options)
    const raw = new Redis(TEST_REDIS_URL)
    t.after(async () => {
      await cache.close()
      raw.disconnect()
    })
    const user = USERS[0]!
    await raw.set(`${keyPrefix}latest:${user}`, 'not a hash')
    await cache.recordCommitted([event(user, 'x', 1, 66)])
    assert.equal(errorCount(await metrics.registry.metrics(), 'record'), 1)
    assert.equal(lines.filter((line) => line.msg === 'redis refused a cache command').length, 1)
    await eventually(async () => await cache.state() === 'up', 'invalidation of the refused user')
    await cache.fillLatest(user, [event(user, 'x', 1, 66)], await fillToken(cache, user))
    assert.equal(await latestValue(cache, user), 66)
    assert.ok(!lines.some((line) => line.msg.startsWith('redis cache unavailable')), 'a refusal is not an outage')
  })
})
