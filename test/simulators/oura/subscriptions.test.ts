import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { OuraSubscription } from '../../../src/simulators/oura/index.ts'
import { appHeaders, getJson, manualClock, receiver, sendJson, simulator } from './helpers.ts'

const TOKEN = 'vt-simulator-test'
const DAY_MS = 86_400_000

describe('Oura simulator: webhook subscriptions', () => {
  test('create runs the handshake against the callback, then list, get, update, renew and delete', async (t) => {
    const clock = manualClock()
    const sim = await simulator(t, { now: clock.now, subscriptionLifetimeSeconds: 7 * 86_400 })
    const endpoint = await receiver(t, TOKEN)
    const base = `${sim.baseUrl}/v2/webhook/subscription`

    const created = await sendJson<OuraSubscription>('POST', base, {
      callback_url: endpoint.url, verification_token: TOKEN, event_type: 'create', data_type: 'daily_readiness'
    }, appHeaders(sim))
    assert.equal(created.status, 201)
    assert.deepEqual(Object.keys(created.body).sort(), ['callback_url', 'data_type', 'event_type', 'expiration_time', 'id'])
    assert.equal(Date.parse(created.body.expiration_time), clock.now() + 7 * DAY_MS)
    const [handshake] = endpoint.requests
    assert.equal(handshake?.method, 'GET')
    assert.equal(handshake.url.pathname, '/webhooks/oura')
    assert.equal(handshake.url.searchParams.get('verification_token'), TOKEN)
    assert.ok((handshake.url.searchParams.get('challenge') ?? '').length >= 8)

    const listed = await getJson<OuraSubscription[]>(base, undefined, appHeaders(sim))
    assert.deepEqual(listed.body, [created.body])
    assert.deepEqual((await getJson(`${base}/${created.body.id}`, undefined, appHeaders(sim))).body, created.body)

    clock.advance(5 * DAY_MS)
    const renewed = await sendJson<OuraSubscription>('PUT', `${base}/renew/${created.body.id}`, undefined, appHeaders(sim))
    assert.equal(renewed.status, 200)
    assert.equal(Date.parse(renewed.body.expiration_time), clock.now() + 7 * DAY_MS)
    assert.ok(renewed.body.expiration_time > created.body.expiration_time)

    const updated = await sendJson<OuraSubscription>('PUT', `${base}/${created.body.id}`, {
      verification_token: TOKEN, event_type: 'update'
    }, appHeaders(sim))
    assert.equal(updated.status, 200)
    assert.deepEqual([updated.body.event_type, updated.body.data_type], ['update', 'daily_readiness'])
    assert.equal(endpoint.requests.filter((r) => r.method === 'GET').length, 2, 'update repeats the handshake')

    assert.equal((await sendJson('DELETE', `${base}/${created.body.id}`, undefined, appHeaders(sim))).status, 204)
    const gone = await getJson<{ detail: string }>(`${base}/${created.body.id}`, undefined, appHeaders(sim))
    assert.equal(gone.status, 403)
    assert.match(gone.body.detail, /does not exist/)
    assert.deepEqual(sim.subscriptions(), [])
  })

  test('a failed handshake creates nothing', async (t) => {
    const sim = await simulator(t)
    const wrongEcho = await receiver(t, TOKEN, { challengeOverride: 'something-else' })
    const refusing = await receiver(t, 'another-token')
    const body = (url: string): Record<string, string> =>
      ({ callback_url: url, verification_token: TOKEN, event_type: 'create', data_type: 'sleep' })
    const base = `${sim.baseUrl}/v2/webhook/subscription`
    assert.equal((await sendJson('POST', base, body(wrongEcho.url), appHeaders(sim))).status, 400)
    assert.equal((await sendJson('POST', base, body(refusing.url), appHeaders(sim))).status, 400)
    assert.equal((await sendJson('POST', base, body('http://127.0.0.1:9/unreachable'), appHeaders(sim))).status, 400)
    assert.deepEqual(sim.subscriptions(), [])
  })

  test('app credentials are required; bodies are validated (422)', async (t) => {
    const sim = await simulator(t)
    const endpoint = await receiver(t, TOKEN)
    const base = `${sim.baseUrl}/v2/webhook/subscription`
    const valid = { callback_url: endpoint.url, verification_token: TOKEN, event_type: 'create', data_type: 'vo2_max' }
    assert.equal((await getJson(base)).status, 401)
    assert.equal((await getJson(base, undefined, { ...appHeaders(sim), 'x-client-secret': 'wrong' })).status, 401)
    assert.equal((await sendJson('POST', base, { ...valid, data_type: 'vO2_max' }, appHeaders(sim))).status, 422)
    assert.equal((await sendJson('POST', base, { ...valid, data_type: 'heartrate' }, appHeaders(sim))).status, 422)
    assert.equal((await sendJson('POST', base, { ...valid, event_type: 'upsert' }, appHeaders(sim))).status, 422)
    assert.equal((await sendJson('POST', base, { ...valid, verification_token: undefined }, appHeaders(sim))).status, 422)
    assert.equal((await sendJson('POST', base, valid, appHeaders(sim))).status, 201)
    assert.equal(endpoint.requests.length, 1, 'no handshake for an invalid body')
    assert.equal((await sendJson('PUT', `${base}/renew/no-such-id`, undefined, appHeaders(sim))).status, 403)
  })

  test('publish reaches matching, unexpired subscriptions only; 410 cancels a subscription', async (t) => {
    const clock = manualClock(Date.now())
    const sim = await simulator(t, { now: clock.now })
    const endpoint = await receiver(t, TOKEN)
    const subscribe = async (eventType: string, dataType: string): Promise<OuraSubscription> =>
      (await sendJson<OuraSubscription>('POST', `${sim.baseUrl}/v2/webhook/subscription`, {
        callback_url: endpoint.url, verification_token: TOKEN, event_type: eventType, data_type: dataType
      }, appHeaders(sim))).body
    await subscribe('update', 'sleep')
    await subscribe('update', 'sleep')
    const expiring = await subscribe('delete', 'sleep')
    await subscribe('update', 'daily_sleep')
    const [userId = ''] = sim.userIds()
    const [sleep] = sim.documents(userId, 'sleep')

    const { notification } = sim.updateDocument('sleep', sleep?.id ?? '')
    const deliveries = await sim.publish(notification)
    assert.deepEqual(deliveries.map((d) => d.status), [200, 200])
    assert.equal(endpoint.requests.filter((r) => r.method === 'POST').length, 2)

    sim.setSubscriptionExpiration(expiring.id, clock.now() - 1)
    assert.deepEqual(await sim.publish(sim.deleteDocument('sleep', sleep?.id ?? '') ?? notification), [])

    endpoint.postStatus = 410
    const [daily] = sim.documents(userId, 'daily_sleep')
    const gone = await sim.publish(sim.updateDocument('daily_sleep', daily?.id ?? '').notification)
    assert.deepEqual(gone.map((d) => d.status), [410])
    assert.ok(!sim.subscriptions().some((s) => s.data_type === 'daily_sleep'))
  })
})
