import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import { parseWhoopNotification } from '../../../src/providers/whoop/notification.ts'
import {
  normalizeWhoopCycle, normalizeWhoopRecovery, normalizeWhoopSleep, normalizeWhoopWorkout
} from '../../../src/providers/whoop/normalize.ts'
import { verifyWhoopSignature } from '../../../src/providers/whoop/verify.ts'
import {
  signWhoopWebhook, startWhoopSimulator, type WhoopSimulator, type WhoopSimulatorOptions, type WhoopTokenResponse
} from '../../../src/simulators/whoop/index.ts'

const NOW_MS = Date.parse('2026-01-08T15:30:00Z')
const API = '/developer/v2'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function manualClock(startMs = NOW_MS): { now: () => number, advance: (ms: number) => void } {
  let nowMs = startMs
  return { now: () => nowMs, advance: (ms) => { nowMs += ms } }
}

async function simulator(t: TestContext, options: WhoopSimulatorOptions = {}): Promise<WhoopSimulator> {
  const sim = await startWhoopSimulator({ now: () => NOW_MS, ...options })
  t.after(() => sim.close())
  return sim
}

interface Answer<T> {
  status: number
  body: T
  headers: Headers
}

async function request<T = unknown>(url: string, init: RequestInit = {}): Promise<Answer<T>> {
  const response = await fetch(url, init)
  const text = await response.text()
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers }
}

const get = <T = unknown>(url: string, accessToken: string): Promise<Answer<T>> =>
  request<T>(url, { headers: { authorization: `Bearer ${accessToken}` } })

const postForm = <T = unknown>(url: string, form: Record<string, string>): Promise<Answer<T>> => request<T>(url, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(form).toString()
})

const refresh = (sim: WhoopSimulator, refreshToken: string): Promise<Answer<WhoopTokenResponse & { error?: string }>> =>
  postForm(`${sim.baseUrl}/oauth/oauth2/token`, {
    grant_type: 'refresh_token', refresh_token: refreshToken, client_id: sim.clientId, client_secret: sim.clientSecret, scope: 'offline'
  })

describe('WHOOP simulator', () => {
  test('authorize → code → token → profile; codes are single-use', async (t) => {
    const sim = await simulator(t)
    sim.addUser({ days: 2 })
    const userId = sim.addUser({ userId: '987654321', days: 2 }).userId
    const redirectUri = 'http://127.0.0.1:9/oauth/whoop/callback'
    const authorize = new URL(sim.authorizeUrl)
    authorize.search = new URLSearchParams({
      response_type: 'code', client_id: sim.clientId, redirect_uri: redirectUri, state: 'csrf-123',
      scope: 'read:profile read:sleep offline', sim_user_id: userId
    }).toString()
    const redirect = await fetch(authorize, { redirect: 'manual' })
    assert.equal(redirect.status, 302)
    const location = new URL(redirect.headers.get('location') ?? '')
    assert.equal(location.origin + location.pathname, redirectUri)
    assert.equal(location.searchParams.get('state'), 'csrf-123')
    const code = location.searchParams.get('code') ?? ''
    const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: sim.clientId, client_secret: sim.clientSecret }

    const tokens = await postForm<WhoopTokenResponse>(`${sim.baseUrl}/oauth/oauth2/token`, form)
    assert.equal(tokens.status, 200)
    assert.equal(tokens.body.expires_in, 3600)
    assert.equal(tokens.body.token_type, 'bearer')
    assert.ok(tokens.body.refresh_token !== undefined)

    const profile = await get<Record<string, unknown>>(`${sim.baseUrl}${API}/user/profile/basic`, tokens.body.access_token)
    assert.equal(profile.status, 200)
    assert.equal(profile.body.user_id, 987_654_321)
    assert.deepEqual(Object.keys(profile.body).sort(), ['email', 'first_name', 'last_name', 'user_id'])

    assert.deepEqual((await postForm(`${sim.baseUrl}/oauth/oauth2/token`, form)).body, { error: 'invalid_grant' })
    assert.equal((await get(`${sim.baseUrl}${API}/user/profile/basic`, 'nonsense')).status, 401)
    const wrongSecret = await postForm(`${sim.baseUrl}/oauth/oauth2/token`, { ...form, client_secret: 'nope' })
    assert.equal(wrongSecret.status, 401)
    assert.equal(sim.requestCount('POST /oauth/oauth2/token'), 3)
    assert.equal(sim.requestCount('GET /developer/v2/user/profile/basic'), 2)
  })

  test('refresh rotates; a reused refresh token is invalid_grant and revokes the whole family', async (t) => {
    const sim = await simulator(t)
    const { userId } = sim.addUser({ days: 2 })
    const first = sim.issueTokens(userId)
    const second = await refresh(sim, first.refresh_token ?? '')
    assert.equal(second.status, 200)
    assert.ok(second.body.refresh_token !== undefined && second.body.refresh_token !== first.refresh_token)
    const third = await refresh(sim, second.body.refresh_token ?? '')
    assert.equal(third.status, 200)
    const profileUrl = `${sim.baseUrl}${API}/user/profile/basic`
    assert.equal((await get(profileUrl, third.body.access_token)).status, 200)

    // Another authorization of the same user is a different family and survives.
    const other = sim.issueTokens(userId)

    const reuse = await refresh(sim, first.refresh_token ?? '')
    assert.equal(reuse.status, 400)
    assert.deepEqual(reuse.body, { error: 'invalid_grant' })
    assert.equal((await get(profileUrl, third.body.access_token)).status, 401, 'newest access token revoked')
    assert.equal((await refresh(sim, third.body.refresh_token ?? '')).status, 400, 'newest refresh token revoked')
    assert.equal((await get(profileUrl, other.access_token)).status, 200)
    assert.deepEqual(sim.tokenStats(userId), { refreshCalls: 4, refreshes: 2, refreshReuses: 1, familiesRevoked: 1 })
  })

  test('no offline scope, no refresh token; expiry and DELETE /user/access end access tokens', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now, accessTokenTtlSeconds: 60 })
    const { userId } = sim.addUser({ days: 1 })
    const online = sim.issueTokens(userId, ['read:profile'])
    assert.equal(online.refresh_token, undefined)
    const profileUrl = `${sim.baseUrl}${API}/user/profile/basic`
    assert.equal((await get(profileUrl, online.access_token)).status, 200)
    clock.advance(60_000)
    assert.deepEqual((await get(profileUrl, online.access_token)).body, { error: 'unauthorized' })

    const offline = sim.issueTokens(userId)
    sim.expireAccessTokens()
    assert.equal((await get(profileUrl, offline.access_token)).status, 401)
    const renewed = await refresh(sim, offline.refresh_token ?? '')
    assert.equal((await get(profileUrl, renewed.body.access_token)).status, 200)
    const revoke = await request(`${sim.baseUrl}${API}/user/access`, { method: 'DELETE', headers: { authorization: `Bearer ${renewed.body.access_token}` } })
    assert.equal(revoke.status, 204)
    assert.equal((await get(profileUrl, renewed.body.access_token)).status, 401)
    assert.equal((await refresh(sim, renewed.body.refresh_token ?? '')).status, 400)
  })

  test('documents have the reference shapes and link up; the bridge normalizes them', async (t) => {
    const sim = await simulator(t, { seed: 3 })
    const { userId } = sim.addUser({ days: 6 })
    const again = await startWhoopSimulator({ seed: 3, now: () => NOW_MS })
    t.after(() => again.close())
    assert.deepEqual(again.addUser({ days: 6 }), { userId, profile: (await simulatorProfile(sim, userId)), ...documentsOf(sim, userId) }, 'deterministic')

    const cycles = sim.cycles(userId)
    const sleeps = sim.sleeps(userId)
    const recoveries = sim.recoveries(userId)
    const workouts = sim.workouts(userId)
    assert.equal(cycles.length, 6)
    assert.equal(sleeps.length, 6)
    assert.equal(recoveries.length, 6)
    assert.equal(workouts.length, 3)
    cycles.forEach((cycle, i) => {
      assert.ok(Number.isSafeInteger(cycle.id) && cycle.id > 2 ** 31, 'int64 cycle id')
      assert.equal(cycle.score_state, 'SCORED')
      assert.ok(cycle.score !== undefined && cycle.score.strain >= 0 && cycle.score.strain <= 21)
      if (i === cycles.length - 1) assert.equal(cycle.end, undefined, 'the newest cycle is open')
      else assert.equal(cycle.end, cycles[i + 1]?.start, 'a cycle ends where the next begins')
    })
    for (const sleep of sleeps) {
      assert.match(sleep.id, UUID)
      const stages = sleep.score?.stage_summary
      assert.ok(stages !== undefined)
      assert.equal(stages.total_in_bed_time_milli, Date.parse(sleep.end) - Date.parse(sleep.start), 'milliseconds')
      assert.equal(
        stages.total_awake_time_milli + stages.total_light_sleep_time_milli + stages.total_slow_wave_sleep_time_milli
          + stages.total_rem_sleep_time_milli + stages.total_no_data_time_milli,
        stages.total_in_bed_time_milli)
      assert.match(sleep.timezone_offset, /^[+-]\d\d:\d\d$|^Z$/)
      assert.ok(cycles.some((c) => c.id === sleep.cycle_id && c.start === sleep.start))
    }
    for (const recovery of recoveries) {
      const sleep = sleeps.find((s) => s.id === recovery.sleep_id)
      assert.ok(sleep !== undefined, 'recovery.sleep_id names a sleep')
      assert.equal(sleep.cycle_id, recovery.cycle_id)
      const score = recovery.score
      assert.ok(score !== undefined && score.recovery_score >= 0 && score.recovery_score <= 100 && score.hrv_rmssd_milli > 0)
    }
    for (const workout of workouts) {
      assert.match(workout.id, UUID)
      assert.ok(Date.parse(workout.end) <= NOW_MS && workout.score !== undefined && workout.score.kilojoule > 0)
    }

    // The bridge's own normalizer stores every scored document; the open cycle waits.
    for (const sleep of sleeps) assert.equal(normalizeWhoopSleep(sleep).kind, 'drafts')
    for (const workout of workouts) assert.equal(normalizeWhoopWorkout(workout).kind, 'drafts')
    for (const recovery of recoveries) {
      assert.equal(normalizeWhoopRecovery(recovery, sleeps.find((s) => s.id === recovery.sleep_id)).kind, 'drafts')
    }
    assert.equal(normalizeWhoopCycle(cycles[0]).kind, 'drafts')
    assert.equal(normalizeWhoopCycle(cycles.at(-1)).kind, 'unscored')
  })

  test('single documents by id, recovery via cycle, 404s, and mutations', async (t) => {
    const sim = await simulator(t)
    const { userId } = sim.addUser({ days: 3 })
    const { access_token: token } = sim.issueTokens(userId)
    const [sleep] = sim.sleeps(userId)
    const [workout] = sim.workouts(userId)
    assert.ok(sleep !== undefined && workout !== undefined)
    assert.deepEqual((await get(`${sim.baseUrl}${API}/activity/sleep/${sleep.id}`, token)).body, sleep)
    assert.deepEqual((await get(`${sim.baseUrl}${API}/activity/workout/${workout.id}`, token)).body, workout)
    assert.equal((await get<{ id: number }>(`${sim.baseUrl}${API}/cycle/${sleep.cycle_id}`, token)).body.id, sleep.cycle_id)
    const recovery = await get<{ sleep_id: string }>(`${sim.baseUrl}${API}/cycle/${sleep.cycle_id}/recovery`, token)
    assert.equal(recovery.body.sleep_id, sleep.id)
    assert.equal((await get(`${sim.baseUrl}${API}/activity/sleep/00000000-0000-4000-8000-000000000000`, token)).status, 404)
    assert.equal((await get(`${sim.baseUrl}${API}/cycle/1`, token)).status, 404)

    const pending = sim.setScoreState('sleep', sleep.id, 'PENDING_SCORE')
    assert.equal('score' in pending, false)
    assert.ok(pending.updated_at > sleep.updated_at)
    assert.ok(sim.setScoreState('sleep', sleep.id, 'SCORED').score_state === 'SCORED')
    assert.deepEqual(sim.sleeps(userId)[0]?.score, sleep.score, 'the score comes back')
    const edited = sim.updateSleep(sleep.id, { nap: true })
    assert.equal(edited.nap, true)

    assert.equal(sim.deleteSleep(sleep.id), true)
    assert.equal((await get(`${sim.baseUrl}${API}/activity/sleep/${sleep.id}`, token)).status, 404)
    assert.equal((await get(`${sim.baseUrl}${API}/cycle/${sleep.cycle_id}/recovery`, token)).status, 404, 'its recovery went with it')
    assert.equal(sim.deleteSleep(sleep.id), false)
  })

  test('collections page newest first with next_token, every record exactly once, within start/end', async (t) => {
    const sim = await simulator(t, { pageSize: 4 })
    const { userId } = sim.addUser({ days: 11 })
    sim.addUser({ days: 3 })
    const { access_token: token } = sim.issueTokens(userId)
    const expected = {
      'activity/sleep': sim.sleeps(userId).map((s) => ({ key: s.id, start: s.start })),
      'activity/workout': sim.workouts(userId).map((w) => ({ key: w.id, start: w.start })),
      cycle: sim.cycles(userId).map((c) => ({ key: String(c.id), start: c.start })),
      recovery: sim.recoveries(userId).map((r) => ({ key: r.sleep_id, start: sim.cycles(userId).find((c) => c.id === r.cycle_id)?.start ?? '' }))
    }
    for (const [path, items] of Object.entries(expected)) {
      const seen: string[] = []
      let pages = 0
      for (let nextToken: string | undefined; ;) {
        const url = new URL(`${sim.baseUrl}${API}/${path}`)
        if (nextToken !== undefined) url.searchParams.set('nextToken', nextToken)
        const page = await get<{ records: Array<Record<string, unknown>>, next_token?: string }>(url.toString(), token)
        assert.equal(page.status, 200, path)
        pages++
        for (const record of page.body.records) seen.push(String(path === 'recovery' ? record.sleep_id : record.id))
        nextToken = page.body.next_token
        if (nextToken === undefined) {
          assert.equal('next_token' in page.body, false, 'no token on the last page')
          break
        }
      }
      const byStartDescending = [...items].sort((a, b) => Date.parse(b.start) - Date.parse(a.start)).map((i) => i.key)
      assert.deepEqual(seen, byStartDescending, `${path}: all, once, newest first`)
      assert.equal(pages, Math.max(1, Math.ceil(items.length / 4)), path)
    }

    // start inclusive, end exclusive.
    const sleeps = sim.sleeps(userId)
    const from = sleeps[2]?.start ?? ''
    const to = sleeps[5]?.start ?? ''
    const window = await get<{ records: Array<{ id: string }> }>(
      `${sim.baseUrl}${API}/activity/sleep?limit=25&start=${from}&end=${to}`, token)
    assert.deepEqual(window.body.records.map((s) => s.id), sleeps.slice(2, 5).map((s) => s.id).reverse())
    assert.equal((await get(`${sim.baseUrl}${API}/activity/sleep?limit=26`, token)).status, 400)
  })

  test('rate limit: headers count down, then 429 with Retry-After until the minute slides', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now, perMinute: 3, perDay: 50 })
    const { userId } = sim.addUser({ days: 1 })
    const { access_token: token } = sim.issueTokens(userId)
    const url = `${sim.baseUrl}${API}/user/profile/basic`
    const remaining: string[] = []
    const resets: string[] = []
    for (let i = 0; i < 3; i++) {
      const answer = await get(url, token)
      assert.equal(answer.status, 200)
      assert.equal(answer.headers.get('x-ratelimit-limit'), '3, 3;window=60, 50;window=86400')
      resets.push(answer.headers.get('x-ratelimit-reset') ?? '')
      remaining.push(answer.headers.get('x-ratelimit-remaining') ?? '')
      clock.advance(1000)
    }
    assert.deepEqual(remaining, ['2', '1', '0'])
    assert.deepEqual(resets, ['60', '59', '58'], 'seconds until the oldest request leaves the minute')
    const limited = await get(url, token)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), '57', 'the oldest request leaves the minute in 57 s')
    assert.equal((await get(url, 'not-a-token')).status, 429, 'per app, not per token')
    clock.advance(57_000)
    assert.equal((await get(url, token)).status, 200)
  })

  test('faults: the next server errors, then recovery', async (t) => {
    const sim = await simulator(t)
    const { userId } = sim.addUser({ days: 1 })
    const { access_token: token } = sim.issueTokens(userId)
    const url = `${sim.baseUrl}${API}/user/profile/basic`
    sim.faults.serverErrors({ next: 2, status: 503 })
    assert.equal((await get(url, token)).status, 503)
    const second = await get(url, token)
    assert.equal(second.status, 503)
    assert.ok(second.headers.get('x-ratelimit-remaining') !== null, 'failures carry the rate headers too')
    assert.equal((await get(url, token)).status, 200)
    sim.faults.serverErrors({ ratio: 1 })
    assert.equal((await get(url, token)).status, 500)
    sim.faults.clear()
    assert.equal((await get(url, token)).status, 200)
  })

  test('webhooks verify with the bridge\'s verifier and parse with its parser', async (t) => {
    const sim = await simulator(t, { now: Date.now })
    const { userId } = sim.addUser({ days: 2 })
    const [sleep] = sim.sleeps(userId)
    assert.ok(sleep !== undefined)
    const received: Array<{ headers: IncomingHttpHeaders, body: Buffer }> = []
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) })
        res.writeHead(204)
        res.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => server.close(() => { resolve() })))
    const to = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whoop`

    const delivery = await sim.sendWebhook({ type: 'recovery.updated', id: sleep.id, userId }, { to })
    assert.equal(delivery.status, 204)
    const [hit] = received
    assert.ok(hit !== undefined)
    const header = (name: string): string | undefined => {
      const value = hit.headers[name]
      return typeof value === 'string' ? value : undefined
    }
    verifyWhoopSignature({
      signature: header('x-whoop-signature'), timestamp: header('x-whoop-signature-timestamp'), rawBody: hit.body
    }, [sim.clientSecret], Date.now(), 300)
    assert.throws(() => verifyWhoopSignature({
      signature: header('x-whoop-signature'), timestamp: header('x-whoop-signature-timestamp'), rawBody: hit.body
    }, ['another-secret'], Date.now(), 300))
    const parsed = parseWhoopNotification(hit.body)
    assert.deepEqual({ ...parsed, traceId: undefined }, {
      dataType: 'recovery', eventType: 'updated', objectId: sleep.id, providerUserId: userId, traceId: undefined
    })
    assert.match(parsed.traceId, UUID)
    assert.equal(typeof (JSON.parse(hit.body.toString('utf8')) as { user_id: unknown }).user_id, 'number')

    // Fixed inputs give the documented header set.
    const headers = signWhoopWebhook('{"a":1}', 'secret', 1_767_772_812_345)
    assert.equal(headers['x-whoop-signature-timestamp'], '1767772812345')
    assert.match(headers['x-whoop-signature'] ?? '', /^[A-Za-z0-9+/]{43}=$/)
    assert.equal(headers['content-type'], 'application/json')
  })
})

async function simulatorProfile(sim: WhoopSimulator, userId: string): Promise<unknown> {
  const { access_token: token } = sim.issueTokens(userId)
  return (await get(`${sim.baseUrl}${API}/user/profile/basic`, token)).body
}

function documentsOf(sim: WhoopSimulator, userId: string): Record<string, unknown> {
  return { cycles: sim.cycles(userId), sleeps: sim.sleeps(userId), recoveries: sim.recoveries(userId), workouts: sim.workouts(userId) }
}
