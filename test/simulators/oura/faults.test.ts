import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { appHeaders, getJson, manualClock, postForm, simulator } from './helpers.ts'

describe('Oura simulator: fault switches', () => {
  test('429 with Retry-After for the next N data requests, then normal service', async (t) => {
    const sim = await simulator(t)
    const { access_token: token, refresh_token: refresh } = sim.issueTokens(sim.userIds()[0] ?? '')
    const url = `${sim.baseUrl}/v2/usercollection/daily_sleep`
    sim.faults.tooManyRequests({ next: 2, retryAfterSeconds: 7 })
    for (let i = 0; i < 2; i++) {
      const answer = await getJson<{ status: number }>(url, token)
      assert.equal(answer.status, 429)
      assert.equal(answer.headers.get('retry-after'), '7')
      assert.equal(answer.body.status, 429)
    }
    assert.equal((await getJson(url, token)).status, 200)

    // Data faults leave the token endpoint alone unless asked to.
    sim.faults.tooManyRequests({ next: 1 })
    const form = { grant_type: 'refresh_token', refresh_token: refresh, client_id: sim.clientId, client_secret: sim.clientSecret }
    const refreshed = await postForm<{ refresh_token: string }>(`${sim.baseUrl}/oauth/token`, form)
    assert.equal(refreshed.status, 200)
    sim.faults.tooManyRequests({ next: 1, on: ['oauth'], retryAfterSeconds: null })
    const limited = await postForm(`${sim.baseUrl}/oauth/token`, { ...form, refresh_token: refreshed.body.refresh_token })
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), null)
    assert.equal(sim.faults.counts().tooManyRequests, 3)
  })

  test('5xx for the next N requests or a ratio; ratio 1 fails everything until switched off', async (t) => {
    const sim = await simulator(t, { seed: 3 })
    const { access_token: token } = sim.issueTokens(sim.userIds()[0] ?? '')
    const url = `${sim.baseUrl}/v2/usercollection/sleep`
    sim.faults.serverErrors({ next: 1, status: 503 })
    assert.equal((await getJson(url, token)).status, 503)
    assert.equal((await getJson(url, token)).status, 200)

    sim.faults.serverErrors({ ratio: 1 })
    for (let i = 0; i < 3; i++) assert.equal((await getJson(url, token)).status, 500)
    sim.faults.serverErrors({ ratio: 0.5 })
    const statuses = await Promise.all(Array.from({ length: 40 }, async () => (await getJson(url, token)).status))
    const failed = statuses.filter((s) => s === 500).length
    assert.ok(failed > 8 && failed < 32, `${failed} of 40 failed`)
    sim.faults.serverErrors(false)
    assert.equal((await getJson(url, token)).status, 200)
    assert.throws(() => { sim.faults.serverErrors({ ratio: 2 }) }, RangeError)
  })

  test('added latency delays the answer', async (t) => {
    const sim = await simulator(t)
    const { access_token: token } = sim.issueTokens(sim.userIds()[0] ?? '')
    sim.faults.latency({ ms: 120 })
    const startedMs = performance.now()
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/personal_info`, token)).status, 200)
    assert.ok(performance.now() - startedMs >= 115)
    sim.faults.latency({ ms: 120, on: ['subscriptions'] })
    const quickMs = performance.now()
    await getJson(`${sim.baseUrl}/v2/usercollection/personal_info`, token)
    assert.ok(performance.now() - quickMs < 100)
  })

  test('expire all access tokens now: 401 until the client refreshes', async (t) => {
    const sim = await simulator(t)
    const { access_token: token, refresh_token: refresh } = sim.issueTokens(sim.userIds()[0] ?? '')
    const url = `${sim.baseUrl}/v2/usercollection/daily_activity`
    assert.equal((await getJson(url, token)).status, 200)
    sim.expireAccessTokens()
    const expired = await getJson<{ detail: string }>(url, token)
    assert.equal(expired.status, 401)
    assert.match(expired.body.detail, /expired/)
    const refreshed = await postForm<{ access_token: string }>(`${sim.baseUrl}/oauth/token`, {
      grant_type: 'refresh_token', refresh_token: refresh, client_id: sim.clientId, client_secret: sim.clientSecret
    })
    assert.equal((await getJson(url, refreshed.body.access_token)).status, 200)
  })

  test('the rate budget answers 429 beyond N requests per window, with the wait until a slot frees', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now })
    const { access_token: token } = sim.issueTokens(sim.userIds()[0] ?? '')
    const url = `${sim.baseUrl}/v2/usercollection/daily_spo2`
    sim.faults.budget({ requests: 5, windowSeconds: 60 })
    for (let i = 0; i < 5; i++) {
      assert.equal((await getJson(url, token)).status, 200)
      clock.advance(1000)
    }
    const limited = await getJson(url, token)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), '55')
    // Subscriptions are outside the default scope.
    assert.equal((await getJson(`${sim.baseUrl}/v2/webhook/subscription`, undefined, appHeaders(sim))).status, 200)
    clock.advance(55_000)
    assert.equal((await getJson(url, token)).status, 200)
    assert.equal((await getJson(url, token)).status, 429)
    assert.equal(sim.faults.counts().budgetExceeded, 2)
    sim.faults.clear()
    assert.equal((await getJson(url, token)).status, 200)
  })

  test('requests are counted per route and responses per status', async (t) => {
    const sim = await simulator(t)
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const [sleep] = sim.documents(userId, 'sleep')
    await getJson(`${sim.baseUrl}/v2/usercollection/sleep/${sleep?.id ?? ''}`, token)
    await getJson(`${sim.baseUrl}/v2/usercollection/sleep/${sleep?.id ?? ''}`, token)
    await getJson(`${sim.baseUrl}/v2/usercollection/sleep`, token)
    await getJson(`${sim.baseUrl}/v2/usercollection/vO2_max`, 'expired-or-unknown')
    assert.equal(sim.requestCount('GET /v2/usercollection/sleep/{document_id}'), 2)
    assert.equal(sim.requestCount('GET /v2/usercollection/sleep'), 1)
    assert.deepEqual(sim.requestCounts(), {
      'GET /v2/usercollection/sleep/{document_id}': 2,
      'GET /v2/usercollection/sleep': 1,
      'GET /v2/usercollection/vO2_max': 1
    })
    assert.deepEqual(sim.statusCounts(), { 200: 3, 401: 1 })
    assert.equal(sim.requestCount(), 4)
    sim.resetRequestCounts()
    assert.equal(sim.requestCount(), 0)
  })
})
