import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { createApiKey } from '../../src/auth/credentials-repository.ts'
import { batch, heartRate, sleepSpan } from '../fixtures/healthkit/samples.ts'
import { buildTestApp } from '../helpers/app.ts'
import { CANARY } from '../helpers/canaries.ts'
import { ADAPTERS } from '../helpers/services.ts'

interface UploadBody {
  accepted: number
  duplicates: number
  ignored: number
  deleted: number
  rejected: Array<{ index: number, code: string, path: string }>
  rejected_count: number
}

for (const adapter of ADAPTERS) {
  describe(`HealthKit uploads (${adapter})`, () => {
    test('stores valid samples, reports bad ones by index and code, and is idempotent on re-upload', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders(CANARY.userId)
      const samples = [
        heartRate(0),
        heartRate(1, { value: 900 }),
        { ...heartRate(2), uuid: 'SPO2-1', type: 'HKQuantityTypeIdentifierOxygenSaturation', value: 0.96, unit: '%' },
        sleepSpan('SLEEP-1', 4, '2026-01-07T01:00:00Z', 42),
        sleepSpan('SLEEP-0', 0, '2026-01-06T23:00:00Z', 480),
        { ...heartRate(3), type: 'HKQuantityTypeIdentifierBodyMass' },
        { ...heartRate(4), end: '2025-01-01T00:00:00Z' },
        { ...heartRate(5), unit: 'kg' },
        'not an object'
      ]
      const first = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples) })
      assert.equal(first.statusCode, 200)
      const body = first.json<UploadBody>()
      assert.equal(body.accepted, 3)
      assert.equal(body.ignored, 1)
      assert.deepEqual(body.rejected.map((r) => [r.index, r.code]), [
        [1, 'BB_SAMPLE_OUT_OF_RANGE'],
        [5, 'BB_SAMPLE_UNKNOWN_TYPE'],
        [6, 'BB_SAMPLE_END_BEFORE_START'],
        [7, 'BB_SAMPLE_UNIT_UNSUPPORTED'],
        [8, 'BB_SAMPLE_MALFORMED']
      ])
      assert.equal(body.rejected_count, 5)

      const again = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples) })
      assert.equal(again.json<UploadBody>().accepted, 0)
      assert.equal(again.json<UploadBody>().duplicates, 3)

      const { rows: outbox } = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')
      assert.equal(outbox[0]?.n, 3, 'a re-upload writes no outbox rows')

      const events = await app.http.inject({ method: 'GET', url: `/v1/users/${encodeURIComponent(CANARY.userId)}/events`, headers: adminHeaders })
      const data = events.json<{ data: Array<{ metric: string, value: number, unit: string, context: string | null }> }>().data
      assert.deepEqual(data.map((e) => [e.metric, e.value, e.unit, e.context]).sort(), [
        ['deep_sleep_minutes', 42, 'min', 'sleep'],
        ['heart_rate', 55, 'bpm', null],
        ['spo2', 96, '%', null]
      ])
    })

    test('a newer revision replaces a value, an older one does not', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders('rev-user')
      const upload = (value: number, updatedAt: string) => app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([heartRate(0, { value, updated_at: updatedAt })])
      })
      assert.equal((await upload(60, '2026-01-07T10:00:00Z')).json<UploadBody>().accepted, 1)
      assert.equal((await upload(70, '2026-01-07T11:00:00Z')).json<UploadBody>().accepted, 1)
      assert.equal((await upload(65, '2026-01-07T09:00:00Z')).json<UploadBody>().duplicates, 1)
      const latest = await app.http.inject({ method: 'GET', url: '/v1/users/rev-user/latest', headers: adminHeaders })
      const heart = latest.json<{ data: Record<string, { value: number, source_updated_at: string }> }>().data.heart_rate
      assert.equal(heart?.value, 70)
      assert.equal(heart?.source_updated_at, '2026-01-07T11:00:00.000Z')
    })

    test('deletions remove events by uuid and announce them in the outbox', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders('del-user')
      await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([heartRate(0), heartRate(1)]) })
      const response = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([], [{ uuid: heartRate(0).uuid, type: 'HKQuantityTypeIdentifierHeartRate' }, { uuid: 'never-existed' }])
      })
      assert.equal(response.statusCode, 200)
      assert.equal(response.json<UploadBody>().deleted, 1)
      const events = await app.http.inject({ method: 'GET', url: '/v1/users/del-user/events', headers: adminHeaders })
      assert.deepEqual(events.json<{ data: Array<{ source_record_id: string }> }>().data.map((e) => e.source_record_id), [heartRate(1).uuid])
      const { rows } = await app.db.query<{ op: string, payload: string }>("SELECT op, payload FROM outbox WHERE op = 'delete'")
      assert.equal(rows.length, 1)
      assert.equal((JSON.parse(rows[0]!.payload) as { op: string }).op, 'delete')
    })

    test('rejects oversized uploads with 413 and stores nothing', async (t) => {
      const harness = await buildTestApp(t, adapter, { HEALTHKIT_MAX_SAMPLES: '5', HEALTHKIT_MAX_BODY_BYTES: '20000' })
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders('big-user')
      const tooMany = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(Array.from({ length: 6 }, (_, i) => heartRate(i)))
      })
      assert.equal(tooMany.statusCode, 413)
      assert.equal(tooMany.json<{ error: { code: string } }>().error.code, 'BB_TOO_MANY_SAMPLES')
      const tooBig = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers, payload: JSON.stringify({ samples: [heartRate(0)], pad: 'x'.repeat(30_000) })
      })
      assert.equal(tooBig.statusCode, 413)
      assert.equal(tooBig.json<{ error: { code: string } }>().error.code, 'BB_BODY_TOO_LARGE')
      // A chunked body has no Content-Length: the limit is enforced while streaming.
      const chunked = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers,
        payload: Readable.from([Buffer.from('{"samples":[],"pad":"'), Buffer.from('y'.repeat(25_000)), Buffer.from('"}')])
      })
      assert.equal(chunked.statusCode, 413)
      const { rows } = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
      assert.equal(rows[0]?.n, 0)
    })

    test('streams a large upload through several bulk writes in one transaction', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders('stream-user')
      const count = 12_000
      const body = batch(Array.from({ length: count }, (_, i) => heartRate(i)))
      const chunks = Array.from({ length: Math.ceil(body.length / 65_536) }, (_, i) => Buffer.from(body.slice(i * 65_536, (i + 1) * 65_536)))
      const response = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: Readable.from(chunks) })
      assert.equal(response.statusCode, 200)
      assert.equal(response.json<UploadBody>().accepted, count)

      // A syntax error after the first flush rolls back the whole upload.
      const broken = batch(Array.from({ length: 8000 }, (_, i) => heartRate(count + i))).slice(0, -3) + ']]]'
      const failed = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: broken })
      assert.equal(failed.statusCode, 400)
      assert.equal(failed.json<{ error: { code: string } }>().error.code, 'BB_MALFORMED_JSON')
      const { rows } = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
      assert.equal(rows[0]?.n, count)
    })

    test('answers malformed JSON with 400, wrong content types with 415, deep nesting fast', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders('bad-input-user')
      const cases: Array<[string, Record<string, string>, number, string]> = [
        ['{"samples":[', headers, 400, 'BB_MALFORMED_JSON'],
        ['{"samples":[{"uuid":"x"}]}garbage', headers, 400, 'BB_MALFORMED_JSON'],
        ['[['.repeat(50_000), headers, 400, 'BB_PAYLOAD_TOO_DEEP'],
        ['samples=1', { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, 415, 'BB_UNSUPPORTED_MEDIA_TYPE'],
        ['{}', { ...headers, 'content-type': 'text/plain' }, 415, 'BB_UNSUPPORTED_MEDIA_TYPE']
      ]
      for (const [payload, requestHeaders, status, code] of cases) {
        const response = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers: requestHeaders, payload })
        assert.equal(response.statusCode, status, payload.slice(0, 40))
        assert.equal(response.json<{ error: { code: string } }>().error.code, code)
      }
      const bom = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: `\uFEFF${batch([heartRate(0)])}` })
      assert.equal(bom.statusCode, 200)
      const polluted = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers, payload: '{"samples":[{"__proto__":{"polluted":true},"uuid":"P1"}]}'
      })
      assert.equal(polluted.statusCode, 200)
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
    })

    test('HEALTHKIT_ENABLED=false turns the upload routes into 404s', async (t) => {
      const harness = await buildTestApp(t, adapter, { HEALTHKIT_ENABLED: 'false' })
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders('off-user')
      for (const url of ['/v1/healthkit/batch', '/v1/healthkit/auto-export']) {
        const response = await app.http.inject({ method: 'POST', url, headers, payload: batch([heartRate(0)]) })
        assert.equal(response.statusCode, 404)
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'BB_NOT_FOUND')
      }
    })

    test('authenticates uploads with device tokens only', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const payload = batch([heartRate(0)])
      const anonymous = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers: { 'content-type': 'application/json' }, payload })
      assert.equal(anonymous.statusCode, 401)
      const forged = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers: { 'content-type': 'application/json', authorization: 'Bearer bbd_forgedforgedforgedforgedforged' }, payload
      })
      assert.equal(forged.statusCode, 401)
      const admin = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers: { ...adminHeaders, 'content-type': 'application/json' }, payload })
      assert.equal(admin.statusCode, 403)
      const key = await createApiKey(app.db, 'reader', ['read:events'])
      const reader = await app.http.inject({
        method: 'POST', url: '/v1/healthkit/batch', headers: { authorization: `Bearer ${key.token}`, 'content-type': 'application/json' }, payload
      })
      assert.equal(reader.statusCode, 403)
    })
  })
}
