import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../../src/config/load.ts'
import { createSubscription, ouraCallbackUrl } from '../../src/providers/oura/subscriptions.ts'
import { BASE_TEST_ENV } from '../helpers/app.ts'
import { OURA_VERIFICATION_TOKEN, buildOuraApp, ouraEnv, startTestOuraSimulator } from '../helpers/oura.ts'
import { ADAPTERS } from '../helpers/services.ts'
import { receiver } from '../simulators/oura/helpers.ts'

const DAY_MS = 86_400_000

for (const adapter of ADAPTERS) {
  describe(`scheduled Oura subscription renewal (${adapter})`, () => {
    test('renews our subscriptions that expire within 7 days, and only those', async (t) => {
      const sim = await startTestOuraSimulator(t)
      // Stands in for the bridge at PUBLIC_BASE_URL during Oura's creation handshake.
      const callback = await receiver(t, OURA_VERIFICATION_TOKEN)
      const publicBaseUrl = new URL(callback.url).origin
      const oura = loadConfig({ ...BASE_TEST_ENV, ...ouraEnv(sim, { PUBLIC_BASE_URL: publicBaseUrl }) }).oura!
      const callbackUrl = ouraCallbackUrl(publicBaseUrl)
      const expiring = await createSubscription(oura, { eventType: 'update', dataType: 'sleep', callbackUrl }, { timeoutMs: 5000 })
      const current = await createSubscription(oura, { eventType: 'create', dataType: 'sleep', callbackUrl }, { timeoutMs: 5000 })
      const expiresSoonMs = Date.now() + 2 * DAY_MS
      sim.setSubscriptionExpiration(expiring.id, expiresSoonMs)
      const currentExpiry = sim.subscriptions().find((s) => s.id === current.id)!.expiration_time

      const harness = await buildOuraApp(t, adapter, sim, { PUBLIC_BASE_URL: publicBaseUrl })
      if (harness === undefined) return
      // The job is due at start-up on a fresh database; the scheduler checks every 100 ms in tests. The bound only
      // stops a broken scheduler: on a loaded 2-core machine PGlite's first queries alone can take seconds.
      const deadline = Date.now() + 30_000
      while (Date.parse(sim.subscriptions().find((s) => s.id === expiring.id)!.expiration_time) <= expiresSoonMs) {
        assert.ok(Date.now() < deadline, 'the expiring subscription was renewed')
        await sleep(25)
      }
      assert.equal(sim.subscriptions().find((s) => s.id === current.id)!.expiration_time, currentExpiry, 'the current one was left alone')
      assert.equal(sim.requestCount('PUT /v2/webhook/subscription/renew/{id}'), 1)
    })
  })
}
