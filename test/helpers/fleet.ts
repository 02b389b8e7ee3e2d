import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { BASE_TEST_ENV } from './app.ts'
import { startServe, type ServeProcess } from './bridge-process.ts'
import { CANARY, recordCanary } from './canaries.ts'
import type { ConsumedMessage } from './kafka.ts'
import { createScratchDatabase, deferCleanup, requirePostgres } from './services.ts'
import type { AttemptRecord } from './steady-load.ts'

/**
 * `bridge serve` processes of one deployment on one scratch PostgreSQL database, behind the test's stand-in for a
 * load balancer: `target()` hands out the nodes in rotation round-robin. A test takes a node out of rotation at
 * the moment it signals it (readiness failing and endpoint removal race the signal in Kubernetes too) and starts
 * a successor with `add()`. Every attempt of the steady load is filed under the node it went to.
 */
export interface FleetNode {
  name: string
  serve: ServeProcess
  /** In rotation: gets new attempts. */
  live: boolean
  /** Attempts handed this node by target() / finished (onAttempt): the difference is in flight. */
  started: number
  ended: number
  attempts: AttemptRecord[]
}

export interface Fleet {
  url: string
  env: Record<string, string>
  db: pg.Client
  nodes: FleetNode[]
  target: () => string
  onAttempt: (attempt: AttemptRecord) => void
  headersFor: (userId: string) => Record<string, string>
  /** Starts one more node (same environment) and puts it into rotation once it listens. */
  add: (name: string) => Promise<FleetNode>
}

export async function startFleet(
  t: TestContext, name: string, count: number, users: readonly string[], env: Record<string, string>
): Promise<Fleet | undefined> {
  if (!(await requirePostgres(t))) return undefined
  const url = await createScratchDatabase(t)
  const fullEnv = { ...BASE_TEST_ENV, DATABASE_URL: url, LOG_LEVEL: 'info', ...env }
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  // The scratch database is dropped after the test, which ends this connection too.
  db.on('error', () => {})
  deferCleanup(t, () => db.end())
  const nodes: FleetNode[] = []
  const byAddress = new Map<string, FleetNode>()
  let turn = 0

  const add = async (nodeName: string): Promise<FleetNode> => {
    const serve = await startServe(t, fullEnv, `${name}-${nodeName}`)
    const node: FleetNode = { name: nodeName, serve, live: true, started: 0, ended: 0, attempts: [] }
    nodes.push(node)
    byAddress.set(serve.address, node)
    return node
  }
  // One after the other: the first applies the migrations, the others find them applied.
  for (let i = 0; i < count; i++) await add(`node-${i}`)

  const tokens = new Map<string, string>()
  for (const user of users) {
    const response = await fetch(`${nodes[0]!.serve.address}/v1/users/${encodeURIComponent(user)}/devices`, {
      method: 'POST', headers: { authorization: `Bearer ${CANARY.adminToken}` }
    })
    assert.equal(response.status, 201)
    const { token } = await response.json() as { token: string }
    recordCanary(token)
    tokens.set(user, token)
  }

  return {
    url,
    env: fullEnv,
    db,
    nodes,
    add,
    target() {
      const live = nodes.filter((node) => node.live)
      // None in rotation (all being replaced): the attempt fails (refused) and the sender retries, as it would.
      const node = live.length === 0 ? nodes[nodes.length - 1]! : live[turn++ % live.length]!
      node.started++
      return node.serve.address
    },
    onAttempt(attempt) {
      const node = byAddress.get(attempt.target)
      if (node === undefined) return
      node.ended++
      node.attempts.push(attempt)
    },
    headersFor(userId) {
      const token = tokens.get(userId)
      assert.ok(token !== undefined, `a device token for ${userId}`)
      return { authorization: `Bearer ${token}` }
    }
  }
}

/** Waits until `node` has at least `count` attempts in flight (so a signal lands mid-request); false on timeout. */
export async function waitForInFlight(node: FleetNode, count: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (node.started - node.ended < count) {
    if (Date.now() > deadline) return false
    await sleep(1)
  }
  return true
}

export async function pendingOutbox(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL')
  return rows[0]?.n ?? -1
}

/** Waits until the relay published every outbox row; returns how long that took (ms). */
export async function waitForOutboxDrained(db: pg.Client, timeoutMs: number): Promise<number> {
  const started = Date.now()
  let pending = await pendingOutbox(db)
  while (pending !== 0) {
    if (Date.now() - started > timeoutMs) assert.fail(`the outbox still holds ${pending} unpublished rows after ${timeoutMs} ms`)
    await sleep(200)
    pending = await pendingOutbox(db)
  }
  return Date.now() - started
}

/** Events, outbox rows, and the events without exactly one upsert outbox row plus outbox rows without an event. */
export async function eventOutboxCounts(db: Pick<pg.Client, 'query'>): Promise<{ events: number, outbox: number, unmatched: number }> {
  const { rows } = await db.query<{ events: number, outbox: number, unmatched: number }>(`SELECT
    (SELECT count(*)::int FROM events) AS events,
    (SELECT count(*)::int FROM outbox) AS outbox,
    (SELECT count(*)::int FROM (
      SELECT e.event_id FROM events e LEFT JOIN outbox o USING (event_id) GROUP BY e.event_id HAVING count(o.id) <> 1
      UNION ALL
      SELECT o.event_id FROM outbox o LEFT JOIN events e USING (event_id) WHERE e.event_id IS NULL OR o.op <> 'upsert'
    ) AS bad) AS unmatched`)
  return rows[0]!
}

/**
 * Nothing half-written: every event has exactly one upsert outbox row and every outbox row its event (an upload
 * writes both in one transaction; an identical retry writes neither).
 */
export async function assertEventsMatchOutbox(db: pg.Client): Promise<{ events: number, outbox: number }> {
  const row = await eventOutboxCounts(db)
  assert.equal(row.unmatched, 0, 'every event has exactly one upsert outbox row and every outbox row an event')
  assert.equal(row.outbox, row.events)
  return { events: row.events, outbox: row.outbox }
}

/**
 * Per-user order on the topic: for each key, the first occurrence of every event (repeats of at-least-once
 * delivery are allowed anywhere after it) follows the commit order (outbox id). Returns the users checked.
 */
export async function assertPerUserOrder(db: pg.Client, messages: readonly ConsumedMessage[]): Promise<number> {
  const { rows } = await db.query<{ user_id: string, event_id: string }>(
    'SELECT user_id, event_id::text AS event_id FROM outbox WHERE dead_lettered_at IS NULL ORDER BY id')
  const committed = new Map<string, string[]>()
  for (const row of rows) committed.set(row.user_id, [...(committed.get(row.user_id) ?? []), row.event_id])
  const byOffset = [...messages].sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset))
  const published = new Map<string, string[]>()
  const seen = new Set<string>()
  for (const message of byOffset) {
    const eventId = message.headers.event_id!
    if (seen.has(eventId)) continue
    seen.add(eventId)
    published.set(message.key, [...(published.get(message.key) ?? []), eventId])
  }
  for (const [user, order] of committed) {
    const got = published.get(user) ?? []
    const firstDifference = order.findIndex((eventId, index) => got[index] !== eventId)
    assert.equal(firstDifference, -1, `${user}: the topic follows the commit order (first difference at position ${firstDifference} of ${order.length})`)
    assert.equal(got.length, order.length, `${user}: no event on the topic that was not committed`)
  }
  return committed.size
}

/** `{"200":12,"error:ECONNRESET":1}` → `200×12 error:ECONNRESET×1`, for diagnostics. */
export function formatOutcomes(outcomes: Readonly<Record<string, number>>): string {
  return Object.entries(outcomes).sort(([a], [b]) => a.localeCompare(b)).map(([outcome, n]) => `${outcome}×${n}`).join(' ') || 'none'
}
