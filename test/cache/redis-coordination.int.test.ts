import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import pino from 'pino'
import type { Coordination } from '../../src/cache/coordination.ts'
import { createRedisCoordination } from '../../src/cache/redis-coordination.ts'
import type { RateWindow, RequestPriority } from '../../src/providers/client/rate-budget.ts'
import { deferCleanup, TEST_REDIS_URL, redisKeyPrefix, requireRedis } from '../helpers/services.ts'

/** Separate connections with one key prefix: as many nodes of one deployment. */
async function nodes(t: TestContext, count: number, url = TEST_REDIS_URL): Promise<Coordination[]> {
  const keyPrefix = redisKeyPrefix(t, TEST_REDIS_URL)
  const opened = await Promise.all(Array.from({ length: count }, () =>
    createRedisCoordination({ url, logger: pino({ level: 'silent' }), now: Date.now, keyPrefix, commandTimeoutMs: 300 })))
  deferCleanup(t, async () => { await Promise.all(opened.map((node) => node.close())) })
  return opened
}

// WHOOP's shape (100 per minute, 10,000 per day), scaled down so the test is exact and quick.
const WINDOWS: readonly RateWindow[] = [{ requests: 20, windowMs: 60_000 }, { requests: 50, windowMs: 86_400_000 }]

describe('coordination through Redis (real Redis)', () => {
  test('a burst from three nodes never exceeds any window, and every refusal says how long to wait', async (t) => {
    if (!(await requireRedis(t))) return
    const budgets = (await nodes(t, 3)).map((node) => node.budget('whoop', WINDOWS))
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => budgets[i % 3]!.take('live')))
    const granted = results.filter((result) => result.ok)
    assert.equal(granted.length, 20, 'exactly the per-minute limit, across all nodes')
    assert.deepEqual(granted.map((result) => result.ok && result.remaining).sort((a, b) => Number(a) - Number(b)),
      Array.from({ length: 20 }, (_, i) => i), 'remaining counts down without gaps')
    for (const refused of results.filter((result) => !result.ok)) {
      assert.ok(!refused.ok && refused.retryAfterMs > 59_000 && refused.retryAfterMs <= 60_000, JSON.stringify(refused))
    }
  })

  test('backfill stops at half a window and reconciliation at 80 %, leaving the rest to live fetches', async (t) => {
    if (!(await requireRedis(t))) return
    const [node] = await nodes(t, 1)
    const budget = node!.budget('oura', [{ requests: 10, windowMs: 60_000 }])
    const takeAll = async (priority: RequestPriority): Promise<number> => {
      let granted = 0
      while ((await budget.take(priority)).ok) granted++
      return granted
    }
    assert.equal(await takeAll('backfill'), 5)
    assert.equal(await takeAll('reconcile'), 3)
    assert.equal(await takeAll('live'), 2)
    assert.equal((await budget.take('live')).ok, false)
  })

  test('a hold-off asked for by one node (the provider said wait) stops every node', async (t) => {
    if (!(await requireRedis(t))) return
    const [a, b] = await nodes(t, 2)
    await a!.budget('whoop', WINDOWS).holdOff(2_000)
    const verdict = await b!.budget('whoop', WINDOWS).take('live')
    assert.ok(!verdict.ok && verdict.retryAfterMs > 1_500 && verdict.retryAfterMs <= 2_000, JSON.stringify(verdict))
  })

  test('a lock has one owner across nodes; only its owner releases it; it lapses after its ttl', async (t) => {
    if (!(await requireRedis(t))) return
    const [a, b] = await nodes(t, 2)
    const owners = await Promise.all(Array.from({ length: 25 }, (_, i) => (i % 2 === 0 ? a! : b!).tryLock('refresh:c1', 10_000)))
    const taken = owners.filter((owner) => owner !== undefined)
    assert.equal(taken.length, 1, 'one of 25 attempts over two nodes gets the lock')
    await b!.unlock('refresh:c1', 'not-the-owner')
    assert.equal(await a!.tryLock('refresh:c1', 10_000), undefined, 'a stranger\'s unlock leaves it held')
    await a!.unlock('refresh:c1', taken[0]!)
    assert.notEqual(await b!.tryLock('refresh:c1', 50), undefined, 'free again after its owner released it')
    await new Promise((resolve) => setTimeout(resolve, 80))
    assert.notEqual(await a!.tryLock('refresh:c1', 10_000), undefined, 'a lapsed lock can be taken')
  })

  test('with Redis unreachable, locks say so (the caller falls back) and the budget counts per node', async (t) => {
    // Nothing listens on port 1: every command fails fast, as with a Redis that went away.
    const [node] = await nodes(t, 1, 'redis://127.0.0.1:1')
    await assert.rejects(node!.tryLock('refresh:c1', 1000))
    const budget = node!.budget('whoop', [{ requests: 3, windowMs: 60_000 }])
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => budget.take('live')))
    assert.deepEqual(verdicts.map((verdict) => verdict.ok), [true, true, true, false, false])
  })
})
