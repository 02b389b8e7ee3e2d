import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BridgeError } from '../../../src/errors.ts'
import { OURA_DATA_TYPES } from '../../../src/providers/oura/documents.ts'
import { parseOuraNotification } from '../../../src/providers/oura/notification.ts'
import { verifyOuraSignature } from '../../../src/providers/oura/verify.ts'
import { signNotification, signOuraPayload, toNotification, type SignatureMode } from '../../../src/simulators/oura/index.ts'
import { signOura } from '../../fixtures/oura/webhook.ts'
import { receiver, simulator, type ReceivedRequest } from './helpers.ts'

const TOLERANCE_SECONDS = 300

/** The bridge's verdict on a received request: undefined when it verifies, else the error code. */
function verdict(request: ReceivedRequest | undefined, secrets: readonly string[]): string | undefined {
  assert.ok(request !== undefined)
  const header = (name: string): string | undefined => {
    const value = request.headers[name]
    return typeof value === 'string' ? value : undefined
  }
  try {
    verifyOuraSignature(
      { signature: header('x-oura-signature'), timestamp: header('x-oura-timestamp'), rawBody: request.rawBody },
      secrets, Date.now(), TOLERANCE_SECONDS
    )
    return undefined
  } catch (error) {
    if (error instanceof BridgeError) return error.code
    throw error
  }
}

describe('Oura simulator: notifications', () => {
  test('a sent notification verifies with the bridge\'s own check and parses', async (t) => {
    const sim = await simulator(t)
    const endpoint = await receiver(t, 'vt')
    const [userId = ''] = sim.userIds()
    const [document] = sim.documents(userId, 'vo2_max')
    const delivery = await sim.sendNotification(
      { event_type: 'create', data_type: 'vo2_max', object_id: document?.id ?? '', user_id: userId }, { to: endpoint.url }
    )
    assert.equal(delivery.status, 200)
    const [request] = endpoint.requests
    assert.equal(verdict(request, [sim.clientSecret]), undefined)
    assert.equal(verdict(request, ['old-secret', sim.clientSecret]), undefined, 'during rotation')
    assert.equal(request?.headers['content-type'], 'application/json')
    assert.match(String(request?.headers['x-oura-signature']), /^[0-9A-F]{64}$/)
    assert.match(String(request?.headers['x-oura-timestamp']), /^\d{10}$/)

    const parsed = parseOuraNotification(request?.rawBody ?? Buffer.alloc(0))
    assert.deepEqual(parsed, {
      eventType: 'create', dataType: 'vo2_max', objectId: document?.id, eventTime: parsed.eventTime, providerUserId: userId
    })
    assert.match(parsed.eventTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/)
    assert.deepEqual(Object.keys(JSON.parse(request?.rawBody.toString() ?? '{}') as object),
      ['event_type', 'data_type', 'object_id', 'event_time', 'user_id'])
  })

  test('signs like the fixture\'s reference implementation of Oura\'s scheme', () => {
    const body = JSON.stringify(toNotification({ event_type: 'update', data_type: 'sleep', object_id: 'a', user_id: 'u' }, 1_767_772_800_000))
    const signed = signNotification(JSON.parse(body) as ReturnType<typeof toNotification>, 'k', 1_767_772_800_000)
    assert.equal(signed.body, body)
    assert.equal(signed.timestamp, '1767772800')
    assert.equal(signed.signature, signOura(body, '1767772800', 'k'))
    assert.equal(signOuraPayload('k', '1767772800', Buffer.from(body)), signed.signature)
  })

  test('each broken-signature mode fails verification the way it should', async (t) => {
    const sim = await simulator(t)
    const endpoint = await receiver(t, 'vt')
    const input = { event_type: 'update' as const, data_type: 'sleep', object_id: 'doc-1', user_id: 'user-1' }
    const cases: Array<[SignatureMode | 'stale' | 'future' | 'no-timestamp', string | undefined]> = [
      ['wrong-secret', 'BB_SIGNATURE_MISMATCH'],
      ['truncated', 'BB_SIGNATURE_MISMATCH'],
      ['garbage', 'BB_SIGNATURE_MISMATCH'],
      ['missing', 'BB_SIGNATURE_MISSING'],
      ['lowercase', undefined],
      ['stale', 'BB_SIGNATURE_STALE'],
      ['future', 'BB_SIGNATURE_STALE'],
      ['no-timestamp', 'BB_SIGNATURE_MISSING']
    ]
    for (const [mode, expected] of cases) {
      const options = mode === 'stale' ? { timestampSkewSeconds: -(TOLERANCE_SECONDS + 60) }
        : mode === 'future' ? { timestampSkewSeconds: TOLERANCE_SECONDS + 60 }
          : mode === 'no-timestamp' ? { omitTimestamp: true }
            : { signature: mode }
      await sim.sendNotification(input, { to: endpoint.url, ...options })
      assert.equal(verdict(endpoint.requests.at(-1), [sim.clientSecret]), expected, mode)
    }
  })

  test('retries resend the same body with a fresh signature until a 2xx', async (t) => {
    const sim = await simulator(t)
    const endpoint = await receiver(t, 'vt')
    endpoint.postStatus = (attempt) => attempt < 3 ? 503 : 200
    const delivery = await sim.sendNotification(
      { event_type: 'delete', data_type: 'sleep', object_id: 'doc-9', user_id: 'user-9' },
      { to: endpoint.url, retries: 5, retryDelayMs: 5 }
    )
    assert.deepEqual([delivery.status, delivery.attempts], [200, 3])
    const bodies = new Set(endpoint.requests.map((r) => r.rawBody.toString()))
    assert.equal(bodies.size, 1)
    for (const request of endpoint.requests) assert.equal(verdict(request, [sim.clientSecret]), undefined)

    const unreachable = await sim.sendNotification(
      { event_type: 'delete', data_type: 'sleep', object_id: 'doc-9', user_id: 'user-9' },
      { to: 'http://127.0.0.1:9/webhooks/oura', retries: 1, retryDelayMs: 1 }
    )
    assert.deepEqual([unreachable.status, unreachable.ok, unreachable.attempts], [0, false, 2])
    assert.ok(unreachable.error !== undefined)
  })

  test('emit sends one notification per generated document', async (t) => {
    const sim = await simulator(t)
    const endpoint = await receiver(t, 'vt')
    const [userId = ''] = sim.userIds()
    const notifications = sim.notificationsFor(userId)
    const expected = OURA_DATA_TYPES.reduce((sum, type) => sum + sim.documents(userId, type).length, 0)
    assert.equal(notifications.length, expected)
    assert.ok(notifications.every((n) => n.event_type === 'create' && n.user_id === userId))
    const deliveries = await sim.emit(notifications, { to: endpoint.url, concurrency: 4 })
    assert.equal(deliveries.length, expected)
    assert.ok(deliveries.every((d) => d.ok))
    const received = endpoint.requests.map((r) => (JSON.parse(r.rawBody.toString()) as { object_id: string }).object_id).sort()
    assert.deepEqual(received, notifications.map((n) => n.object_id).sort())
  })
})
