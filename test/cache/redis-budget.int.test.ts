import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { createRedisSharedBudget } from '../../src/cache/redis-budget.ts'
import type { RequestPriority } from '../../src/providers/client/shared-budget.ts'
import { TEST_REDIS_URL, redisKeyPrefix, requireRedis } from '../helpers/services.ts'

async function clients(t: TestContext, count: number): Promise<Redis[]> {
  const opened = Array.from({ length: count }, () => new Redis(TEST_REDIS_URL, { lazyConnect: true }))
  await Promise.all(opened.map((client) => client.connect()))
  t.after(() => { for (const client of opened) client.disconnect() })
  return opened
}

describe('shared request budget (real Redis)', () => {
  test('a burst from three nodes never exceeds any window, and every refusal says how long to wait', async (t) => {
    if (!(await requireRedis(t))) return
    const prefix = `${redisKeyPrefix(t, TEST_REDIS_URL)}budget:`
    // WHOOP's shape (100 per minute, 10,000 per day), scaled down so the test is exact and quick.
    const windows = [{ requests: 20, windowMs: 60_000 }, { requests: 50, windowMs: 86_400_000 }]
    const nodes = (await clients(t, 3)).map((client) => createRedisSharedBudget(client, prefix, windows))
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => nodes[i % 3]!.take('live')))
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
    const prefix = `${redisKeyPrefix(t, TEST_REDIS_URL)}budget:`
    const [client] = await clients(t, 1)
    const budget = createRedisSharedBudget(client!, prefix, [{ requests: 10, windowMs: 60_000 }])
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
})
