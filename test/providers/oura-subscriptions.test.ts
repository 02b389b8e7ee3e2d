import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { Config } from '../../src/config/load.ts'
import { BridgeError } from '../../src/errors.ts'
import {
  createSubscription, deleteOurSubscriptions, deleteSubscription, listSubscriptions, ouraCallbackUrl, planSubscriptions,
  renewExpiringSubscriptions, syncSubscriptions, type OuraSubscription
} from '../../src/providers/oura/subscriptions.ts'
import { startOuraSimulator, type OuraSimulator } from '../../src/simulators/oura/index.ts'
import { manualClock, receiver, type Receiver } from '../simulators/oura/helpers.ts'
import { runCliCaptured } from '../helpers/cli.ts'

type OuraConfig = NonNullable<Config['oura']>

const TOKEN = 'vt-subscriptions-test'
const DAY_MS = 86_400_000
const LIFETIME_DAYS = 30
const TIMEOUT_MS = 5000

interface Setup {
  sim: OuraSimulator
  oura: OuraConfig
  /** Our callback: a receiver answering the handshake like the bridge's GET /webhooks/oura. */
  ours: Receiver
  callbackUrl: string
  clock: ReturnType<typeof manualClock>
}

async function setup(t: TestContext): Promise<Setup> {
  const clock = manualClock()
  const sim = await startOuraSimulator({ now: clock.now, subscriptionLifetimeSeconds: LIFETIME_DAYS * 86_400 })
  t.after(() => sim.close())
  const ours = await receiver(t, TOKEN)
  const oura: OuraConfig = {
    clientId: sim.clientId, clientSecrets: [sim.clientSecret], apiUrl: sim.baseUrl,
    webhookVerificationToken: TOKEN, authorizeUrl: sim.authorizeUrl, requestsPer5Min: 5000
  }
  return { sim, oura, ours, callbackUrl: ouraCallbackUrl(new URL(ours.url).origin), clock }
}

/** A subscription of another deployment: same app, another callback URL. */
async function foreignSubscription(t: TestContext, { oura }: Setup): Promise<OuraSubscription> {
  const other = await receiver(t, TOKEN)
  return createSubscription(oura, { callbackUrl: other.url, eventType: 'create', dataType: 'sleep' }, { timeoutMs: TIMEOUT_MS })
}

function pairs(subscriptions: readonly OuraSubscription[]): string[] {
  return subscriptions.map((s) => `${s.eventType}/${s.dataType}`).sort()
}

async function rejectsWith(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BridgeError)
    assert.equal(error.code, 'BB_PROVIDER_REQUEST_FAILED')
    assert.match(error.message, message)
    return true
  })
}

describe('Oura subscriptions: planning', () => {
  const callbackUrl = 'https://bridge.example.test/webhooks/oura'
  const nowMs = Date.parse('2026-01-08T00:00:00Z')
  const subscription = (id: string, eventType: string, dataType: string, inDays: number, url = callbackUrl): OuraSubscription =>
    ({ id, callbackUrl: url, eventType, dataType, expiresAtMs: nowMs + inDays * DAY_MS })

  test('creates the missing pairs, renews ours within the window, ignores other callbacks', () => {
    const existing = [
      subscription('fresh', 'create', 'sleep', 20),
      subscription('expiring', 'update', 'sleep', 7),
      subscription('expired', 'delete', 'sleep', -1),
      subscription('unmapped', 'create', 'workout', 1),
      subscription('foreign', 'create', 'daily_sleep', -1, 'https://old.example.test/webhooks/oura')
    ]
    const plan = planSubscriptions(existing, callbackUrl, nowMs)
    assert.equal(plan.create.length, 15)
    assert.ok(!plan.create.some((p) => p.dataType === 'sleep'))
    assert.ok(plan.create.some((p) => p.eventType === 'create' && p.dataType === 'daily_sleep'), 'a foreign subscription does not count')
    assert.deepEqual(plan.renew.map((s) => s.id), ['expiring', 'expired', 'unmapped'])
    assert.deepEqual(plan.keep.map((s) => s.id), ['fresh'])
    assert.deepEqual(planSubscriptions(existing, callbackUrl, nowMs, 0).renew.map((s) => s.id), ['expired'])
  })
})

describe('Oura subscriptions against the simulator', () => {
  test('sync creates the 18 pairs for our callback, each after a handshake, and a second sync creates none', async (t) => {
    const setupResult = await setup(t)
    const { sim, oura, ours, callbackUrl, clock } = setupResult
    const first = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    assert.equal(first.created.length, 18)
    assert.deepEqual([first.renewed.length, first.kept.length], [0, 0])
    assert.equal(new Set(pairs(first.created)).size, 18)
    assert.ok(first.created.every((s) => s.callbackUrl === callbackUrl && s.expiresAtMs === clock.now() + LIFETIME_DAYS * DAY_MS))
    assert.deepEqual(sim.subscriptions().map((s) => `${s.event_type}/${s.data_type}`).sort(), pairs(first.created))
    const handshakes = ours.requests.filter((r) => r.method === 'GET')
    assert.equal(handshakes.length, 18)
    assert.ok(handshakes.every((r) => r.url.searchParams.get('verification_token') === TOKEN))

    clock.advance(DAY_MS)
    const second = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    assert.deepEqual([second.created.length, second.renewed.length, second.kept.length], [0, 0, 18])
    assert.equal(sim.requestCount('POST /v2/webhook/subscription'), 18)
    assert.equal(sim.requestCount('PUT /v2/webhook/subscription/renew/{id}'), 0)
  })

  test('sync leaves another callback\'s subscriptions alone, even expired ones', async (t) => {
    const setupResult = await setup(t)
    const { sim, oura, callbackUrl, clock } = setupResult
    const foreign = await foreignSubscription(t, setupResult)
    sim.setSubscriptionExpiration(foreign.id, clock.now() - DAY_MS)

    const summary = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    assert.equal(summary.created.length, 18, 'the foreign create/sleep does not stand in for ours')
    assert.equal(summary.renewed.length, 0)
    const stillForeign = (await listSubscriptions(oura, { timeoutMs: TIMEOUT_MS })).find((s) => s.id === foreign.id)
    assert.deepEqual(stillForeign, { ...foreign, expiresAtMs: clock.now() - DAY_MS })
  })

  test('renew renews only our subscriptions expiring within the window', async (t) => {
    const setupResult = await setup(t)
    const { sim, oura, callbackUrl, clock } = setupResult
    const { created } = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    const foreign = await foreignSubscription(t, setupResult)
    const [expired, soon, later] = created as [OuraSubscription, OuraSubscription, OuraSubscription]
    sim.setSubscriptionExpiration(expired.id, clock.now() - 60_000)
    sim.setSubscriptionExpiration(soon.id, clock.now() + 2 * DAY_MS)
    sim.setSubscriptionExpiration(later.id, clock.now() + 8 * DAY_MS)
    sim.setSubscriptionExpiration(foreign.id, clock.now() + DAY_MS)

    clock.advance(60_000)
    const renewed = await renewExpiringSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    assert.deepEqual(renewed.map((s) => s.id).sort(), [expired.id, soon.id].sort())
    assert.ok(renewed.every((s) => s.expiresAtMs === clock.now() + LIFETIME_DAYS * DAY_MS))
    const byId = new Map((await listSubscriptions(oura, { timeoutMs: TIMEOUT_MS })).map((s) => [s.id, s.expiresAtMs]))
    assert.equal(byId.get(later.id), clock.now() - 60_000 + 8 * DAY_MS)
    assert.equal(byId.get(foreign.id), clock.now() - 60_000 + DAY_MS)

    // A wider window reaches the 8-day one; sync renews the same way and creates nothing.
    const summary = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), renewBeforeMs: 10 * DAY_MS, timeoutMs: TIMEOUT_MS })
    assert.deepEqual(summary.renewed.map((s) => s.id), [later.id])
    assert.deepEqual([summary.created.length, summary.kept.length], [0, 17])
  })

  test('delete removes one id, or every subscription of ours and nothing else', async (t) => {
    const setupResult = await setup(t)
    const { sim, oura, callbackUrl, clock } = setupResult
    const { created } = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    const foreign = await foreignSubscription(t, setupResult)

    const victim = created[4]!
    await deleteSubscription(oura, victim.id, { timeoutMs: TIMEOUT_MS })
    assert.equal(sim.subscriptions().length, 18)
    assert.ok(!sim.subscriptions().some((s) => s.id === victim.id))
    await rejectsWith(deleteSubscription(oura, victim.id, { timeoutMs: TIMEOUT_MS }), /answered 403 .*does not exist/)
    const resync = await syncSubscriptions(oura, callbackUrl, { nowMs: clock.now(), timeoutMs: TIMEOUT_MS })
    assert.deepEqual(pairs(resync.created), pairs([victim]))

    const deleted = await deleteOurSubscriptions(oura, callbackUrl, { timeoutMs: TIMEOUT_MS })
    assert.equal(deleted.length, 18)
    assert.deepEqual(sim.subscriptions().map((s) => s.id), [foreign.id])
  })

  test('failures are BB_PROVIDER_REQUEST_FAILED naming the route, never the client secret', async (t) => {
    const setupResult = await setup(t)
    const { sim, oura, callbackUrl, clock } = setupResult
    const options = { nowMs: clock.now(), timeoutMs: TIMEOUT_MS }

    sim.faults.serverErrors({ next: 1, status: 503, on: ['subscriptions'] })
    await assert.rejects(syncSubscriptions(oura, callbackUrl, options), (error: unknown) => {
      assert.ok(error instanceof BridgeError)
      assert.equal(error.code, 'BB_PROVIDER_REQUEST_FAILED')
      assert.equal(error.status, 502)
      assert.equal(error.expose, false)
      assert.match(error.message, /^Oura answered 503 to GET \/v2\/webhook\/subscription: Internal server error$/)
      assert.ok(!error.message.includes(sim.clientSecret))
      return true
    })
    assert.equal(sim.subscriptions().length, 0, 'nothing is created without the list')

    await rejectsWith(listSubscriptions({ ...oura, clientSecrets: ['wrong'] }, options), /answered 401 .*x-client-secret/)
    // The handshake fails: the callback does not know our verification token.
    const stranger = await receiver(t, 'another-token')
    await rejectsWith(syncSubscriptions(oura, stranger.url, options), /answered 400 to POST .*Webhook verification failed/)

    sim.faults.latency({ ms: 1000, on: ['subscriptions'] })
    await rejectsWith(listSubscriptions(oura, { timeoutMs: 100 }), /did not answer within 100 ms/)
    sim.faults.clear()
    await rejectsWith(listSubscriptions({ ...oura, apiUrl: 'http://127.0.0.1:1' }, options), /could not be reached/)
  })
})


describe('bridge oura subscriptions (runCli)', () => {
  async function cliSetup(t: TestContext): Promise<Setup & { env: Record<string, string> }> {
    const setupResult = await setup(t)
    const { sim } = setupResult
    const env = {
      OURA_CLIENT_ID: sim.clientId, OURA_CLIENT_SECRET: sim.clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: TOKEN,
      OURA_API_URL: sim.baseUrl, PUBLIC_BASE_URL: new URL(setupResult.ours.url).origin
    }
    return { ...setupResult, env }
  }

  test('sync, list with one line per subscription marking ours, renew and delete --all', async (t) => {
    const setupResult = await cliSetup(t)
    const { sim, env, callbackUrl } = setupResult
    // The CLI reads the wall clock; the simulator's clock is the same instant.
    setupResult.clock.advance(Date.now() - setupResult.clock.now())
    const foreign = await foreignSubscription(t, setupResult)

    const synced = await runCliCaptured(['oura', 'subscriptions', 'sync'], env)
    assert.equal(synced.code, 0, synced.stderr)
    assert.match(synced.stdout, /\n18 created, 0 renewed, 0 kept for http:\/\/127\.0\.0\.1:\d+\/webhooks\/oura\n$/)
    assert.equal(synced.stdout.split('\n').filter((line) => line.startsWith('created  ')).length, 18)

    const listed = await runCliCaptured(['oura', 'subscriptions', 'list'], env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.stderr, '')
    const lines = listed.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 20)
    const ourLines = lines.filter((line) => line.endsWith('  ours'))
    assert.equal(ourLines.length, 18)
    for (const line of ourLines) {
      assert.match(line, /^[0-9a-f-]{36} {2}(create|update|delete) *[a-z0-9_]+ *expires=\d{4}-\d\d-\d\dT[\d:.]+Z {2}ours$/)
    }
    const foreignLine = lines.find((line) => line.startsWith(foreign.id))
    assert.match(foreignLine ?? '', /^\S+ {2}create {2}sleep +expires=\S+ {2}other callback=http:\/\/127\.0\.0\.1:\d+\/webhooks\/oura$/)
    assert.equal(lines.at(-1), `19 subscriptions; for ${callbackUrl}: 18 present, 0 missing, 0 expiring within 7 days`)

    const renewed = await runCliCaptured(['oura', 'subscriptions', 'renew'], env)
    assert.deepEqual([renewed.code, renewed.stdout], [0, '0 renewed\n'])

    const deleted = await runCliCaptured(['oura', 'subscriptions', 'delete', '--all'], env)
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.match(deleted.stdout, /\n18 deleted\n$/)
    assert.deepEqual(sim.subscriptions().map((s) => s.id), [foreign.id])
    const one = await runCliCaptured(['oura', 'subscriptions', 'delete', foreign.id], env)
    assert.deepEqual([one.code, one.stdout], [0, `deleted  ${foreign.id}\n`])

    const empty = await runCliCaptured(['oura', 'subscriptions', 'list'], env)
    assert.match(empty.stdout, /^0 subscriptions; .*: 0 present, 18 missing, 0 expiring within 7 days \(run `bridge oura subscriptions sync`\)\n$/)
  })

  test('usage mistakes exit 64 before calling Oura', async (t) => {
    const { sim, env } = await cliSetup(t)
    const cases: Array<{ args: string[], stderr: RegExp }> = [
      { args: ['oura'], stderr: /usage: bridge oura subscriptions/ },
      { args: ['oura', 'tokens', 'list'], stderr: /usage: bridge oura subscriptions/ },
      { args: ['oura', 'subscriptions'], stderr: /usage: bridge oura subscriptions/ },
      { args: ['oura', 'subscriptions', 'frobnicate'], stderr: /usage: bridge oura subscriptions/ },
      { args: ['oura', 'subscriptions', 'list', 'extra'], stderr: /list takes no ids and no --all/ },
      { args: ['oura', 'subscriptions', 'sync', '--all'], stderr: /sync takes no ids and no --all/ },
      { args: ['oura', 'subscriptions', 'delete'], stderr: /delete needs ids or --all, not both/ },
      { args: ['oura', 'subscriptions', 'delete', 'some-id', '--all'], stderr: /delete needs ids or --all, not both/ },
      { args: ['oura', 'subscriptions', 'list', '--bogus'], stderr: /--bogus/ }
    ]
    for (const { args, stderr } of cases) {
      const result = await runCliCaptured(args, env)
      assert.equal(result.code, 64, `bridge ${args.join(' ')}`)
      assert.match(result.stderr, /^bridge: /)
      assert.match(result.stderr, stderr)
      assert.equal(result.stdout, '')
    }
    assert.equal(sim.requestCount(), 0)
  })

  test('without Oura configured it exits 78; an Oura failure exits 1 with the code', async (t) => {
    const { sim, env } = await cliSetup(t)
    const unconfigured = await runCliCaptured(['oura', 'subscriptions', 'list'], {})
    assert.equal(unconfigured.code, 78)
    assert.match(unconfigured.stderr, /^bridge: invalid configuration:\n {2}- OURA_CLIENT_ID, OURA_CLIENT_SECRET and OURA_WEBHOOK_VERIFICATION_TOKEN must be set/)

    sim.faults.serverErrors({ next: 1, on: ['subscriptions'] })
    const failed = await runCliCaptured(['oura', 'subscriptions', 'list'], env)
    assert.equal(failed.code, 1)
    assert.match(failed.stderr, /^bridge: Oura answered 500 to GET \/v2\/webhook\/subscription.*\(BB_PROVIDER_REQUEST_FAILED\)\n$/)
    assert.ok(!failed.stderr.includes(sim.clientSecret))
  })
})
