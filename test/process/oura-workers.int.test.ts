import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { OuraSimulator } from '../../src/simulators/oura/index.ts'
import { startServe } from '../helpers/bridge-process.ts'
import { connectThroughNode, startCluster, waitForCount, type Cluster } from '../helpers/cluster.ts'
import { ouraEnv, startTestOuraSimulator } from '../helpers/oura.ts'

const OURA_USER = 'oura-multi-node-user'
const USER = 'multi-node-user'

interface OuraCluster extends Cluster {
  sim: OuraSimulator
}

/** N `bridge serve` processes on one PostgreSQL database, all pointed at one Oura simulator. */
async function startOuraCluster(t: TestContext, nodeCount: number, extraEnv: Record<string, string> = {}): Promise<OuraCluster | undefined> {
  const sim = await startTestOuraSimulator(t)
  sim.addUser({ userId: OURA_USER, days: 16 })
  const cluster = await startCluster(t, 'oura', nodeCount, { ...ouraEnv(sim), ...extraEnv })
  return cluster === undefined ? undefined : { ...cluster, sim }
}

const connect = (cluster: OuraCluster): Promise<void> => connectThroughNode(cluster, 'oura', USER, OURA_USER)

/**
 * `update` notifications for `count` of the user's daily documents, delivered round-robin to the nodes. Each round
 * takes other documents: two updates of one document within the same second share Oura's dedup key.
 */
async function notifyUpdates(cluster: OuraCluster, count: number, round: number): Promise<void> {
  const dataTypes = ['daily_activity', 'daily_readiness'] as const
  const documents = dataTypes.flatMap((dataType) => cluster.sim.documents(OURA_USER, dataType).map((document) => ({ dataType, id: document.id })))
    .slice(round * count, (round + 1) * count)
  assert.equal(documents.length, count, 'enough documents to notify about')
  const deliveries = documents.map(({ dataType, id }, i) => {
    const { notification } = cluster.sim.updateDocument(dataType, id)
    const node = cluster.nodes[(i + round) % cluster.nodes.length]!
    return cluster.sim.sendNotification(notification, { to: `${node.address}/webhooks/oura` })
  })
  for (const delivery of await Promise.all(deliveries)) assert.equal(delivery.status, 200)
}

describe('Oura receipts across processes', { timeout: 180_000 }, () => {
  test('10 concurrent notifications over 3 processes with an expired token cause exactly one refresh, every round', async (t) => {
    const cluster = await startOuraCluster(t, 3)
    if (cluster === undefined) return
    await connect(cluster)
    const rounds = 3
    for (let round = 0; round < rounds; round++) {
      // Oura now refuses every access token it issued: each node's first fetch gets 401 and asks for a refresh.
      cluster.sim.expireAccessTokens()
      await notifyUpdates(cluster, 10, round)
      await waitForCount(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE status <> 'pending'", (n) => n === 10 * (round + 1))
      const stats = cluster.sim.tokenStats(OURA_USER)
      assert.equal(stats.refreshCalls, round + 1, `round ${round}: one refresh call per expiry`)
      assert.equal(stats.refreshReuses, 0, 'no refresh token was presented twice')
    }
    const { rows: statuses } = await cluster.db.query<{ status: string, n: number }>(
      'SELECT status, count(*)::int AS n FROM webhook_receipts GROUP BY status')
    assert.deepEqual(statuses, [{ status: 'done', n: 10 * rounds }], 'every receipt was worked off')
    const { rows: connection } = await cluster.db.query<{ status: string, token_version: number }>(
      "SELECT status, token_version FROM connections WHERE user_id = 'multi-node-user'")
    assert.equal(connection[0]?.status, 'active')
    assert.equal(connection[0]?.token_version, 1 + rounds, 'one token write per refresh')
  })

  test('SIGTERM with receipts in flight loses none: another process finishes them', async (t) => {
    const cluster = await startOuraCluster(t, 1, { SHUTDOWN_TIMEOUT_MS: '2000' })
    if (cluster === undefined) return
    await connect(cluster)
    // Slow answers keep receipts in progress when the signal lands; the drain (1 s) is shorter than one fetch.
    cluster.sim.faults.latency({ ms: 3000 })
    await notifyUpdates(cluster, 10, 0)
    const node = cluster.nodes[0]!
    await waitForCount(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE locked_until > now()", (n) => n > 0)
    node.child.kill('SIGTERM')
    const status = await node.exited
    assert.equal(status.code, 0, 'graceful stop')
    const { rows: left } = await cluster.db.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'pending'")
    assert.ok((left[0]?.n ?? 0) > 0, 'some receipts were still in flight at the stop')
    const { rows: leased } = await cluster.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'pending' AND locked_until > now()")
    assert.equal(leased[0]?.n, 0, 'their leases were given back, so nobody waits for them to lapse')

    cluster.sim.faults.clear()
    await startServe(t, cluster.env, 'oura-node-successor')
    await waitForCount(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'done'", (n) => n === 10)
    const { rows: events } = await cluster.db.query<{ n: number }>(
      "SELECT count(DISTINCT source_record_id)::int AS n FROM events WHERE user_id = 'multi-node-user'")
    assert.equal(events[0]?.n, 10, 'the events of all ten documents are stored')
  })
})
