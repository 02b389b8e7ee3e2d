import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createApp, type App } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/lib/logger.ts'
import type { ProviderTuning } from '../../src/pipeline/provider-work.ts'
import type { OuraNotificationInput, OuraSimulator, OuraSimulatorOptions } from '../../src/simulators/oura/index.ts'
import type { Queryable } from '../../src/storage/database.ts'
import { BASE_TEST_ENV, buildTestApp, type TestApp } from './app.ts'
import { TEST_LOG_DIR } from './canaries.ts'
import { FAST_TUNING, connectOura, ouraEnv, startTestOuraSimulator } from './oura.ts'
import { deferCleanup, type AdapterName } from './services.ts'

/** Shared set-up of the receipt pipeline tests (test/pipeline/oura-receipts*.int.test.ts). */

export const USER_ID = 'receipts-user'
export const OURA_USER_ID = 'oura-receipts-user'

export interface ReceiptBridge {
  sim: OuraSimulator
  harness: TestApp
  app: App
  /** Where the simulator posts notifications: the app's real listening socket. */
  webhookUrl: string
}

export interface ReceiptBridgeOptions {
  env?: Record<string, string>
  tuning?: ProviderTuning
  sim?: OuraSimulatorOptions
  now?: () => number
  /** Connect USER_ID as OURA_USER_ID before returning. Default true. */
  connect?: boolean
}

/**
 * A simulator with one Oura user and the bridge listening on a real port, the user connected. BACKFILL_DAYS=0,
 * so nothing is stored until a test sends a notification: every event and outbox row is the test's own doing.
 */
export async function startReceiptBridge(t: TestContext, adapter: AdapterName, options: ReceiptBridgeOptions = {}): Promise<ReceiptBridge | undefined> {
  const sim = await startTestOuraSimulator(t, options.sim)
  sim.addUser({ userId: OURA_USER_ID, days: 4 })
  const harness = await buildTestApp(t, adapter, ouraEnv(sim, { BACKFILL_DAYS: '0', ...options.env }), {
    providerTuning: options.tuning ?? FAST_TUNING, ...(options.now === undefined ? {} : { now: options.now })
  })
  if (harness === undefined) return undefined
  const webhookUrl = `${await harness.app.listen()}/webhooks/oura`
  if (options.connect !== false) await connectOura(harness, USER_ID, OURA_USER_ID)
  return { sim, harness, app: harness.app, webhookUrl }
}

/**
 * Another bridge process on the same PostgreSQL database (a second node): its own worker pool, scheduler and
 * provider client. Stopped before the database is dropped.
 */
export async function startSecondNode(
  t: TestContext, bridge: ReceiptBridge, env: Record<string, string>, tuning: ProviderTuning, now: () => number
): Promise<App> {
  const databaseUrl = bridge.app.config.databaseUrl
  assert.ok(databaseUrl !== undefined, 'a second node needs PostgreSQL')
  const config = loadConfig({ ...BASE_TEST_ENV, ...ouraEnv(bridge.sim, { BACKFILL_DAYS: '0', ...env }), DATABASE_URL: databaseUrl })
  const destination = pino.destination({ dest: `${TEST_LOG_DIR}/app-${process.pid}-second-node.log`, sync: true, append: true, mkdir: true })
  const app = await createApp(config, { logger: createLogger({ level: 'debug', format: 'json', destination }), providerTuning: tuning, now })
  deferCleanup(t, () => app.stop())
  return app
}

let sequence = 0

/**
 * Posts a signed notification to the bridge the way Oura does and expects it accepted. `event_time` is made
 * unique: it is part of the dedup key, and two changes of one document within a second would otherwise collapse.
 */
export async function deliver(bridge: ReceiptBridge, notification: OuraNotificationInput): Promise<void> {
  const eventTime = new Date(Date.now() + sequence++).toISOString()
  const delivery = await bridge.sim.sendNotification({ ...notification, event_time: eventTime }, { to: bridge.webhookUrl })
  assert.equal(delivery.status, 200, delivery.responseBody)
  assert.deepEqual(JSON.parse(delivery.responseBody), { status: 'accepted' })
}

/** Polls `probe` until it returns something other than undefined/false; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await probe()
    if (result !== undefined && result !== false) return result
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

export interface ReceiptRow {
  id: string
  status: string
  event_type: string
  data_type: string
  object_id: string | null
  attempts: number
  last_error_code: string | null
}

export async function receiptsFor(db: Queryable, objectId?: string): Promise<ReceiptRow[]> {
  const { rows } = await db.query<ReceiptRow>(
    `SELECT id::text AS id, status, event_type, data_type, object_id, attempts::int AS attempts, last_error_code
     FROM webhook_receipts WHERE $1::text IS NULL OR object_id = $1 ORDER BY webhook_receipts.id`, [objectId ?? null])
  return rows.map((row) => ({ ...row, attempts: Number(row.attempts) }))
}

/** The one receipt of `objectId` once it is no longer pending. */
export async function finishedReceipt(db: Queryable, objectId: string, timeoutMs?: number): Promise<ReceiptRow> {
  return waitFor(`the receipt of ${objectId} to finish`, async () => {
    const rows = await receiptsFor(db, objectId)
    assert.ok(rows.length <= 1, `one receipt for ${objectId}`)
    return rows[0]?.status === 'pending' ? undefined : rows[0]
  }, timeoutMs)
}

export interface StoredEvent {
  event_id: string
  metric: string
  value: number
  context: string
  start_ms: number
  end_ms: number
  /** Epoch ms of the stored revision's meta.updated_at. */
  source_updated_ms: number | null
}

/** Every stored event of one provider document (its source_record_id) of `userId`, by metric. */
export async function recordEvents(db: Queryable, sourceRecordId: string, source = 'oura', userId = USER_ID): Promise<StoredEvent[]> {
  const { rows } = await db.query<StoredEvent>(
    `SELECT event_id::text AS event_id, metric, value, context,
            (extract(epoch FROM start_at) * 1000)::float8 AS start_ms, (extract(epoch FROM end_at) * 1000)::float8 AS end_ms,
            (extract(epoch FROM source_updated_at) * 1000)::float8 AS source_updated_ms
     FROM events WHERE user_id = $1 AND source = $3 AND source_record_id = $2 ORDER BY metric`, [userId, sourceRecordId, source])
  return rows.map((row) => ({
    ...row, value: Number(row.value), start_ms: Number(row.start_ms), end_ms: Number(row.end_ms),
    source_updated_ms: row.source_updated_ms === null ? null : Number(row.source_updated_ms)
  }))
}

export interface OutboxRow {
  id: number
  event_id: string
  op: string
  payload: { value: number, metric: string, op: string, source_record_id: string }
}

/** Outbox rows of the given events, oldest first. */
export async function outboxFor(db: Queryable, eventIds: readonly string[]): Promise<OutboxRow[]> {
  const { rows } = await db.query<{ id: string, event_id: string, op: string, payload: string }>(
    `SELECT id::text AS id, event_id::text AS event_id, op, payload FROM outbox
     WHERE event_id::text IN (SELECT json_array_elements_text($1::json)) ORDER BY outbox.id`, [JSON.stringify(eventIds)])
  return rows.map((row) => ({ id: Number(row.id), event_id: row.event_id, op: row.op, payload: JSON.parse(row.payload) as OutboxRow['payload'] }))
}

/** `{ metric: value }` of a record's events. */
export function valuesByMetric(events: readonly StoredEvent[]): Record<string, number> {
  return Object.fromEntries(events.map((event) => [event.metric, event.value]))
}

/** The current value of one labelled series of a counter or gauge of the app's registry (0 when absent). */
export async function metricValue(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = app.metrics.registry.getSingleMetric(name)
  assert.ok(metric !== undefined, `metric ${name} exists`)
  const { values } = await metric.get()
  const series = values.filter((value) => Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted))
  return series.reduce((sum, value) => sum + value.value, 0)
}
