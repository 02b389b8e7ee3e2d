import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { OURA_OLD_SECRET, OURA_TEST_SECRET, OURA_VERIFICATION_TOKEN, notification, signOura, signedHeaders } from '../fixtures/oura/webhook.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { ADAPTERS, TEST_REDIS_URL, requireRedis } from '../helpers/services.ts'

const OURA_ENV = {
  OURA_CLIENT_ID: 'oura-test-client',
  OURA_CLIENT_SECRET: `${OURA_TEST_SECRET},${OURA_OLD_SECRET}`,
  OURA_WEBHOOK_VERIFICATION_TOKEN: OURA_VERIFICATION_TOKEN,
  // Intake only: these tests look at receipts as intake stored them, before any worker touches them.
  MAX_CONCURRENT_WEBHOOKS: '0'
}

async function receipts(harness: TestApp): Promise<Array<{ status: string, data_type: string, provider_user_id: string }>> {
  const { rows } = await harness.app.db.query<{ status: string, data_type: string, provider_user_id: string }>(
    'SELECT status, data_type, provider_user_id FROM webhook_receipts ORDER BY id')
  return rows
}

const post = (harness: TestApp, body: string, headers: Record<string, string>) =>
  harness.app.http.inject({ method: 'POST', url: '/webhooks/oura', headers, payload: body })

for (const adapter of ADAPTERS) {
  describe(`Oura webhooks (${adapter})`, () => {
    test('answers the subscription handshake only with the right verification token', async (t) => {
      const harness = await buildTestApp(t, adapter, OURA_ENV)
      if (harness === undefined) return
      const { app } = harness
      const ok = await app.http.inject({ method: 'GET', url: `/webhooks/oura?verification_token=${OURA_VERIFICATION_TOKEN}&challenge=Zq81Xk` })
      assert.equal(ok.statusCode, 200)
      assert.deepEqual(ok.json(), { challenge: 'Zq81Xk' })
      const wrong = await app.http.inject({ method: 'GET', url: '/webhooks/oura?verification_token=nope&challenge=Zq81Xk' })
      assert.equal(wrong.statusCode, 401)
      assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'BB_VERIFICATION_TOKEN_MISMATCH')
      const noChallenge = await app.http.inject({ method: 'GET', url: `/webhooks/oura?verification_token=${OURA_VERIFICATION_TOKEN}` })
      assert.equal(noChallenge.statusCode, 400)
    })

    test('stores a verified notification as one durable receipt; duplicates and ignored types answer 200', async (t) => {
      const harness = await buildTestApp(t, adapter, OURA_ENV)
      if (harness === undefined) return
      const now = Date.now()
      const body = notification()
      const first = await post(harness, body, signedHeaders(body, now))
      assert.equal(first.statusCode, 200)
      assert.deepEqual(first.json(), { status: 'accepted' })
      const again = await post(harness, body, signedHeaders(body, now + 5000))
      assert.equal(again.statusCode, 200)
      assert.deepEqual(again.json(), { status: 'duplicate' })
      const later = notification({ event_time: '2026-01-07T09:00:00+00:00' })
      assert.equal((await post(harness, later, signedHeaders(later, now))).json<{ status: string }>().status, 'accepted', 'a later change is new work')
      const tag = notification({ data_type: 'enhanced_tag', object_id: 'tag-1' })
      const ignored = await post(harness, tag, signedHeaders(tag, now))
      assert.equal(ignored.statusCode, 200)
      assert.deepEqual(ignored.json(), { status: 'ignored' })
      assert.deepEqual((await receipts(harness)).map((row) => [row.status, row.data_type]), [
        ['pending', 'daily_readiness'], ['pending', 'daily_readiness'], ['ignored', 'enhanced_tag']
      ])
      const metrics = (await harness.app.http.inject({ method: 'GET', url: '/metrics' })).body
      assert.match(metrics, /^webhook_events_total\{source="oura",device_type="oura_ring"\} 2$/m)
      assert.match(metrics, /^webhook_events_failed_total\{source="oura",error_type="duplicate_event"\} 1$/m)
      assert.match(metrics, /^webhook_events_ignored_total\{source="oura"\} 1$/m)
    })

    test('exports the age of the newest verified notification, absent before the first', async (t) => {
      const harness = await buildTestApp(t, adapter, OURA_ENV)
      if (harness === undefined) return
      const scrape = async (): Promise<string> => (await harness.app.http.inject({ method: 'GET', url: '/metrics' })).body
      assert.doesNotMatch(await scrape(), /webhook_last_received_age_seconds\{/, 'no sample before any notification')
      const body = notification({ object_id: 'age-doc' })
      assert.equal((await post(harness, body, signedHeaders(body, Date.now()))).statusCode, 200)
      const match = /webhook_last_received_age_seconds\{provider="oura"\} ([\d.e+-]+)/.exec(await scrape())
      assert.ok(match !== null, 'a sample per provider')
      assert.ok(Number(match[1]) >= 0 && Number(match[1]) < 5, `age ${match[1]} s`)
    })

    test('refuses every signature failure mode with 401 and stores nothing', async (t) => {
      const harness = await buildTestApp(t, adapter, OURA_ENV)
      if (harness === undefined) return
      const now = Date.now()
      const body = notification()
      const valid = signedHeaders(body, now)
      const cases: Array<[string, Record<string, string>, string, string]> = [
        ['wrong secret', signedHeaders(body, now, { secret: 'not-the-secret' }), body, 'BB_SIGNATURE_MISMATCH'],
        ['stale timestamp', signedHeaders(body, now, { skewSeconds: -301 }), body, 'BB_SIGNATURE_STALE'],
        ['future timestamp', signedHeaders(body, now, { skewSeconds: 301 }), body, 'BB_SIGNATURE_STALE'],
        ['truncated signature', { ...valid, 'x-oura-signature': valid['x-oura-signature']!.slice(0, 40) }, body, 'BB_SIGNATURE_MISMATCH'],
        ['milliseconds instead of seconds', (() => {
          const ms = String(now)
          return { ...valid, 'x-oura-timestamp': ms, 'x-oura-signature': signOura(body, ms) }
        })(), body, 'BB_SIGNATURE_STALE'],
        ['base64 instead of hex', { ...valid, 'x-oura-signature': Buffer.from(valid['x-oura-signature']!, 'hex').toString('base64') }, body, 'BB_SIGNATURE_MISMATCH'],
        ['body changed after signing', valid, body.replace('daily_readiness', 'daily_activity'), 'BB_SIGNATURE_MISMATCH'],
        ['re-serialized body', valid, JSON.stringify(JSON.parse(body), null, 1), 'BB_SIGNATURE_MISMATCH'],
        ['no signature', { 'content-type': 'application/json', 'x-oura-timestamp': valid['x-oura-timestamp']! }, body, 'BB_SIGNATURE_MISSING'],
        ['no timestamp', { 'content-type': 'application/json', 'x-oura-signature': valid['x-oura-signature']! }, body, 'BB_SIGNATURE_MISSING']
      ]
      for (const [name, headers, payload, code] of cases) {
        const response = await post(harness, payload, headers)
        assert.equal(response.statusCode, 401, name)
        assert.equal(response.json<{ error: { code: string } }>().error.code, code, name)
      }
      assert.equal((await receipts(harness)).length, 0)
      const lowerCase = await post(harness, body, { ...valid, 'x-oura-signature': valid['x-oura-signature']!.toLowerCase() })
      assert.equal(lowerCase.statusCode, 200, 'hex case does not matter')
      const rotated = notification({ object_id: 'rotated-1' })
      assert.equal((await post(harness, rotated, signedHeaders(rotated, now, { secret: OURA_OLD_SECRET }))).statusCode, 200, 'any secret of the rotation list verifies')
    })

    test('malformed but signed bodies get 400; hostile bodies never a 500', async (t) => {
      const harness = await buildTestApp(t, adapter, OURA_ENV)
      if (harness === undefined) return
      const now = Date.now()
      for (const body of ['{', '[]', '{"event_type":"explode"}', notification({ object_id: 'a b' }), notification({ user_id: 42 })]) {
        const response = await post(harness, body, signedHeaders(body, now))
        assert.equal(response.statusCode, 400, body)
        assert.match(response.json<{ error: { code: string } }>().error.code, /^BB_(WEBHOOK_MALFORMED|MALFORMED_JSON)$/)
      }
      const wrongType = await harness.app.http.inject({ method: 'POST', url: '/webhooks/oura', headers: { 'content-type': 'text/plain' }, payload: 'x' })
      assert.equal(wrongType.statusCode, 415)
      const huge = notification({ padding: 'x'.repeat(70_000) })
      assert.equal((await post(harness, huge, signedHeaders(huge, now))).statusCode, 413)
      await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), fc.boolean(), async (text, sign) => {
        const headers = sign ? signedHeaders(text, now) : { 'content-type': 'application/json', 'x-oura-timestamp': String(Math.floor(now / 1000)), 'x-oura-signature': 'AB' }
        const response = await post(harness, text, headers)
        return response.statusCode < 500
      }), { numRuns: 150 })
    })

    test('sheds new notifications with 503 + Retry-After above MAX_RECEIPT_BACKLOG, never losing one it acknowledged', async (t) => {
      const harness = await buildTestApp(t, adapter, { ...OURA_ENV, MAX_RECEIPT_BACKLOG: '2' })
      if (harness === undefined) return
      const now = Date.now()
      const bodies = [1, 2, 3].map((index) => notification({ object_id: `doc-${index}` }))
      const answers = []
      for (const body of bodies) answers.push(await post(harness, body, signedHeaders(body, now)))
      assert.deepEqual(answers.map((response) => response.statusCode), [200, 200, 503])
      assert.equal(answers[2]!.json<{ error: { code: string } }>().error.code, 'BB_OVERLOADED')
      assert.ok(Number(answers[2]!.headers['retry-after']) > 0)
      assert.equal((await receipts(harness)).length, 2)
      assert.equal((await post(harness, bodies[0]!, signedHeaders(bodies[0]!, now))).statusCode, 200, 'a redelivery is still acknowledged')
    })
  })
}

describe('Oura webhooks without Oura configured', () => {
  test('the routes do not exist', async (t) => {
    const harness = await buildTestApp(t, 'pglite')
    if (harness === undefined) return
    const body = notification()
    assert.equal((await post(harness, body, signedHeaders(body, Date.now()))).statusCode, 404)
  })
})

describe('Oura webhook dedup with Redis', () => {
  test('a redelivery of a committed receipt is answered from the Redis marker, the first one from PostgreSQL', async (t) => {
    if (!(await requireRedis(t))) return
    const harness = await buildTestApp(t, 'postgres', { ...OURA_ENV, REDIS_URL: TEST_REDIS_URL })
    if (harness === undefined) return
    const now = Date.now()
    const body = notification({ object_id: 'redis-dedup-1' })
    assert.equal((await post(harness, body, signedHeaders(body, now))).json<{ status: string }>().status, 'accepted')
    // With the marker set, a redelivery is a duplicate even with the database gone.
    await harness.app.db.query('DELETE FROM webhook_receipts')
    assert.equal((await post(harness, body, signedHeaders(body, now))).json<{ status: string }>().status, 'duplicate')
  })
})
