import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../src/app.ts'
import type { OuraNotificationInput, OuraSimulator } from '../../src/simulators/oura/index.ts'
import type { WhoopSimulator } from '../../src/simulators/whoop/server.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { DeliveryChecker, assertNothingLost, type Reconciliation } from '../helpers/checker.ts'
import { formatOutcomes } from '../helpers/fleet.ts'
import { metricValue, waitFor } from '../helpers/oura-receipts.ts'
import { FAST_TUNING, connectOura, connectProvider, drainReceipts, ouraEnv, receiptStatuses, startTestOuraSimulator } from '../helpers/oura.ts'
import { startSteadyLoad, type SteadyLoad } from '../helpers/steady-load.ts'
import { startTestWhoopSimulator, whoopEnv } from '../helpers/whoop.ts'

/**
 * Reliability matrix F8, the parts the receipt tests (test/pipeline/oura-receipts-faults.int.test.ts: 429 with
 * Retry-After, sustained 5xx and the breaker, dead letters; test/process/whoop-workers.int.test.ts: the
 * per-minute budget across nodes) do not cover: a provider that never answers within the client's timeout, and
 * WHOOP's daily budget. Both run under steady HealthKit load on the same bridge, and end with the loss checker:
 * every notification the bridge acknowledged ends with its document's events stored, every acknowledged upload too.
 */

const HEALTHKIT_USERS = ['f8-hk-user-1', 'f8-hk-user-2']
/** Fixed in src/pipeline/provider-work.ts (PROVIDER_TIMEOUT_MS); the simulated provider answers later than this. */
const PROVIDER_TIMEOUT_MS = 10_000

/** HealthKit uploads in the background of a provider fault, with their own checker. */
async function backgroundLoad(t: TestContext, harness: TestApp, base: string, name: string): Promise<{ load: SteadyLoad, checker: DeliveryChecker }> {
  const headers = new Map<string, Record<string, string>>()
  for (const user of HEALTHKIT_USERS) headers.set(user, await harness.deviceHeaders(user))
  const checker = new DeliveryChecker()
  const load = startSteadyLoad({
    target: () => base, headersFor: (user) => headers.get(user)!, users: HEALTHKIT_USERS, checker,
    uploadsPerSecond: 5, samplesPerUpload: 10, runId: `${name}-${randomBytes(4).toString('hex')}`
  })
  t.after(() => load.stop(0).catch(() => {}))
  return { load, checker }
}

/**
 * Sends notifications one after another at `perSecond`, each redelivered (like the provider) until the bridge
 * answers 2xx; records every delivery attempt in the checker with the value the document's event must carry.
 */
async function notificationStream<T>(
  items: readonly T[], perSecond: number, send: (item: T) => Promise<number>, sample: (item: T) => { recordId: string, value: number },
  userId: string, checker: DeliveryChecker, outcomes: Record<string, number>
): Promise<void> {
  await Promise.all(items.map(async (item, index) => {
    await sleep(index * 1000 / perSecond)
    for (;;) {
      const status = await send(item).catch(() => 0)
      outcomes[String(status)] = (outcomes[String(status)] ?? 0) + 1
      const ok = status >= 200 && status < 300
      checker.record([{ userId, ...sample(item) }], ok)
      if (ok) return
      await sleep(500)
    }
  }))
}

function figures(label: string, result: Reconciliation): string {
  return `${label}: sent=${result.sent} acknowledged=${result.acknowledged} stored=${result.stored} lost=${result.lost.length}`
}

async function receiptSummary(app: App): Promise<string> {
  const { rows } = await app.db.query<{ status: string, n: number, max_attempts: number }>(
    'SELECT status, count(*)::int AS n, max(attempts)::int AS max_attempts FROM webhook_receipts GROUP BY status ORDER BY status')
  return rows.map((row) => `${row.status}×${row.n} (max attempts ${row.max_attempts})`).join(', ')
}

describe('provider faults under steady load (F8)', { timeout: 120_000 }, () => {
  test('Oura never answering within the client timeout: timeout_error, the breaker opens, nothing is dead-lettered, every acknowledged notification is stored', async (t) => {
    const ouraUser = 'f8-oura-ring-user'
    const userId = 'f8-oura-user'
    const sim: OuraSimulator = await startTestOuraSimulator(t)
    sim.addUser({ userId: ouraUser, days: 12 })
    const harness = await buildTestApp(t, 'postgres', ouraEnv(sim, { BACKFILL_DAYS: '0' }), { providerTuning: FAST_TUNING })
    if (harness === undefined) return
    const { app } = harness
    const base = await app.listen()
    await connectOura(harness, userId, ouraUser)
    const { load, checker: uploads } = await backgroundLoad(t, harness, base, 'f8-timeout')

    // One metric per document type, each the document's score: one event row per acknowledged notification.
    const metricOf = { daily_readiness: 'recovery_score', daily_sleep: 'sleep_score', daily_activity: 'activity_score' } as const
    type Scored = keyof typeof metricOf
    const notifications = sim.notificationsFor(ouraUser, 'create', Object.keys(metricOf) as Scored[])
      .filter((notification) => sim.document(notification.data_type as Scored, notification.object_id)?.score != null)
    assert.ok(notifications.length >= 24, `enough scored documents: ${notifications.length}`)
    const checker = new DeliveryChecker('oura', { metrics: Object.values(metricOf) })
    const deliveries: Record<string, number> = {}
    let sequence = 0
    const send = async (notification: OuraNotificationInput): Promise<number> => {
      // event_time is part of Oura's dedup key: a redelivery keeps it, a new notification gets its own.
      const delivery = await sim.sendNotification({ ...notification, event_time: new Date(Date.UTC(2026, 10, 1) + sequence++).toISOString() }, { to: `${base}/webhooks/oura` })
      return delivery.status
    }

    // Oura hangs: every data request answers only after 15 s, past the bridge's 10 s timeout.
    sim.faults.latency({ ms: PROVIDER_TIMEOUT_MS + 5000 })
    const hangStarted = Date.now()
    const stream = notificationStream(notifications, 2, send,
      (notification) => ({ recordId: notification.object_id, value: sim.document(notification.data_type as Scored, notification.object_id)!.score! }),
      userId, checker, deliveries)
    await waitFor('requests to time out and the breaker to open', async () =>
      await metricValue(app, 'provider_requests_total', { status: 'timeout' }) >= FAST_TUNING.breakerThreshold! &&
      await metricValue(app, 'provider_requests_total', { status: 'circuit_open' }) > 0, PROVIDER_TIMEOUT_MS + 15_000)
    const firstTimeoutAfterMs = Date.now() - hangStarted
    assert.ok(firstTimeoutAfterMs >= PROVIDER_TIMEOUT_MS - 500, `no timeout before the client's deadline (${firstTimeoutAfterMs} ms)`)
    const during = await receiptStatuses(app.db)
    assert.deepEqual(Object.keys(during), ['pending'], `nothing finished or gave up while Oura hung: ${JSON.stringify(during)}`)
    const { rows: codes } = await app.db.query<{ last_error_code: string | null }>(
      "SELECT DISTINCT last_error_code FROM webhook_receipts WHERE attempts > 0")
    assert.ok(codes.some((row) => row.last_error_code === 'BB_PROVIDER_TIMEOUT'), `timed-out receipts say so: ${JSON.stringify(codes)}`)
    const timeoutsDuringHang = await metricValue(app, 'provider_requests_total', { status: 'timeout' })
    const fastFailsDuringHang = await metricValue(app, 'provider_requests_total', { status: 'circuit_open' })

    // Oura answers again (a trial request already waiting on it still times out; the next one closes the breaker).
    sim.faults.latency(false)
    const recoveredAt = Date.now()
    await stream
    await drainReceipts(app.db, 60_000)
    const drainedAfterMs = Date.now() - recoveredAt
    const statuses = await receiptStatuses(app.db)
    assert.deepEqual(statuses, { done: notifications.length }, 'every receipt done, none dead-lettered')
    const { rows: attempts } = await app.db.query<{ max: number }>('SELECT max(attempts)::int AS max FROM webhook_receipts')
    assert.ok((attempts[0]?.max ?? 0) < app.config.maxReceiptAttempts, `attempts stayed below MAX_RECEIPT_ATTEMPTS: ${attempts[0]?.max}`)
    assert.equal(await metricValue(app, 'dlq_messages_total'), 0)

    const stats = await load.stop(30_000)
    const notified = await checker.reconcile(app.db)
    assertNothingLost(notified, { requireAcknowledged: notifications.length })
    const uploaded = await uploads.reconcile(app.db)
    assertNothingLost(uploaded)
    t.diagnostic(`F8 Oura timeouts: ${notifications.length} notifications, deliveries [${formatOutcomes(deliveries)}]; ` +
      `Oura hung for ${recoveredAt - hangStarted} ms: requests timed out ${timeoutsDuringHang}× and the breaker opened ${firstTimeoutAfterMs} ms into the hang (` +
      `${await metricValue(app, 'provider_requests_total', { status: 'timeout' })}× in all, requests sent before the recovery included), ` +
      `failed fast on the open breaker ${fastFailsDuringHang}× by then (${await metricValue(app, 'provider_requests_total', { status: 'circuit_open' })}× in all); receipts ${await receiptSummary(app)}, drained ${drainedAfterMs} ms after recovery; ` +
      `${figures('notifications', notified)}; ${figures('HealthKit samples', uploaded)} over ${stats.uploads} uploads ` +
      `[${formatOutcomes(stats.outcomes)}]`)
  })

  test("WHOOP's daily budget is never exceeded: a burst past it waits without spending attempts and completes when the day moves on", async (t) => {
    const member = '4560009998887'
    const userId = 'f8-whoop-user'
    const dayLimit = 12
    // The bridge's clock, moved a day ahead at the end instead of waiting for the window.
    let aheadMs = 0
    // WHOOP's own limit is lifted: what this test watches is the bridge's side of it.
    const sim: WhoopSimulator = await startTestWhoopSimulator(t, { perMinute: 100_000, perDay: 1_000_000 })
    sim.addUser({ userId: member, days: 40 })
    const harness = await buildTestApp(t, 'postgres', whoopEnv(sim, { WHOOP_REQUESTS_PER_DAY: String(dayLimit), WHOOP_REQUESTS_PER_MINUTE: '100' }), {
      providerTuning: FAST_TUNING, now: () => Date.now() + aheadMs
    })
    if (harness === undefined) return
    const { app } = harness
    const base = await app.listen()
    await connectProvider(harness, 'whoop', userId, member)
    const { load, checker: uploads } = await backgroundLoad(t, harness, base, 'f8-budget')

    const workouts = sim.workouts(member).filter((workout) => workout.score_state === 'SCORED' && workout.score?.average_heart_rate != null)
    const burst = workouts.slice(0, Math.floor(dayLimit * 1.5))
    assert.equal(burst.length, Math.floor(dayLimit * 1.5), `enough scored workouts: ${workouts.length}`)
    const checker = new DeliveryChecker('whoop', { metrics: ['heart_rate'] })
    const deliveries: Record<string, number> = {}
    const route = 'GET /developer/v2/activity/workout/{id}'
    const fetchedBefore = sim.requestCount(route)
    // Requests the receipt pipeline makes through its budget: every WHOOP API call except the connect-time profile
    // lookup, which the OAuth callback makes on its own (counted by WHOOP, not by the bridge's budget).
    const profileRoute = 'GET /developer/v2/user/profile/basic'
    const budgeted = (): number =>
      sim.requestCount() - sim.requestCount('GET /oauth/oauth2/auth') - sim.requestCount('POST /oauth/oauth2/token') - sim.requestCount(profileRoute)
    const budgetedBefore = budgeted()

    await notificationStream(burst, 10, async (workout) => {
      const delivery = await sim.sendWebhook({ type: 'workout.updated', id: workout.id, userId: member }, { to: `${base}/webhooks/whoop` })
      return delivery.status
    }, (workout) => ({ recordId: workout.id, value: workout.score!.average_heart_rate }), userId, checker, deliveries)

    const done = "SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'done'"
    await waitFor('the day budget to be spent', async () => {
      const { rows } = await app.db.query<{ n: number }>(done)
      return (rows[0]?.n ?? 0) >= dayLimit - budgetedBefore
    }, 20_000)
    // Time for the workers to try for more: none may reach WHOOP within the day.
    await sleep(1500)
    const budgetedInDay = budgeted()
    assert.ok(budgetedInDay <= dayLimit, `budgeted WHOOP API requests within the day: ${budgetedInDay} ≤ ${dayLimit}`)
    assert.equal(budgetedInDay, dayLimit, 'the budget was used to the last request, not beyond')
    const { rows: waiting } = await app.db.query<{ status: string, attempts: number, last_error_code: string | null, n: number }>(
      `SELECT status, attempts::int AS attempts, last_error_code, count(*)::int AS n FROM webhook_receipts
       WHERE status = 'pending' GROUP BY 1, 2, 3`)
    const fetchedInDay = sim.requestCount(route) - fetchedBefore
    assert.deepEqual(waiting.map((row) => [row.status, row.attempts, row.last_error_code, row.n]),
      [['pending', 0, 'BB_PROVIDER_RATE_LIMITED', burst.length - fetchedInDay]], 'held back without spending an attempt')
    const exhausted = await metricValue(app, 'provider_requests_total', { provider: 'whoop', status: 'budget_exhausted' })
    assert.ok(exhausted > 0)

    // A day later (bridge clock; the database's next_attempt_at is moved to now, its clock does not jump). The
    // budget forgets a request between a window and a window plus one bucket (1/300 of it, 288 s) after it.
    aheadMs = 86_400_000 + 300_000
    await app.db.query("UPDATE webhook_receipts SET next_attempt_at = now() WHERE status = 'pending'")
    await drainReceipts(app.db, 30_000)
    assert.deepEqual(await receiptStatuses(app.db), { done: burst.length })
    const budgetedNextDay = budgeted() - budgetedInDay
    assert.ok(budgetedNextDay <= dayLimit, `the next day's requests stay within the budget too: ${budgetedNextDay}`)
    assert.equal(sim.requestCount(route) - fetchedBefore, burst.length, 'one fetch per notification, no retries wasted')

    const stats = await load.stop(30_000)
    const notified = await checker.reconcile(app.db)
    assertNothingLost(notified, { requireAcknowledged: burst.length })
    const uploaded = await uploads.reconcile(app.db)
    assertNothingLost(uploaded)
    t.diagnostic(`F8 WHOOP day budget ${dayLimit}: burst of ${burst.length} notifications [${formatOutcomes(deliveries)}]; ` +
      `budgeted WHOOP API requests on day 1=${budgetedInDay} (workout fetches ${fetchedInDay}), day 2=${budgetedNextDay}, ` +
      `connect-time profile lookups outside the budget=${sim.requestCount(profileRoute)}; ` +
      `budget_exhausted refusals=${exhausted}; receipts ${await receiptSummary(app)}; ` +
      `${figures('notifications', notified)}; ${figures('HealthKit samples', uploaded)} over ${stats.uploads} uploads [${formatOutcomes(stats.outcomes)}]`)
  })
})
