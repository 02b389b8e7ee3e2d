import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { ProviderTuning } from '../../src/pipeline/provider-work.ts'
import { startWhoopSimulator, type WhoopSimulator, type WhoopSimulatorOptions } from '../../src/simulators/whoop/server.ts'
import type { WhoopEventInput } from '../../src/simulators/whoop/webhooks.ts'
import { buildTestApp, type TestApp } from './app.ts'
import { CANARY } from './canaries.ts'
import { FAST_TUNING, OURA_PUBLIC_BASE_URL, connectProvider, recordTokenCanaries } from './oura.ts'
import type { AdapterName } from './services.ts'

/** Shared set-up of the WHOOP pipeline tests: a simulator with one member, the bridge listening on a real port. */

export const WHOOP_USER_ID = 'whoop-receipts-user'
/** A WHOOP user id past 2^31, as real ones are. */
export const WHOOP_MEMBER_ID = '4560001234567'

export async function startTestWhoopSimulator(t: TestContext, options: WhoopSimulatorOptions = {}): Promise<WhoopSimulator> {
  const sim = await startWhoopSimulator({
    clientId: 'bridge-whoop-client', clientSecret: CANARY.whoopClientSecret, seed: 5, onTokensIssued: recordTokenCanaries, ...options
  })
  t.after(() => sim.close())
  return sim
}

export function whoopEnv(sim: WhoopSimulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    WHOOP_CLIENT_ID: sim.clientId, WHOOP_CLIENT_SECRET: sim.clientSecret, WHOOP_API_URL: sim.baseUrl,
    PUBLIC_BASE_URL: OURA_PUBLIC_BASE_URL, RECONCILE_INTERVAL_MINUTES: '0', BACKFILL_DAYS: '0',
    ...extra
  }
}

export interface WhoopBridge {
  sim: WhoopSimulator
  harness: TestApp
  webhookUrl: string
}

export interface WhoopBridgeOptions {
  env?: Record<string, string>
  tuning?: ProviderTuning
  sim?: WhoopSimulatorOptions
  days?: number
}

/** The simulator with WHOOP_MEMBER_ID (a few days of data) connected as WHOOP_USER_ID; no backfill unless asked. */
export async function startWhoopBridge(t: TestContext, adapter: AdapterName, options: WhoopBridgeOptions = {}): Promise<WhoopBridge | undefined> {
  const sim = await startTestWhoopSimulator(t, options.sim)
  sim.addUser({ userId: WHOOP_MEMBER_ID, days: options.days ?? 4 })
  const harness = await buildTestApp(t, adapter, whoopEnv(sim, options.env), { providerTuning: options.tuning ?? FAST_TUNING })
  if (harness === undefined) return undefined
  const webhookUrl = `${await harness.app.listen()}/webhooks/whoop`
  await connectProvider(harness, 'whoop', WHOOP_USER_ID, WHOOP_MEMBER_ID)
  return { sim, harness, webhookUrl }
}

/** Sends a signed WHOOP webhook for the member and expects it accepted. */
export async function deliverWhoop(bridge: WhoopBridge, event: Omit<WhoopEventInput, 'userId'>): Promise<void> {
  const delivery = await bridge.sim.sendWebhook({ ...event, userId: WHOOP_MEMBER_ID }, { to: bridge.webhookUrl })
  assert.equal(delivery.status, 200, delivery.body)
  assert.deepEqual(JSON.parse(delivery.body), { status: 'accepted' })
}
