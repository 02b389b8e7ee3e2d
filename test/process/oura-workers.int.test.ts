import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { OuraSimulator } from '../../src/simulators/oura/index.ts'
import { BASE_TEST_ENV } from '../helpers/app.ts'
import { startServe, type ServeProcess } from '../helpers/bridge-process.ts'
import { CANARY } from '../helpers/canaries.ts'
import { ouraEnv, startTestOuraSimulator } from '../helpers/oura.ts'
import { createScratchDatabase, deferCleanup, requirePostgres } from '../helpers/services.ts'

const OURA_USER = 'oura-multi-node-user'
const USER = 'multi-node-user'

interface Cluster {
  sim: OuraSimulator
  nodes: ServeProcess[]
  db: pg.Client
  env: Record<string, string>
}

/** N `bridge serve` processes on one PostgreSQL database, all pointed at one Oura simulator. */
async function startCluster(t: TestContext, nodeCount: number, extraEnv: Record<string, string> = {}): Promise<Cluster | undefined> {
  if (!(await requirePostgres(t))) return undefined
  const sim = await startTestOuraSimulator(t)
  sim.addUser({ userId: OURA_USER, days: 16 })
  const url = await createScratchDatabase(t)
  const env = { ...BASE_TEST_ENV, ...ouraEnv(sim), DATABASE_URL: url, LOG_LEVEL: 'info', BACKFILL_DAYS: '0', ...extraEnv }
  const nodes: ServeProcess[] = []
  // One after the other: the first applies the migrations, the others find them applied.
  for (let i = 0; i < nodeCount; i++) nodes.push(await startServe(t, env, `oura-node-${i}`))
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  deferCleanup(t, () => db.end())
  return { sim, nodes, db, env }
}

/** The connect flow through node 0: admin call, simulated consent, callback. */
async function connect(cluster: Cluster): Promise<void> {
  const node = cluster.nodes[0]!
  const start = await fetch(`${node.address}/v1/users/${USER}/connections/oura`, {
    method: 'POST', headers: { authorization: `Bearer ${CANARY.adminToken}` }
  })
  assert.equal(start.status, 200)
  const authorizeUrl = new URL((await start.json() as { authorize_url: string }).authorize_url)
  authorizeUrl.searchParams.set('sim_user_id', OURA_USER)
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  const location = new URL(redirect.headers.get('location')!)
  const callback = await fetch(`${node.address}${location.pathname}${location.search}`)
  assert.equal(callback.status, 200)
}

async function waitFor(db: pg.Client, sql: string, done: (n: number) => boolean, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { rows } = await db.query<{ n: number }>(sql)
    const n = rows[0]?.n ?? 0
    if (done(n)) return n
    if (Date.now() > deadline) {
      const { rows: receipts } = await db.query(
        `SELECT id, status, attempts, last_error_code, locked_until > now() AS leased, round(extract(epoch FROM next_attempt_at - now())) AS due_in_s
         FROM webhook_receipts WHERE status = 'pending' ORDER BY id`)
      assert.fail(`condition not met within ${timeoutMs} ms: ${sql} → ${n}; pending: ${JSON.stringify(receipts)}`)
    }
    await sleep(50)
  }
}

/**
 * `update` notifications for `count` of the user's daily documents, delivered round-robin to the nodes. Each round
 * takes other documents: two updates of one document within the same second share Oura's dedup key.
 */
async function notifyUpdates(cluster: Cluster, count: number, round: number): Promise<void> {
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
    const cluster = await startCluster(t, 3)
    if (cluster === undefined) return
    await connect(cluster)
    const rounds = 3
    for (let round = 0; round < rounds; round++) {
      // Oura now refuses every access token it issued: each node's first fetch gets 401 and asks for a refresh.
      cluster.sim.expireAccessTokens()
      await notifyUpdates(cluster, 10, round)
      await waitFor(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE status <> 'pending'", (n) => n === 10 * (round + 1))
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
    const cluster = await startCluster(t, 1, { SHUTDOWN_TIMEOUT_MS: '2000' })
    if (cluster === undefined) return
    await connect(cluster)
    // Slow answers keep receipts in progress when the signal lands; the drain (1 s) is shorter than one fetch.
    cluster.sim.faults.latency({ ms: 3000 })
    await notifyUpdates(cluster, 10, 0)
    const node = cluster.nodes[0]!
    await waitFor(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE locked_until > now()", (n) => n > 0)
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
    await waitFor(cluster.db, "SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'done'", (n) => n === 10)
    const { rows: events } = await cluster.db.query<{ n: number }>(
      "SELECT count(DISTINCT source_record_id)::int AS n FROM events WHERE user_id = 'multi-node-user'")
    assert.equal(events[0]?.n, 10, 'the events of all ten documents are stored')
  })
})
