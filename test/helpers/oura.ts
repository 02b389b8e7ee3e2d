import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ProviderTuning } from '../../src/pipeline/provider-work.ts'
import { startOuraSimulator, type OuraSimulator, type OuraSimulatorOptions } from '../../src/simulators/oura/index.ts'
import type { Queryable } from '../../src/storage/database.ts'
import { buildTestApp, type TestApp } from './app.ts'
import { CANARY, recordCanary } from './canaries.ts'
import type { AdapterName } from './services.ts'

export const OURA_PUBLIC_BASE_URL = 'https://bridge.example.test'
export const OURA_VERIFICATION_TOKEN = CANARY.ouraVerificationToken

/** Short timings so retries, breakers and polls fit in a test; production keeps the defaults. */
export const FAST_TUNING: ProviderTuning = {
  backoff: { baseMs: 50, factor: 2, maxMs: 400, jitterRatio: 0.1 },
  breakerThreshold: 3,
  breakerHalfOpenAfterMs: 500,
  idlePollMs: 20,
  schedulerTickMs: 100
}

export async function startTestOuraSimulator(t: TestContext, options: OuraSimulatorOptions = {}): Promise<OuraSimulator> {
  const sim = await startOuraSimulator({
    clientId: 'bridge-pipeline-client', clientSecret: CANARY.ouraClientSecret, seed: 11, onTokensIssued: recordTokenCanaries, ...options
  })
  t.after(() => sim.close())
  return sim
}

/** Every token pair a simulator mints is a canary: the bridge holds them, and must never show them. */
export function recordTokenCanaries(tokens: { access_token: string, refresh_token?: string }): void {
  recordCanary(tokens.access_token)
  if (tokens.refresh_token !== undefined) recordCanary(tokens.refresh_token)
}

export function ouraEnv(sim: OuraSimulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OURA_CLIENT_ID: sim.clientId, OURA_CLIENT_SECRET: sim.clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: OURA_VERIFICATION_TOKEN,
    OURA_API_URL: sim.baseUrl, OURA_AUTHORIZE_URL: sim.authorizeUrl, PUBLIC_BASE_URL: OURA_PUBLIC_BASE_URL,
    // Reconciliation is tested on its own; elsewhere it would add receipts the test does not expect.
    RECONCILE_INTERVAL_MINUTES: '0',
    ...extra
  }
}

export async function buildOuraApp(
  t: TestContext, adapter: AdapterName, sim: OuraSimulator, env: Record<string, string> = {}, tuning: ProviderTuning = FAST_TUNING
): Promise<TestApp | undefined> {
  return buildTestApp(t, adapter, ouraEnv(sim, env), { providerTuning: tuning })
}

/** Walks the whole connect flow (admin call, simulated consent, callback) for `userId` as Oura user `ouraUserId`. */
export async function connectOura(harness: TestApp, userId: string, ouraUserId: string): Promise<void> {
  await connectProvider(harness, 'oura', userId, ouraUserId)
}

/** The connect flow of either provider; both simulators log in the user named by `sim_user_id`. */
export async function connectProvider(harness: TestApp, provider: 'oura' | 'whoop', userId: string, providerUserId: string): Promise<void> {
  const start = await harness.app.http.inject({
    method: 'POST', url: `/v1/users/${encodeURIComponent(userId)}/connections/${provider}`, headers: harness.adminHeaders
  })
  assert.equal(start.statusCode, 200)
  const authorizeUrl = new URL(start.json<{ authorize_url: string }>().authorize_url)
  authorizeUrl.searchParams.set('sim_user_id', providerUserId)
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  assert.equal(redirect.status, 302)
  const location = new URL(redirect.headers.get('location')!)
  const callback = await harness.app.http.inject({ method: 'GET', url: `${location.pathname}${location.search}` })
  assert.equal(callback.statusCode, 200, callback.body)
}

/** Waits until no receipt is pending (or fails after `timeoutMs`). */
export async function drainReceipts(db: Queryable, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_receipts WHERE status = 'pending'")
    if (rows[0]?.n === 0) return
    if (Date.now() > deadline) {
      const { rows: left } = await db.query('SELECT id, event_type, data_type, attempts, last_error_code FROM webhook_receipts WHERE status = \'pending\'')
      assert.fail(`receipts still pending after ${timeoutMs} ms: ${JSON.stringify(left)}`)
    }
    await sleep(25)
  }
}

export async function receiptStatuses(db: Queryable): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string, n: number }>('SELECT status, count(*)::int AS n FROM webhook_receipts GROUP BY status')
  return Object.fromEntries(rows.map((row) => [row.status, row.n]))
}
