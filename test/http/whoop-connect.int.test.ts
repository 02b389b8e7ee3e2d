import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { loadConfig } from '../../src/config/load.ts'
import { startWhoopSimulator } from '../../src/simulators/whoop/index.ts'
import { loadConnection } from '../../src/storage/connections-repository.ts'
import { BASE_TEST_ENV, buildTestApp } from '../helpers/app.ts'
import { ADAPTERS } from '../helpers/services.ts'

const PUBLIC_BASE_URL = 'https://bridge.example.test'
const WHOOP_USER = '4560001234567'

for (const adapter of ADAPTERS) {
  describe(`WHOOP connections (${adapter})`, () => {
    test('connect through the authorization code flow (offline scope), queue the backfill, list, delete and revoke', async (t) => {
      const sim = await startWhoopSimulator({ seed: 5 })
      t.after(() => sim.close())
      sim.addUser({ userId: WHOOP_USER, days: 2 })
      const harness = await buildTestApp(t, adapter, {
        WHOOP_CLIENT_ID: sim.clientId, WHOOP_CLIENT_SECRET: sim.clientSecret, WHOOP_API_URL: sim.baseUrl,
        PUBLIC_BASE_URL, BACKFILL_DAYS: '14', RECONCILE_INTERVAL_MINUTES: '0'
      })
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const start = await app.http.inject({ method: 'POST', url: '/v1/users/whoop-user/connections/whoop', headers: adminHeaders })
      assert.equal(start.statusCode, 200)
      const authorizeUrl = new URL(start.json<{ authorize_url: string }>().authorize_url)
      assert.equal(authorizeUrl.searchParams.get('redirect_uri'), `${PUBLIC_BASE_URL}/oauth/whoop/callback`)
      assert.ok(authorizeUrl.searchParams.get('scope')?.split(' ').includes('offline'))
      authorizeUrl.searchParams.set('sim_user_id', WHOOP_USER)
      const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
      const location = new URL(redirect.headers.get('location')!)
      const callback = await app.http.inject({ method: 'GET', url: `${location.pathname}${location.search}` })
      assert.equal(callback.statusCode, 200, callback.body)
      assert.match(callback.body, /WHOOP account is connected/)

      const cipher = createTokenCipher(loadConfig({ ...BASE_TEST_ENV }).tokenEncryptionKeys!)
      const stored = await loadConnection(app.db, cipher, 'whoop-user', 'whoop')
      assert.equal(stored?.providerUserId, WHOOP_USER, 'the profile user_id routes webhooks')
      assert.ok(stored.refreshToken !== null)
      const { rows: backfill } = await app.db.query<{ data_type: string }>(
        "SELECT data_type FROM webhook_receipts WHERE provider = 'whoop' AND event_type = 'backfill' ORDER BY data_type")
      assert.deepEqual(backfill.map((row) => row.data_type), ['cycle', 'recovery', 'sleep', 'workout'])

      const list = await app.http.inject({ method: 'GET', url: '/v1/users/whoop-user/connections', headers: adminHeaders })
      assert.deepEqual(list.json<{ data: Array<{ provider: string, status: string }> }>().data.map((c) => [c.provider, c.status]), [['whoop', 'active']])
      const deleted = await app.http.inject({ method: 'DELETE', url: '/v1/users/whoop-user/connections/whoop', headers: adminHeaders })
      assert.equal(deleted.statusCode, 204)
      assert.equal(sim.requestCount('DELETE /developer/v2/user/access'), 1, 'revoked at WHOOP')
      const profile = await fetch(`${sim.baseUrl}/developer/v2/user/profile/basic`, { headers: { authorization: `Bearer ${stored.accessToken}` } })
      assert.equal(profile.status, 401, 'the old token no longer works')
      // Oura is not configured here: its routes do not exist.
      assert.equal((await app.http.inject({ method: 'POST', url: '/v1/users/whoop-user/connections/oura', headers: adminHeaders })).statusCode, 404)
    })
  })
}
