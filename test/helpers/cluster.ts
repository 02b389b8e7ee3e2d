import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { BASE_TEST_ENV } from './app.ts'
import { startServe, type ServeProcess } from './bridge-process.ts'
import { CANARY } from './canaries.ts'
import { createScratchDatabase, deferCleanup, requirePostgres } from './services.ts'

/** N `bridge serve` processes on one scratch PostgreSQL database: the nodes of one deployment. */
export interface Cluster {
  nodes: ServeProcess[]
  db: pg.Client
  env: Record<string, string>
}

export async function startCluster(t: TestContext, name: string, nodeCount: number, env: Record<string, string>): Promise<Cluster | undefined> {
  if (!(await requirePostgres(t))) return undefined
  const url = await createScratchDatabase(t)
  const fullEnv = { ...BASE_TEST_ENV, DATABASE_URL: url, LOG_LEVEL: 'info', BACKFILL_DAYS: '0', ...env }
  const nodes: ServeProcess[] = []
  // One after the other: the first applies the migrations, the others find them applied.
  for (let i = 0; i < nodeCount; i++) nodes.push(await startServe(t, fullEnv, `${name}-node-${i}`))
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  deferCleanup(t, () => db.end())
  return { nodes, db, env: fullEnv }
}

/** The connect flow through node 0: admin call, simulated consent as `providerUserId`, callback. */
export async function connectThroughNode(cluster: Cluster, provider: 'oura' | 'whoop', userId: string, providerUserId: string): Promise<void> {
  const node = cluster.nodes[0]!
  const start = await fetch(`${node.address}/v1/users/${userId}/connections/${provider}`, {
    method: 'POST', headers: { authorization: `Bearer ${CANARY.adminToken}` }
  })
  assert.equal(start.status, 200)
  const authorizeUrl = new URL((await start.json() as { authorize_url: string }).authorize_url)
  authorizeUrl.searchParams.set('sim_user_id', providerUserId)
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  const location = new URL(redirect.headers.get('location')!)
  const callback = await fetch(`${node.address}${location.pathname}${location.search}`)
  assert.equal(callback.status, 200)
}

/** Polls a `SELECT … AS n` until `done(n)`; on timeout fails with the pending receipts for the diagnosis. */
export async function waitForCount(db: pg.Client, sql: string, done: (n: number) => boolean, timeoutMs = 30_000): Promise<number> {
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
