import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { resolveSecrets } from '../../src/config/dev-keys.ts'
import type { OuraDataType } from '../../src/providers/oura/documents.ts'
import type { OuraNotificationInput, OuraSimulator } from '../../src/simulators/oura/index.ts'
import { loadConnection } from '../../src/storage/connections-repository.ts'
import { listDeadReceipts, replayDeadReceipts } from '../../src/storage/receipts-repository.ts'
import { CANARY } from '../helpers/canaries.ts'
import {
  OURA_USER_ID, USER_ID, deliver, finishedReceipt, metricValue, receiptsFor, recordEvents, startReceiptBridge, valuesByMetric, waitFor
} from '../helpers/oura-receipts.ts'
import { drainReceipts, receiptStatuses } from '../helpers/oura.ts'
import { ADAPTERS } from '../helpers/services.ts'
import { runCliCaptured } from '../helpers/cli.ts'

const createOf = (sim: OuraSimulator, dataType: OuraDataType, index = 0): OuraNotificationInput => {
  const notification = sim.notificationsFor(OURA_USER_ID, 'create', [dataType])[index]
  assert.ok(notification !== undefined, `the simulated user has a ${dataType} document #${index}`)
  return notification
}


for (const adapter of ADAPTERS) {
  describe(`Oura receipts: provider failures (${adapter})`, () => {
    test('a 429 reschedules the receipt at Retry-After, not at the backoff; it completes once the limit is gone', async (t) => {
      // The bridge's clock runs ahead on demand, to end the budget's hold-off without waiting 30 s.
      let aheadMs = 0
      const bridge = await startReceiptBridge(t, adapter, { now: () => Date.now() + aheadMs })
      if (bridge === undefined) return
      const { sim, app } = bridge
      sim.faults.tooManyRequests({ ratio: 1, retryAfterSeconds: 30 })
      const notification = createOf(sim, 'daily_readiness')
      await deliver(bridge, notification)
      const row = await waitFor('the rate-limited attempt to be recorded', async () => {
        const { rows } = await app.db.query<{
          status: string, attempts: number, last_error_code: string | null, after_intake_s: number, after_now_s: number
        }>(
          `SELECT status, attempts::int AS attempts, last_error_code,
                  extract(epoch FROM next_attempt_at - received_at)::float8 AS after_intake_s,
                  extract(epoch FROM next_attempt_at - now())::float8 AS after_now_s
           FROM webhook_receipts WHERE object_id = $1`, [notification.object_id])
        return rows[0]?.last_error_code == null ? undefined : rows[0]
      })
      assert.deepEqual([row.status, Number(row.attempts), row.last_error_code], ['pending', 1, 'BB_PROVIDER_RATE_LIMITED'])
      // The attempt ran after intake and before this query, so next_attempt_at = attempt + 30 s lies in
      // [intake + 30 s, now + 30 s]. FAST_TUNING's backoff alone would have retried after 50 ms.
      assert.ok(Number(row.after_intake_s) >= 30, `next attempt ${row.after_intake_s} s after intake, expected at least Retry-After`)
      assert.ok(Number(row.after_now_s) <= 30 && Number(row.after_now_s) > 20, `next attempt in ${row.after_now_s} s, expected ≈ 30 s`)
      assert.equal(sim.faults.counts().tooManyRequests, 1, 'no attempt before Retry-After')

      sim.faults.tooManyRequests(false)
      // Retry-After also holds the whole request budget: an early retry waits without asking Oura again. Data
      // requests only: the app's own webhook-subscription calls may run meanwhile (seen once on a slow host).
      const dataRequests = (): number => Object.entries(sim.requestCounts())
        .filter(([route]) => route.startsWith('GET /v2/usercollection/')).reduce((sum, [, count]) => sum + count, 0)
      const requestsBefore = dataRequests()
      await app.db.query('UPDATE webhook_receipts SET next_attempt_at = now(), last_error_code = NULL WHERE object_id = $1', [notification.object_id])
      const held = await waitFor('the held-off retry to be rescheduled', async () => {
        const { rows } = await app.db.query<{ status: string, attempts: number, last_error_code: string | null }>(
          'SELECT status, attempts::int AS attempts, last_error_code FROM webhook_receipts WHERE object_id = $1', [notification.object_id])
        return rows[0]?.last_error_code == null ? undefined : rows[0]
      })
      assert.deepEqual([held.status, Number(held.attempts), held.last_error_code], ['pending', 1, 'BB_PROVIDER_RATE_LIMITED'], 'the attempt was given back')
      assert.equal(dataRequests(), requestsBefore, 'no data request reached Oura during the hold-off')

      aheadMs = 31_000
      await app.db.query('UPDATE webhook_receipts SET next_attempt_at = now() WHERE object_id = $1', [notification.object_id])
      const done = await finishedReceipt(app.db, notification.object_id)
      assert.deepEqual([done.status, done.attempts], ['done', 2])
      const readiness = sim.document('daily_readiness', notification.object_id)!
      assert.equal(valuesByMetric(await recordEvents(app.db, notification.object_id)).recovery_score, readiness.score)
    })

    test('sustained 5xx opens the breaker; every notification of the outage is stored once it closes', async (t) => {
      const bridge = await startReceiptBridge(t, adapter, { env: { MAX_RECEIPT_ATTEMPTS: '100' } })
      if (bridge === undefined) return
      const { sim, app } = bridge
      sim.faults.serverErrors({ ratio: 1, status: 503 })
      const notifications = [0, 1, 2, 3].map((index) => createOf(sim, 'daily_readiness', index))
        .concat([0, 1].map((index) => createOf(sim, 'daily_sleep', index)))
      for (const notification of notifications) await deliver(bridge, notification)

      await waitFor('the breaker to open', async () => await metricValue(app, 'provider_requests_total', { status: 'circuit_open' }) > 0)
      // While it is open, receipts keep failing fast without reaching Oura (one trial request per half-open period).
      const reachedBefore = sim.faults.counts().serverErrors
      const fastBefore = await metricValue(app, 'provider_requests_total', { status: 'circuit_open' })
      await waitFor('more fast failures', async () => await metricValue(app, 'provider_requests_total', { status: 'circuit_open' }) >= fastBefore + 10)
      const fastFailures = await metricValue(app, 'provider_requests_total', { status: 'circuit_open' }) - fastBefore
      const reached = sim.faults.counts().serverErrors - reachedBefore
      assert.ok(reached < fastFailures, `an open breaker keeps requests away from Oura: ${reached} reached it, ${fastFailures} failed fast`)
      assert.equal((await receiptStatuses(app.db)).pending, notifications.length, 'nothing is given up during the outage')
      // A fast failure never reached Oura, so it does not use up an attempt (an outage must not dead-letter everything).
      const { rows: counted } = await app.db.query<{ n: number }>('SELECT sum(attempts)::int AS n FROM webhook_receipts')
      const reachedTotal = sim.faults.counts().serverErrors
      assert.ok((counted[0]?.n ?? 0) <= reachedTotal + notifications.length,
        `attempts ${counted[0]?.n} ≤ requests that reached Oura ${reachedTotal} + receipts in flight`)

      sim.faults.serverErrors(false)
      await drainReceipts(app.db)
      assert.deepEqual(await receiptStatuses(app.db), { done: notifications.length })
      for (const notification of notifications) {
        const metric = notification.data_type === 'daily_sleep' ? 'sleep_score' : 'recovery_score'
        const document = sim.document(notification.data_type as 'daily_sleep' | 'daily_readiness', notification.object_id)!
        assert.equal(valuesByMetric(await recordEvents(app.db, notification.object_id))[metric], document.score, `${notification.data_type} ${notification.object_id}`)
      }
    })

    test('a receipt failing MAX_RECEIPT_ATTEMPTS times is dead-lettered; receipts list shows it and replay puts it back to work', async (t) => {
      const bridge = await startReceiptBridge(t, adapter, { env: { MAX_RECEIPT_ATTEMPTS: '2' } })
      if (bridge === undefined) return
      const { sim, app } = bridge
      sim.faults.serverErrors({ ratio: 1, status: 502 })
      const notification = createOf(sim, 'daily_readiness')
      await deliver(bridge, notification)
      const dead = await finishedReceipt(app.db, notification.object_id)
      assert.deepEqual([dead.status, dead.attempts, dead.last_error_code], ['dead', 2, 'BB_PROVIDER_UNAVAILABLE'])
      assert.equal(sim.faults.counts().serverErrors, 2, 'exactly MAX_RECEIPT_ATTEMPTS attempts')
      assert.equal(await metricValue(app, 'dlq_messages_total', { reason: 'receipt_attempts_exhausted' }), 1)
      sim.faults.serverErrors(false)

      if (adapter === 'postgres') {
        // The operator's CLI, a separate process in production, on the bridge's database.
        const env = { DATABASE_URL: app.config.databaseUrl!, TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey, LOG_PSEUDONYM_KEY: CANARY.pseudonymKey }
        const listed = await runCliCaptured(['receipts', 'list'], env)
        assert.equal(listed.code, 0, listed.stderr)
        const lines = listed.stdout.trim().split('\n')
        assert.equal(lines.length, 1, listed.stdout)
        assert.match(lines[0]!, new RegExp(`^\\s*${dead.id}\\s.*oura\\s+create/daily_readiness\\s+attempts=2\\s+error=BB_PROVIDER_UNAVAILABLE$`))
        const replayed = await runCliCaptured(['receipts', 'replay', '--all'], env)
        assert.deepEqual([replayed.code, replayed.stdout], [0, '1 receipt put back to work\n'], replayed.stderr)
        const { rows: audit } = await app.db.query<{ principal: string }>("SELECT principal FROM audit_log WHERE action = 'receipts.replay'")
        assert.deepEqual(audit.map((row) => row.principal), ['cli'], 'the replay is audited')
      } else {
        // memory:// cannot be shared with a CLI process: the same repository calls the CLI makes.
        const listed = await listDeadReceipts(app.db, 10)
        assert.deepEqual(listed.map((receipt) => [receipt.id, receipt.lastErrorCode, receipt.attempts]), [[dead.id, 'BB_PROVIDER_UNAVAILABLE', 2]])
        assert.equal(await replayDeadReceipts(app.db, undefined), 1)
      }
      const replayed = await finishedReceipt(app.db, notification.object_id)
      assert.deepEqual([replayed.status, replayed.attempts, replayed.last_error_code], ['done', 1, null])
      const readiness = sim.document('daily_readiness', notification.object_id)!
      assert.equal(valuesByMetric(await recordEvents(app.db, notification.object_id)).recovery_score, readiness.score)
      if (adapter === 'postgres') {
        const env = { DATABASE_URL: app.config.databaseUrl!, TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey, LOG_PSEUDONYM_KEY: CANARY.pseudonymKey }
        assert.equal((await runCliCaptured(['receipts', 'list'], env)).stdout, 'no dead-lettered receipts\n')
      } else {
        assert.deepEqual(await listDeadReceipts(app.db, 10), [])
      }
    })
  })

  describe(`Oura receipts: tokens (${adapter})`, () => {
    test('an access token Oura refuses costs exactly one refresh, shared by concurrent receipts, and they complete', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      assert.equal(sim.tokenStats(OURA_USER_ID).refreshCalls, 0)
      sim.expireAccessTokens()
      const notifications = [createOf(sim, 'sleep'), createOf(sim, 'daily_readiness'), createOf(sim, 'daily_activity'), createOf(sim, 'vo2_max')]
      for (const notification of notifications) await deliver(bridge, notification)
      await drainReceipts(app.db)
      assert.deepEqual(await receiptStatuses(app.db), { done: notifications.length })
      const stats = sim.tokenStats(OURA_USER_ID)
      assert.deepEqual([stats.refreshCalls, stats.refreshes, stats.refreshReuses], [1, 1, 0], 'one refresh for all of them')
      assert.ok(sim.statusCounts()['401']! >= 1, 'Oura did refuse the old token')
      for (const notification of notifications) {
        assert.ok((await recordEvents(app.db, notification.object_id)).length > 0, `${notification.data_type} stored`)
      }
      const { rows } = await app.db.query<{ status: string, token_version: number }>(
        "SELECT status, token_version::int AS token_version FROM connections WHERE user_id = $1 AND provider = 'oura'", [USER_ID])
      assert.deepEqual(rows.map((row) => [row.status, Number(row.token_version)]), [['active', 2]])
      assert.equal(await metricValue(app, 'token_refresh_total', { outcome: 'success' }), 1)
    })

    test('a refresh token Oura no longer accepts ends the connection as reauth_required, audited, without a retry loop', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      // Someone else spent the rotating refresh token (a copy of the database, a crashed refresher …).
      const cipher = createTokenCipher(resolveSecrets(app.config).tokenEncryptionKeys)
      const connection = await loadConnection(app.db, cipher, USER_ID, 'oura')
      assert.ok(connection?.refreshToken != null)
      const spent = await fetch(`${sim.baseUrl}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: connection.refreshToken, client_id: sim.clientId, client_secret: sim.clientSecret })
      })
      assert.equal(spent.status, 200)
      await spent.body?.cancel()
      sim.expireAccessTokens()

      // Two receipts meet the refused access token at about the same time.
      const notification = createOf(sim, 'daily_readiness')
      const sibling = createOf(sim, 'daily_sleep')
      await Promise.all([deliver(bridge, notification), deliver(bridge, sibling)])
      const skipped = await finishedReceipt(app.db, notification.object_id)
      const siblingReceipt = await finishedReceipt(app.db, sibling.object_id)
      const ends = [skipped, siblingReceipt].map((receipt) => [receipt.status, receipt.last_error_code, receipt.attempts])
      assert.ok(ends.some(([, code]) => code === 'BB_REAUTH_REQUIRED'), JSON.stringify(ends))
      // The one that read the connection after it was marked finds none (BB_NO_CONNECTION); neither is retried.
      for (const [status, code, attempts] of ends) {
        assert.equal(status, 'skipped')
        assert.ok(code === 'BB_REAUTH_REQUIRED' || code === 'BB_NO_CONNECTION', String(code))
        assert.equal(attempts, 1)
      }
      const stats = sim.tokenStats(OURA_USER_ID)
      assert.deepEqual([stats.refreshCalls, stats.refreshReuses], [2, 1], 'the bridge presented the spent token once')
      const { rows: connections } = await app.db.query<{ status: string }>(
        "SELECT status FROM connections WHERE user_id = $1 AND provider = 'oura'", [USER_ID])
      assert.deepEqual(connections.map((row) => row.status), ['reauth_required'])
      const { rows: audit } = await app.db.query<{ principal: string, detail: { provider?: string } }>(
        "SELECT principal, detail FROM audit_log WHERE action = 'connection.reauth_required'")
      assert.deepEqual(audit.map((row) => [row.principal, row.detail.provider]), [['token-manager', 'oura']])

      // Later notifications of the user find no usable connection: skipped at once, no token call, no data call.
      const dataCallsBefore = sim.requestCount('GET /v2/usercollection/daily_activity/{document_id}')
      const later = createOf(sim, 'daily_activity')
      await deliver(bridge, later)
      const laterReceipt = await finishedReceipt(app.db, later.object_id)
      assert.deepEqual([laterReceipt.status, laterReceipt.last_error_code, laterReceipt.attempts], ['skipped', 'BB_NO_CONNECTION', 1])
      assert.equal(sim.tokenStats(OURA_USER_ID).refreshCalls, 2, 'no further refresh attempts')
      assert.equal(sim.requestCount('GET /v2/usercollection/daily_activity/{document_id}'), dataCallsBefore)
      assert.deepEqual((await receiptsFor(app.db)).map((row) => row.attempts), [1, 1, 1], 'nothing was retried')
    })
  })
}
