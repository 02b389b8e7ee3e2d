import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { WHOOP_BIG_USER_ID, WHOOP_OLD_SECRET, WHOOP_TEST_SECRET, signWhoop, whoopHeaders, whoopNotification } from '../fixtures/whoop/webhook.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { freePort, requireRedisServerBinary, startRedisServer } from '../helpers/redis-server.ts'
import { ADAPTERS, TEST_REDIS_URL, requireRedis } from '../helpers/services.ts'

const WHOOP_ENV = {
  WHOOP_CLIENT_ID: 'whoop-test-client',
  WHOOP_CLIENT_SECRET: `${WHOOP_TEST_SECRET},${WHOOP_OLD_SECRET}`,
  // Intake only: these tests look at receipts as intake stored them, before any worker touches them.
  MAX_CONCURRENT_WEBHOOKS: '0'
}

interface ReceiptRow { status: string, event_type: string, data_type: string, object_id: string, provider_user_id: string, dedup_key: string }

async function receipts(harness: TestApp): Promise<ReceiptRow[]> {
  const { rows } = await harness.app.db.query<ReceiptRow>(
    'SELECT status, event_type, data_type, object_id, provider_user_id, dedup_key FROM webhook_receipts WHERE provider = \'whoop\' ORDER BY id')
  return rows
}

const post = (harness: TestApp, body: string, headers: Record<string, string>) =>
  harness.app.http.inject({ method: 'POST', url: '/webhooks/whoop', headers, payload: body })

const statusOf = async (harness: TestApp, body: string, nowMs = Date.now()): Promise<string> =>
  (await post(harness, body, whoopHeaders(body, nowMs))).json<{ status: string }>().status

for (const adapter of ADAPTERS) {
  describe(`WHOOP webhooks (${adapter})`, () => {
    test('stores a verified notification as one receipt keyed by trace_id; redeliveries and unmapped types answer 200', async (t) => {
      const harness = await buildTestApp(t, adapter, WHOOP_ENV)
      if (harness === undefined) return
      const body = whoopNotification({ userId: WHOOP_BIG_USER_ID })
      assert.equal(await statusOf(harness, body), 'accepted')
      assert.equal(await statusOf(harness, body), 'duplicate', 'WHOOP retries repeat the trace_id')
      // Editing a sleep yields sleep.updated and recovery.updated for one id (reference §2.5): two changes.
      assert.equal(await statusOf(harness, whoopNotification({ type: 'recovery.updated', traceId: 'trace-2' })), 'accepted')
      assert.equal(await statusOf(harness, whoopNotification({ type: 'sleep.deleted', traceId: 'trace-3' })), 'accepted')
      assert.equal(await statusOf(harness, whoopNotification({ type: 'body_measurement.updated', traceId: 'trace-4' })), 'ignored')
      assert.deepEqual((await receipts(harness)).map((row) => [row.status, row.event_type, row.data_type, row.provider_user_id, row.dedup_key]), [
        ['pending', 'updated', 'sleep', WHOOP_BIG_USER_ID, '1f0c3a9e-0000-4000-8000-000000000001'],
        ['pending', 'updated', 'recovery', '456', 'trace-2'],
        ['pending', 'deleted', 'sleep', '456', 'trace-3'],
        ['ignored', 'updated', 'body_measurement', '456', 'trace-4']
      ])
      const metrics = (await harness.app.http.inject({ method: 'GET', url: '/metrics' })).body
      assert.match(metrics, /^webhook_events_total\{source="whoop",device_type="whoop_band"\} 3$/m)
      assert.match(metrics, /^webhook_events_failed_total\{source="whoop",error_type="duplicate_event"\} 1$/m)
      assert.match(metrics, /^webhook_events_ignored_total\{source="whoop"\} 1$/m)
      assert.match(metrics, /^webhook_last_received_age_seconds\{provider="whoop"\} /m)
    })

    test('refuses every signature failure mode with 401, milliseconds/seconds confusion included, and stores nothing', async (t) => {
      const harness = await buildTestApp(t, adapter, WHOOP_ENV)
      if (harness === undefined) return
      const now = Date.now()
      const body = whoopNotification()
      const valid = whoopHeaders(body, now)
      const seconds = String(Math.floor(now / 1000))
      const cases: Array<[string, Record<string, string>, string, string]> = [
        ['wrong secret', whoopHeaders(body, now, { secret: 'not-the-secret' }), body, 'BB_SIGNATURE_MISMATCH'],
        ['stale timestamp', whoopHeaders(body, now, { skewMs: -301_000 }), body, 'BB_SIGNATURE_STALE'],
        ['future timestamp', whoopHeaders(body, now, { skewMs: 301_000 }), body, 'BB_SIGNATURE_STALE'],
        // Signed correctly, but over a timestamp in seconds: read as milliseconds it would be January 1970.
        ['seconds instead of milliseconds', whoopHeaders(body, now, { timestamp: seconds }), body, 'BB_SIGNATURE_STALE'],
        ['hex instead of base64', { ...valid, 'x-whoop-signature': Buffer.from(valid['x-whoop-signature']!, 'base64').toString('hex') }, body, 'BB_SIGNATURE_MISMATCH'],
        ['truncated signature', { ...valid, 'x-whoop-signature': valid['x-whoop-signature']!.slice(0, 40) }, body, 'BB_SIGNATURE_MISMATCH'],
        ['signature over the body only', { ...valid, 'x-whoop-signature': signWhoop(body, '') }, body, 'BB_SIGNATURE_MISMATCH'],
        ['body changed after signing', valid, body.replace('sleep.updated', 'workout.updated'), 'BB_SIGNATURE_MISMATCH'],
        ['re-serialized body', valid, JSON.stringify(JSON.parse(body), null, 1), 'BB_SIGNATURE_MISMATCH'],
        ['Oura\'s headers', { 'content-type': 'application/json', 'x-oura-timestamp': seconds, 'x-oura-signature': 'AB' }, body, 'BB_SIGNATURE_MISSING'],
        ['no timestamp', { 'content-type': 'application/json', 'x-whoop-signature': valid['x-whoop-signature']! }, body, 'BB_SIGNATURE_MISSING']
      ]
      for (const [name, headers, payload, code] of cases) {
        const response = await post(harness, payload, headers)
        assert.equal(response.statusCode, 401, name)
        assert.equal(response.json<{ error: { code: string } }>().error.code, code, name)
      }
      assert.equal((await receipts(harness)).length, 0)
      const rotated = whoopNotification({ traceId: 'rotated-1' })
      assert.equal((await post(harness, rotated, whoopHeaders(rotated, now, { secret: WHOOP_OLD_SECRET }))).statusCode, 200, 'any secret of the rotation list verifies')
      const metrics = (await harness.app.http.inject({ method: 'GET', url: '/metrics' })).body
      assert.match(metrics, new RegExp(`^webhook_events_failed_total\\{source="whoop",error_type="signature_error"\\} ${cases.length}$`, 'm'))
    })

    test('malformed but signed bodies get 400; hostile bodies never a 500', async (t) => {
      const harness = await buildTestApp(t, adapter, WHOOP_ENV)
      if (harness === undefined) return
      const now = Date.now()
      const malformed = [
        '{', '[]', '{"type":"sleep.updated"}',
        whoopNotification({ type: 'sleep' }), whoopNotification({ id: 'a b' }), whoopNotification({ traceId: '' }),
        // 2^64: no WHOOP user id, and past what int64 holds.
        whoopNotification({ userId: '18446744073709551616' }), whoopNotification({ userId: '-4' })
      ]
      for (const body of malformed) {
        const response = await post(harness, body, whoopHeaders(body, now))
        assert.equal(response.statusCode, 400, body)
        assert.match(response.json<{ error: { code: string } }>().error.code, /^BB_(WEBHOOK_MALFORMED|MALFORMED_JSON)$/)
      }
      await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), fc.boolean(), async (text, sign) => {
        const headers = sign ? whoopHeaders(text, now) : { 'content-type': 'application/json', 'x-whoop-signature-timestamp': String(now), 'x-whoop-signature': 'AB' }
        return (await post(harness, text, headers)).statusCode < 500
      }), { numRuns: 100 })
    })
  })
}

describe('WHOOP webhook dedup by trace_id', () => {
  test('with Redis: a redelivery is answered from the marker, even with the receipt gone from PostgreSQL', async (t) => {
    if (!(await requireRedis(t))) return
    const harness = await buildTestApp(t, 'postgres', { ...WHOOP_ENV, REDIS_URL: TEST_REDIS_URL })
    if (harness === undefined) return
    const body = whoopNotification({ traceId: `redis-${Date.now()}` })
    assert.equal(await statusOf(harness, body), 'accepted')
    await harness.app.db.query('DELETE FROM webhook_receipts')
    assert.equal(await statusOf(harness, body), 'duplicate')
  })

  test('with Redis down: the durable unique key still answers duplicate, and nothing acknowledged is lost', async (t) => {
    if (!requireRedisServerBinary(t)) return
    const redis = await startRedisServer(t, await freePort())
    const harness = await buildTestApp(t, 'postgres', { ...WHOOP_ENV, REDIS_URL: redis.url })
    if (harness === undefined) return
    const before = whoopNotification({ traceId: 'before-outage' })
    assert.equal(await statusOf(harness, before), 'accepted')
    redis.kill('SIGKILL')
    const during = whoopNotification({ traceId: 'during-outage' })
    assert.equal(await statusOf(harness, during), 'accepted')
    assert.equal(await statusOf(harness, during), 'duplicate', 'a redelivery during the outage')
    assert.equal(await statusOf(harness, before), 'duplicate', 'a redelivery of a receipt from before the outage')
    assert.deepEqual((await receipts(harness)).map((row) => row.dedup_key), ['before-outage', 'during-outage'])
  })
})
