import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { WhoopSimulator } from '../../src/simulators/whoop/server.ts'
import { connectThroughNode, startCluster, waitForCount, type Cluster } from '../helpers/cluster.ts'
import { freePort, requireRedisServerBinary, startRedisServer } from '../helpers/redis-server.ts'
import { startTestWhoopSimulator, whoopEnv } from '../helpers/whoop.ts'

const MEMBER = '4560001112223'
const USER = 'whoop-multi-node-user'
const DONE = "SELECT count(*)::int AS n FROM webhook_receipts WHERE status <> 'pending'"

interface WhoopCluster extends Cluster {
  sim: WhoopSimulator
}

/**
 * Three `bridge serve` processes sharing one PostgreSQL database and one Redis of the test's own (a fresh server:
 * the budget windows and locks of other runs cannot leak in), pointed at one WHOOP simulator.
 */
async function startWhoopCluster(t: TestContext, env: Record<string, string>): Promise<WhoopCluster | undefined> {
  if (!requireRedisServerBinary(t)) return undefined
  const redis = await startRedisServer(t, await freePort())
  // WHOOP's own limit is lifted: what these tests watch is the bridge's side of it.
  const sim = await startTestWhoopSimulator(t, { perMinute: 100_000, perDay: 1_000_000 })
  sim.addUser({ userId: MEMBER, days: 30 })
  const cluster = await startCluster(t, 'whoop', 3, { ...whoopEnv(sim), REDIS_URL: redis.url, ...env })
  if (cluster === undefined) return undefined
  await connectThroughNode(cluster, 'whoop', USER, MEMBER)
  return { ...cluster, sim }
}

/** `workout.updated` for `count` of the member's workouts (fresh trace ids, so each is new work), round-robin over the nodes. */
async function notifyWorkouts(cluster: WhoopCluster, count: number, offset = 0): Promise<void> {
  const workouts = cluster.sim.workouts(MEMBER)
  const deliveries = Array.from({ length: count }, (_, i) => {
    const node = cluster.nodes[(i + offset) % cluster.nodes.length]!
    const workout = workouts[i % workouts.length]!
    return cluster.sim.sendWebhook({ type: 'workout.updated', id: workout.id, userId: MEMBER }, { to: `${node.address}/webhooks/whoop` })
  })
  for (const delivery of await Promise.all(deliveries)) assert.equal(delivery.status, 200, delivery.body)
}

describe('WHOOP across processes', { timeout: 240_000 }, () => {
  test('25 concurrent notifications over 3 processes with an expired token: one refresh per expiry, no revoked family, every round', async (t) => {
    const cluster = await startWhoopCluster(t, { WHOOP_REQUESTS_PER_MINUTE: '100000', WHOOP_REQUESTS_PER_DAY: '1000000' })
    if (cluster === undefined) return
    const rounds = 8
    for (let round = 0; round < rounds; round++) {
      // WHOOP now refuses every access token it issued: each node's first fetches get 401 and ask for a refresh at once.
      cluster.sim.expireAccessTokens()
      await notifyWorkouts(cluster, 25, round)
      await waitForCount(cluster.db, DONE, (n) => n === 25 * (round + 1))
      const stats = cluster.sim.tokenStats(MEMBER)
      assert.deepEqual([stats.refreshCalls, stats.refreshReuses, stats.familiesRevoked], [round + 1, 0, 0], `round ${round}`)
    }
    const { rows } = await cluster.db.query<{ status: string, n: number }>("SELECT status, count(*)::int AS n FROM webhook_receipts GROUP BY status")
    assert.deepEqual(rows, [{ status: 'done', n: 25 * rounds }])
    const { rows: connection } = await cluster.db.query<{ status: string, token_version: number }>(
      `SELECT status, token_version FROM connections WHERE user_id = '${USER}'`)
    assert.deepEqual(connection.map((row) => [row.status, Number(row.token_version)]), [['active', 1 + rounds]], 'one token write per refresh')
  })

  test('a burst over 3 processes never takes more than the per-minute budget; the rest waits and loses nothing', async (t) => {
    const limit = 12
    const cluster = await startWhoopCluster(t, { WHOOP_REQUESTS_PER_MINUTE: String(limit) })
    if (cluster === undefined) return
    await notifyWorkouts(cluster, 45)
    await waitForCount(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'done'", (n) => n === limit)
    // Give the nodes time to try for more: none may get through before the window moves on (a minute).
    await sleep(2000)
    const fetched = cluster.sim.requestCount('GET /developer/v2/activity/workout/{id}')
    assert.equal(fetched, limit, 'exactly the budget, across all three nodes')
    const { rows } = await cluster.db.query<{ status: string, attempts: number, last_error_code: string | null, n: number }>(
      `SELECT status, attempts::int AS attempts, last_error_code, count(*)::int AS n FROM webhook_receipts
       GROUP BY status, attempts, last_error_code ORDER BY status`)
    assert.deepEqual(rows.map((row) => [row.status, Number(row.attempts), row.last_error_code, Number(row.n)]), [
      ['done', 1, null, limit],
      // Held back by the budget: rescheduled without spending an attempt, so a long wait never dead-letters them.
      ['pending', 0, 'BB_PROVIDER_RATE_LIMITED', 45 - limit]
    ])
    // The node that took the last request of the window reports none left; nodes that were refused say so.
    const scrapes = await Promise.all(cluster.nodes.map(async (node) => (await fetch(`${node.address}/metrics`)).text()))
    const remaining = scrapes.flatMap((text) => /^provider_budget_remaining\{provider="whoop"\} (\d+)$/m.exec(text)?.[1] ?? []).map(Number)
    assert.equal(Math.min(...remaining), 0, `remaining budget per node: ${remaining.join(', ')}`)
    assert.ok(scrapes.some((text) => /^provider_requests_total\{provider="whoop",status="budget_exhausted"\} [1-9]/m.test(text)))
  })
})
