import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { DEFAULT_BACKOFF, backoffDelayMs } from '../../../src/providers/client/backoff.ts'
import { ProviderRequestError, createProviderClient, parseRetryAfterMs } from '../../../src/providers/client/provider-client.ts'
import { createLocalBudget, type RequestBudget } from '../../../src/providers/client/rate-budget.ts'
import { createMetrics } from '../../../src/metrics/registry.ts'
import { startOuraSimulator, type OuraSimulator } from '../../../src/simulators/oura/index.ts'
import { startWhoopSimulator } from '../../../src/simulators/whoop/server.ts'

const PERSONAL_INFO = '/v2/usercollection/personal_info'

async function setup(t: { after: (fn: () => Promise<void>) => void }, overrides: { budget?: number, threshold?: number, halfOpenMs?: number, timeoutMs?: number } = {}) {
  const sim: OuraSimulator = await startOuraSimulator({ seed: 3 })
  t.after(() => sim.close())
  sim.addUser({ days: 1, userId: 'client-user' })
  const token = sim.issueTokens('client-user').access_token
  const metrics = createMetrics()
  const client = createProviderClient({
    provider: 'oura', baseUrl: sim.baseUrl, timeoutMs: overrides.timeoutMs ?? 2000,
    budget: createLocalBudget([{ requests: overrides.budget ?? 5000, windowMs: 300_000 }], Date.now),
    breakerThreshold: overrides.threshold ?? 3, breakerHalfOpenAfterMs: overrides.halfOpenMs ?? 200, metrics, now: Date.now
  })
  return { sim, token, client, metrics }
}

async function failure(promise: Promise<unknown>): Promise<ProviderRequestError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof ProviderRequestError, `expected a ProviderRequestError, got ${String(error)}`)
    return error
  }
  throw new Error('the request succeeded')
}

describe('provider client (against the Oura simulator)', () => {
  test('fetches a document and classifies 401, 403 and 404', async (t) => {
    const { sim, token, client } = await setup(t)
    assert.equal((await client.getJson(PERSONAL_INFO, token) as { id: string }).id, 'client-user')
    const unauthorized = await failure(client.getJson(PERSONAL_INFO, 'not-a-token'))
    assert.deepEqual([unauthorized.errorType, unauthorized.retryable, unauthorized.status], ['authentication_error', true, 401])
    const limited = sim.issueTokens('client-user', ['daily']).access_token
    const forbidden = await failure(client.getJson(PERSONAL_INFO, limited))
    assert.deepEqual([forbidden.errorType, forbidden.retryable, forbidden.status], ['authentication_error', false, 403])
    const missing = await failure(client.getJson('/v2/usercollection/sleep/does-not-exist', token))
    assert.deepEqual([missing.errorType, missing.retryable, missing.status], ['validation_error', false, 404])
    assert.equal(client.breakerState(), 'closed', 'client errors do not trip the breaker')
  })

  test("a 429 is a retryable rate_limit_error carrying the provider's Retry-After, and the budget holds off that long", async (t) => {
    const { sim, token, client } = await setup(t)
    sim.faults.tooManyRequests({ next: 1, retryAfterSeconds: 17 })
    const limited = await failure(client.getJson(PERSONAL_INFO, token))
    assert.deepEqual([limited.errorType, limited.retryable, limited.retryAfterMs, limited.notSent], ['rate_limit_error', true, 17_000, false])
    const before = sim.requestCount()
    const held = await failure(client.getJson(PERSONAL_INFO, token))
    assert.equal(held.notSent, true, 'the next request waits locally instead of earning another 429')
    assert.ok(held.retryAfterMs !== undefined && held.retryAfterMs > 16_000 && held.retryAfterMs <= 17_000, String(held.retryAfterMs))
    assert.equal(sim.requestCount(), before)
  })

  test('sustained 5xx opens the breaker (no more requests reach the provider) and a success closes it', async (t) => {
    const { sim, token, client, metrics } = await setup(t, { threshold: 3, halfOpenMs: 150 })
    sim.faults.serverErrors({ ratio: 1, status: 503 })
    for (let index = 0; index < 3; index++) {
      assert.equal((await failure(client.getJson(PERSONAL_INFO, token))).errorType, 'upstream_error')
    }
    assert.equal(client.breakerState(), 'open')
    const seenBefore = sim.requestCount()
    const fastFail = await failure(client.getJson(PERSONAL_INFO, token))
    assert.match(fastFail.message, /circuit open/)
    assert.equal(sim.requestCount(), seenBefore, 'an open breaker sends nothing')
    sim.faults.clear()
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.ok(await client.getJson(PERSONAL_INFO, token), 'the half-open trial succeeds')
    assert.equal(client.breakerState(), 'closed')
    assert.match(await metrics.registry.metrics(), /provider_requests_total\{provider="oura",status="circuit_open"\} 1/)
  })

  test('a slow provider is a retryable timeout_error', async (t) => {
    const { sim, token, client } = await setup(t, { timeoutMs: 100 })
    sim.faults.latency({ ms: 500 })
    const slow = await failure(client.getJson(PERSONAL_INFO, token))
    assert.deepEqual([slow.errorType, slow.retryable], ['timeout_error', true])
  })

  test('the request budget fails fast locally, with the wait until a slot frees', async (t) => {
    const { sim, token, client } = await setup(t, { budget: 2 })
    await client.getJson(PERSONAL_INFO, token)
    await client.getJson(PERSONAL_INFO, token)
    const before = sim.requestCount()
    const over = await failure(client.getJson(PERSONAL_INFO, token))
    assert.equal(over.errorType, 'rate_limit_error')
    assert.ok(over.retryAfterMs !== undefined && over.retryAfterMs > 299_000 && over.retryAfterMs <= 301_000, String(over.retryAfterMs))
    assert.equal(sim.requestCount(), before)
  })
})

/** A local budget on a clock the test sets: `take(at)` takes one live request at `at` ms. */
function budgetAt(requests: number, windowMs: number): { budget: RequestBudget, take: (atMs: number) => ReturnType<RequestBudget['take']>, set: (atMs: number) => void } {
  let clock = 0
  const budget = createLocalBudget([{ requests, windowMs }], () => clock)
  return { budget, set: (atMs) => { clock = atMs }, take: (atMs) => { clock = atMs; return budget.take('live') } }
}

describe('provider client (against the WHOOP simulator)', () => {
  test('X-RateLimit-Remaining 0 holds the budget off until X-RateLimit-Reset, before WHOOP has to answer 429', async (t) => {
    const sim = await startWhoopSimulator({ seed: 4, perMinute: 2 })
    t.after(() => sim.close())
    sim.addUser({ userId: '4560000000042', days: 1 })
    const token = sim.issueTokens('4560000000042').access_token
    const metrics = createMetrics()
    const client = createProviderClient({
      provider: 'whoop', baseUrl: sim.baseUrl, timeoutMs: 2000,
      // The bridge's own budget is far above WHOOP's: only the headers can keep the third request home.
      budget: createLocalBudget([{ requests: 1000, windowMs: 60_000 }], Date.now),
      breakerThreshold: 3, breakerHalfOpenAfterMs: 200, metrics, now: Date.now
    })
    const profile = '/developer/v2/user/profile/basic'
    await client.getJson(profile, token)
    await client.getJson(profile, token)
    const held = await failure(client.getJson(profile, token))
    assert.deepEqual([held.errorType, held.notSent], ['rate_limit_error', true])
    assert.ok(held.retryAfterMs !== undefined && held.retryAfterMs > 55_000 && held.retryAfterMs <= 60_000, String(held.retryAfterMs))
    assert.equal(sim.requestCount(`GET ${profile}`), 2, 'no request was spent on a certain 429')
    const gauge = await metrics.registry.getSingleMetric('provider_rate_limit_remaining')!.get()
    assert.deepEqual(gauge.values.map((value) => [value.labels.provider, value.value]), [['whoop', 0]])
  })
})

describe('backoff, budget and Retry-After', () => {
  test('delays grow ×2 from 1 s, cap at 300 s, stay within ±10 %, and never undercut Retry-After', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, random) => {
      const nominal = Math.min(300_000, 1000 * 2 ** (attempt - 1))
      const delay = backoffDelayMs(DEFAULT_BACKOFF, attempt, () => random)
      assert.ok(delay >= Math.floor(nominal * 0.9) && delay <= Math.ceil(nominal * 1.1), `${attempt}: ${delay}`)
      assert.equal(backoffDelayMs(DEFAULT_BACKOFF, attempt, () => random, 400_000), 400_000)
    }))
    assert.deepEqual([1, 2, 3, 10].map((attempt) => backoffDelayMs(DEFAULT_BACKOFF, attempt, () => 0.5)), [1000, 2000, 4000, 300_000])
  })

  test('the sliding window admits N requests per window, and frees a slot no earlier than a window later', async () => {
    const { take } = budgetAt(3, 1000)
    assert.deepEqual([(await take(0)).ok, (await take(10)).ok, (await take(20)).ok], [true, true, true])
    const refused = await take(500)
    assert.equal(refused.ok, false)
    assert.ok(!refused.ok && refused.retryAfterMs >= 500 && refused.retryAfterMs <= 500 + 1000 / 300 + 1, JSON.stringify(refused))
    assert.equal((await take(999)).ok, false, 'not before the window has passed')
    assert.equal((await take(1004)).ok, true, 'the first slot frees within one bucket after the window')
    assert.equal((await take(1005)).ok, false)
  })

  test('priorities: backfill stops at half the window, reconciliation at 80 %, live takes the rest', async () => {
    const budget = createLocalBudget([{ requests: 10, windowMs: 60_000 }], () => 0)
    const takeAll = async (priority: 'live' | 'reconcile' | 'backfill'): Promise<number[]> => {
      const remaining: number[] = []
      for (let verdict = await budget.take(priority); verdict.ok; verdict = await budget.take(priority)) remaining.push(verdict.remaining)
      return remaining
    }
    assert.deepEqual(await takeAll('backfill'), [9, 8, 7, 6, 5], 'remaining counts the whole window, as live sees it')
    assert.deepEqual(await takeAll('reconcile'), [4, 3, 2])
    assert.deepEqual(await takeAll('live'), [1, 0])
  })

  test('every window of a multi-window budget holds (WHOOP: per minute and per day)', async () => {
    let clock = 0
    const budget = createLocalBudget([{ requests: 3, windowMs: 60_000 }, { requests: 5, windowMs: 86_400_000 }], () => clock)
    let admitted = 0
    for (let minute = 0; minute < 10; minute++) {
      clock = minute * 61_000
      for (let i = 0; i < 10; i++) if ((await budget.take('live')).ok) admitted++
    }
    assert.equal(admitted, 5, 'three in the first minute, two in the next, then the day is spent')
  })

  test('a hold-off refuses everyone until it ends, whatever is left in the windows', async () => {
    const { budget, set, take } = budgetAt(100, 60_000)
    await budget.holdOff(5000)
    const held = await take(1000)
    assert.deepEqual(held, { ok: false, retryAfterMs: 4000 })
    set(0)
    await budget.holdOff(1000)
    assert.deepEqual(await take(4999), { ok: false, retryAfterMs: 1 }, 'a shorter hold-off never cuts a longer one short')
    assert.equal((await take(5000)).ok, true)
  })

  test('any window of the budget\'s length sees at most N requests, however they arrive', async () => {
    const requests = 50
    const windowMs = 10_000
    const { take } = budgetAt(requests, windowMs)
    const admitted: number[] = []
    let nowMs = 0
    let seed = 7
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      nowMs += seed % 97
      if ((await take(nowMs)).ok) admitted.push(nowMs)
    }
    for (let i = requests; i < admitted.length; i++) {
      assert.ok(admitted[i]! - admitted[i - requests]! >= windowMs, `requests ${i - requests} and ${i} are ${admitted[i]! - admitted[i - requests]!} ms apart`)
    }
    assert.ok(admitted.length > 0.9 * requests * nowMs / windowMs, `the budget is used: ${admitted.length} admitted`)
  })

  test('a budget of a billion costs no more memory or time than a small one', async () => {
    const { take } = budgetAt(1_000_000_000, 300_000)
    for (let i = 0; i < 100_000; i++) assert.equal((await take(i)).ok, true)
  })

  test('Retry-After is read in seconds or as an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    assert.equal(parseRetryAfterMs('120', now), 120_000)
    assert.equal(parseRetryAfterMs(new Date(now + 30_000).toUTCString(), now), 30_000)
    assert.equal(parseRetryAfterMs('soon', now), undefined)
    assert.equal(parseRetryAfterMs(null, now), undefined)
  })
})
