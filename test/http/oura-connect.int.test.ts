import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createStateSigner } from '../../src/auth/oauth-state.ts'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { loadConfig } from '../../src/config/load.ts'
import { startOuraSimulator, type OuraSimulator } from '../../src/simulators/oura/index.ts'
import { loadConnection } from '../../src/storage/connections-repository.ts'
import { BASE_TEST_ENV, buildTestApp, type TestApp } from '../helpers/app.ts'
import { CANARY } from '../helpers/canaries.ts'
import { ADAPTERS } from '../helpers/services.ts'

const PUBLIC_BASE_URL = 'https://bridge.example.test'
const CALLBACK_PATH = '/oauth/oura/callback'

async function withSimulator(t: { after: (fn: () => Promise<void>) => void }): Promise<OuraSimulator> {
  const sim = await startOuraSimulator({ clientId: 'bridge-test-client', clientSecret: 'bridge-test-secret', seed: 7 })
  t.after(() => sim.close())
  sim.addUser({ days: 2, userId: 'oura-user-1' })
  return sim
}

function ouraEnv(sim: OuraSimulator): Record<string, string> {
  return {
    OURA_CLIENT_ID: sim.clientId, OURA_CLIENT_SECRET: sim.clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt-connect-test',
    OURA_API_URL: sim.baseUrl, OURA_AUTHORIZE_URL: sim.authorizeUrl, PUBLIC_BASE_URL
  }
}

/** Starts a connection and walks the simulated consent screen; returns the callback path the provider redirects to. */
async function consent(harness: TestApp, userId: string): Promise<string> {
  const start = await harness.app.http.inject({ method: 'POST', url: `/v1/users/${encodeURIComponent(userId)}/connections/oura`, headers: harness.adminHeaders })
  assert.equal(start.statusCode, 200)
  const authorizeUrl = new URL(start.json<{ authorize_url: string }>().authorize_url)
  assert.equal(authorizeUrl.searchParams.get('redirect_uri'), `${PUBLIC_BASE_URL}${CALLBACK_PATH}`)
  assert.equal(authorizeUrl.searchParams.get('response_type'), 'code')
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  assert.equal(redirect.status, 302)
  const location = new URL(redirect.headers.get('location')!)
  assert.equal(`${location.origin}${location.pathname}`, `${PUBLIC_BASE_URL}${CALLBACK_PATH}`)
  return `${location.pathname}${location.search}`
}

for (const adapter of ADAPTERS) {
  describe(`Oura connections (${adapter})`, () => {
    test('connects through the authorization code flow and stores the tokens encrypted', async (t) => {
      const sim = await withSimulator(t)
      const harness = await buildTestApp(t, adapter, ouraEnv(sim))
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const callback = await consent(harness, CANARY.userId)
      const done = await app.http.inject({ method: 'GET', url: callback })
      assert.equal(done.statusCode, 200)
      assert.match(done.body, /connected/i)

      const list = await app.http.inject({ method: 'GET', url: `/v1/users/${encodeURIComponent(CANARY.userId)}/connections`, headers: adminHeaders })
      const [connection] = list.json<{ data: Array<{ provider: string, status: string, scopes: string[], access_expires_at: string }> }>().data
      assert.equal(connection?.provider, 'oura')
      assert.equal(connection.status, 'active')
      assert.ok(connection.scopes.includes('daily'))
      assert.ok(Number.isFinite(Date.parse(connection.access_expires_at)))
      assert.doesNotMatch(list.body, /token/i, 'tokens never leave the bridge')

      const config = loadConfig({ ...BASE_TEST_ENV })
      const stored = await loadConnection(app.db, createTokenCipher(config.tokenEncryptionKeys!), CANARY.userId, 'oura')
      assert.equal(stored?.providerUserId, 'oura-user-1', 'personal_info.id is kept for webhook routing')
      const info = await fetch(`${sim.baseUrl}/v2/usercollection/personal_info`, { headers: { authorization: `Bearer ${stored.accessToken}` } })
      assert.equal(info.status, 200, 'the stored access token works at Oura')
      const { rows } = await app.db.query<{ action: string }>("SELECT action FROM audit_log WHERE action LIKE 'connection%' ORDER BY id")
      assert.deepEqual(rows.map((row) => row.action), ['connection.start', 'connection.create', 'connections.read'])

      const deleted = await app.http.inject({ method: 'DELETE', url: `/v1/users/${encodeURIComponent(CANARY.userId)}/connections/oura`, headers: adminHeaders })
      assert.equal(deleted.statusCode, 204)
      assert.equal(sim.requestCount('POST /oauth/revoke'), 1, 'revoked at Oura')
      assert.equal((await app.http.inject({ method: 'DELETE', url: `/v1/users/${encodeURIComponent(CANARY.userId)}/connections/oura`, headers: adminHeaders })).statusCode, 404)
    })

    test('refuses a replayed, forged, expired or foreign state, and a denied consent', async (t) => {
      const sim = await withSimulator(t)
      const harness = await buildTestApp(t, adapter, ouraEnv(sim))
      if (harness === undefined) return
      const { app } = harness
      const callback = await consent(harness, 'state-user')
      assert.equal((await app.http.inject({ method: 'GET', url: callback })).statusCode, 200)
      const replay = await app.http.inject({ method: 'GET', url: callback })
      assert.equal(replay.statusCode, 400)
      assert.equal(replay.json<{ error: { code: string } }>().error.code, 'BB_OAUTH_STATE_INVALID')

      const fresh = new URL(await consent(harness, 'state-user'), PUBLIC_BASE_URL)
      const state = fresh.searchParams.get('state')!
      const [body, signature] = state.split('.') as [string, string]
      const otherUser = Buffer.from(JSON.stringify(['attacker', 'oura', 'nonce', Date.now() + 60_000])).toString('base64url')
      const key = loadConfig({ ...BASE_TEST_ENV }).tokenEncryptionKeys![0]!.key
      const expired = createStateSigner(key).issue('state-user', 'oura', Date.now() - 11 * 60_000).state
      const forgedCases: Array<[string, string]> = [
        ['altered payload', `${otherUser}.${signature}`],
        ['altered signature', `${body}.${signature.slice(0, -2)}AA`],
        ['unsigned', body],
        ['expired', expired],
        ['signed with another key', createStateSigner(Buffer.alloc(32, 7)).issue('state-user', 'oura', Date.now()).state]
      ]
      for (const [name, forged] of forgedCases) {
        fresh.searchParams.set('state', forged)
        const response = await app.http.inject({ method: 'GET', url: `${fresh.pathname}${fresh.search}` })
        assert.equal(response.statusCode, 400, name)
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'BB_OAUTH_STATE_INVALID', name)
      }
      const denied = await app.http.inject({ method: 'GET', url: `${CALLBACK_PATH}?error=access_denied&state=${encodeURIComponent(state)}` })
      assert.equal(denied.statusCode, 400)
      assert.equal(denied.json<{ error: { code: string } }>().error.code, 'BB_OAUTH_DENIED')
      const { rows } = await app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM connections WHERE user_id = 'attacker'")
      assert.equal(rows[0]?.n, 0)
    })

    test('a refused authorization code stores nothing; unconfigured providers have no routes', async (t) => {
      const sim = await withSimulator(t)
      const harness = await buildTestApp(t, adapter, ouraEnv(sim))
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const callback = new URL(await consent(harness, 'code-user'), PUBLIC_BASE_URL)
      callback.searchParams.set('code', 'not-a-code')
      const refused = await app.http.inject({ method: 'GET', url: `${callback.pathname}${callback.search}` })
      assert.equal(refused.statusCode, 502)
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'BB_OAUTH_EXCHANGE_FAILED')
      assert.equal((await app.http.inject({ method: 'GET', url: '/v1/users/code-user/connections', headers: adminHeaders })).json<{ data: unknown[] }>().data.length, 0)
      assert.equal((await app.http.inject({ method: 'POST', url: '/v1/users/code-user/connections/whoop', headers: adminHeaders })).statusCode, 404)
      const device = await harness.deviceHeaders('code-user')
      assert.equal((await app.http.inject({ method: 'POST', url: '/v1/users/code-user/connections/oura', headers: { authorization: device.authorization! } })).statusCode, 403)
    })
  })
}
