import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { NOW_MS, connect, getJson, manualClock, postForm, simulator } from './helpers.ts'

const REDIRECT_URI = 'http://127.0.0.1:9/oauth/oura/callback'

describe('Oura simulator: OAuth', () => {
  test('consent redirect → code → token → personal_info of the consenting user', async (t) => {
    const sim = await simulator(t, { users: [{ days: 2, nowMs: NOW_MS }, { days: 2, nowMs: NOW_MS }] })
    const [first, second] = sim.userIds()
    sim.setConsent({ userId: second ?? '' })
    const authorize = new URL(sim.authorizeUrl)
    authorize.search = new URLSearchParams({
      response_type: 'code', client_id: sim.clientId, redirect_uri: REDIRECT_URI, state: 'st4te', scope: 'personal email daily'
    }).toString()
    const redirect = await fetch(authorize, { redirect: 'manual' })
    assert.equal(redirect.status, 302)
    const location = new URL(redirect.headers.get('location') ?? '')
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI)
    assert.equal(location.searchParams.get('state'), 'st4te')
    const code = location.searchParams.get('code')
    assert.ok(code !== null && code.length > 16)

    const exchange = await postForm<Record<string, unknown>>(`${sim.baseUrl}/oauth/token`, {
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: sim.clientId, client_secret: sim.clientSecret
    })
    assert.equal(exchange.status, 200)
    assert.deepEqual(Object.keys(exchange.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
    assert.equal(exchange.body.token_type, 'bearer')
    assert.equal(exchange.body.expires_in, 86_400)

    const info = await getJson<Record<string, unknown>>(`${sim.baseUrl}/v2/usercollection/personal_info`, String(exchange.body.access_token))
    assert.equal(info.status, 200)
    assert.equal(info.body.id, second)
    assert.notEqual(info.body.id, first)
    assert.deepEqual(Object.keys(info.body).sort(), ['age', 'biological_sex', 'email', 'height', 'id', 'weight'])
    assert.equal(typeof info.body.email, 'string')
    assert.equal(sim.tokenStats(second ?? '').codeExchanges, 1)
  })

  test('codes are single-use, expire after 10 minutes and are bound to redirect_uri and client', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now })
    const userId = sim.userIds()[0] ?? ''
    const exchange = (code: string, overrides: Record<string, string> = {}): ReturnType<typeof postForm> =>
      postForm(`${sim.baseUrl}/oauth/token`, {
        grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: sim.clientId,
        client_secret: sim.clientSecret, ...overrides
      })

    const code = sim.issueCode(userId, ['personal'], REDIRECT_URI)
    assert.equal((await exchange(code)).status, 200)
    assert.deepEqual(await exchange(code).then((a) => [a.status, a.body]), [400, { error: 'invalid_grant' }])

    const late = sim.issueCode(userId, ['personal'], REDIRECT_URI)
    clock.advance(10 * 60_000)
    assert.deepEqual(await exchange(late).then((a) => [a.status, a.body]), [400, { error: 'invalid_grant' }])

    const elsewhere = sim.issueCode(userId, ['personal'], REDIRECT_URI)
    assert.equal((await exchange(elsewhere, { redirect_uri: 'http://127.0.0.1:9/other' })).status, 400)
    const wrongClient = sim.issueCode(userId, ['personal'], REDIRECT_URI)
    assert.deepEqual(await exchange(wrongClient, { client_secret: 'nope' }).then((a) => [a.status, a.body]), [401, { error: 'invalid_client' }])
    assert.equal((await exchange('never-issued')).status, 400)
    assert.deepEqual(await exchange(code, { grant_type: 'password' }).then((a) => a.body), { error: 'unsupported_grant_type' })
  })

  test('refresh tokens rotate and are single-use; reuse is invalid_grant and is counted', async (t) => {
    const sim = await simulator(t)
    const userId = sim.userIds()[0] ?? ''
    const first = await connect(sim)
    const refresh = (token: string): ReturnType<typeof postForm<Record<string, unknown>>> =>
      postForm(`${sim.baseUrl}/oauth/token`, {
        grant_type: 'refresh_token', refresh_token: token, client_id: sim.clientId, client_secret: sim.clientSecret
      })

    const second = await refresh(first.refresh_token)
    assert.equal(second.status, 200)
    assert.notEqual(second.body.refresh_token, first.refresh_token)
    assert.notEqual(second.body.access_token, first.access_token)

    const reused = await refresh(first.refresh_token)
    assert.equal(reused.status, 400)
    assert.deepEqual(reused.body, { error: 'invalid_grant' })

    const third = await refresh(String(second.body.refresh_token))
    assert.equal(third.status, 200)
    const info = await getJson<{ id: string }>(`${sim.baseUrl}/v2/usercollection/personal_info`, String(third.body.access_token))
    assert.equal(info.body.id, userId)
    assert.deepEqual(sim.tokenStats(userId), { codesIssued: 1, codeExchanges: 1, refreshCalls: 3, refreshes: 2, refreshReuses: 1 })
  })

  test('concurrent refreshes with one token: exactly one wins', async (t) => {
    const sim = await simulator(t)
    const userId = sim.userIds()[0] ?? ''
    const { refresh_token: token } = sim.issueTokens(userId)
    const answers = await Promise.all(Array.from({ length: 10 }, () => postForm(`${sim.baseUrl}/oauth/token`, {
      grant_type: 'refresh_token', refresh_token: token, client_id: sim.clientId, client_secret: sim.clientSecret
    })))
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, ...Array<number>(9).fill(400)])
    assert.equal(sim.tokenStats(userId).refreshes, 1)
    assert.equal(sim.tokenStats(userId).refreshReuses, 9)
  })

  test('access tokens answer 401 once expires_in has passed, as do unknown and missing ones', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now, accessTokenTtlSeconds: 60 })
    const tokens = await connect(sim)
    assert.equal(tokens.expires_in, 60)
    const url = `${sim.baseUrl}/v2/usercollection/personal_info`
    assert.equal((await getJson(url, tokens.access_token)).status, 200)
    clock.advance(60_000)
    assert.equal((await getJson(url, tokens.access_token)).status, 401)
    assert.equal((await getJson(url, 'not-a-token')).status, 401)
    assert.equal((await getJson(url)).status, 401)
  })

  test('consent: withheld scopes answer 403, a denial redirects with access_denied and the state', async (t) => {
    const sim = await simulator(t)
    sim.setConsent({ withhold: ['heartrate'] })
    const tokens = await connect(sim)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/heartrate`, tokens.access_token)).status, 403)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/daily_sleep`, tokens.access_token)).status, 200)
    const noSpo2 = await connect(sim, { scope: 'personal daily' })
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/daily_spo2`, noSpo2.access_token)).status, 403)
    const noEmail = await getJson<{ email: unknown }>(`${sim.baseUrl}/v2/usercollection/personal_info`, noSpo2.access_token)
    assert.equal(noEmail.body.email, null)

    sim.setConsent({ deny: true })
    const authorize = new URL(sim.authorizeUrl)
    authorize.search = new URLSearchParams({ response_type: 'code', client_id: sim.clientId, redirect_uri: REDIRECT_URI, state: 's' }).toString()
    const location = new URL((await fetch(authorize, { redirect: 'manual' })).headers.get('location') ?? '')
    assert.equal(location.searchParams.get('error'), 'access_denied')
    assert.equal(location.searchParams.get('state'), 's')
    assert.equal(location.searchParams.get('code'), null)
  })

  test('registered redirect URIs are enforced; unknown clients are refused', async (t) => {
    const sim = await simulator(t, { redirectUris: [REDIRECT_URI] })
    const attempt = async (params: Record<string, string>): Promise<number> => {
      const url = new URL(sim.authorizeUrl)
      url.search = new URLSearchParams({ response_type: 'code', client_id: sim.clientId, redirect_uri: REDIRECT_URI, ...params }).toString()
      return (await fetch(url, { redirect: 'manual' })).status
    }
    assert.equal(await attempt({}), 302)
    assert.equal(await attempt({ redirect_uri: 'http://evil.example/cb' }), 400)
    assert.equal(await attempt({ client_id: 'someone-else' }), 400)
  })

  test('revoke ends the grant: its access and refresh tokens stop working', async (t) => {
    const sim = await simulator(t)
    const tokens = await connect(sim)
    const revoked = await fetch(`${sim.baseUrl}/oauth/revoke?access_token=${tokens.access_token}`, { method: 'POST' })
    assert.equal(revoked.status, 200)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/personal_info`, tokens.access_token)).status, 401)
    const refresh = await postForm(`${sim.baseUrl}/oauth/token`, {
      grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: sim.clientId, client_secret: sim.clientSecret
    })
    assert.deepEqual([refresh.status, refresh.body], [400, { error: 'invalid_grant' }])
  })
})
