import assert from 'node:assert/strict'
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { describe, test } from 'node:test'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { buildTestApp } from '../helpers/app.ts'
import { ADAPTERS, createScratchDatabase, requirePostgres } from '../helpers/services.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'

const CONTRACT_METRICS = [
  'webhook_events_total', 'webhook_events_failed_total', 'webhook_process_duration_seconds', 'biometric_values',
  'active_webhook_tasks', 'semaphore_wait_seconds', 'receipt_backlog', 'outbox_backlog', 'kafka_messages_published_total',
  'dlq_messages_total', 'token_refresh_total', 'provider_requests_total', 'healthkit_samples_total'
]

for (const adapter of ADAPTERS) {
  describe(`operations endpoints (${adapter})`, () => {
    test('healthz, readyz and metrics answer with the contract shapes and names', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const health = await app.http.inject({ method: 'GET', url: '/healthz' })
      assert.equal(health.statusCode, 200)
      assert.equal(health.json<{ status: string }>().status, 'ok')
      const ready = await app.http.inject({ method: 'GET', url: '/readyz' })
      assert.equal(ready.statusCode, 200)
      const readiness = ready.json<{ status: string, dependencies: Record<string, { state: string }> }>()
      assert.equal(readiness.dependencies.database?.state, 'up')
      assert.equal(readiness.dependencies.kafka?.state, 'disabled')

      const headers = await harness.deviceHeaders('metrics-user')
      await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([heartRate(0), heartRate(1, { value: 1 })]) })
      const metrics = await app.http.inject({ method: 'GET', url: '/metrics' })
      assert.equal(metrics.statusCode, 200)
      assert.match(metrics.headers['content-type'] ?? '', /text\/plain/)
      for (const name of CONTRACT_METRICS) assert.match(metrics.body, new RegExp(`^# TYPE ${name} `, 'm'), name)
      assert.match(metrics.body, /^healthkit_samples_total\{outcome="accepted"\} 1$/m)
      assert.match(metrics.body, /^healthkit_samples_total\{outcome="rejected"\} 1$/m)
      assert.match(metrics.body, /^biometric_values_count\{metric_type="heart_rate",device_type="apple_watch"\} 1$/m)
      assert.doesNotMatch(metrics.body, /metrics-user/, 'labels never carry user ids')
    })

    test('unknown routes are coded 404s and errors use the contract body', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const response = await harness.app.http.inject({ method: 'GET', url: '/v2/nothing' })
      assert.equal(response.statusCode, 404)
      assert.deepEqual(Object.keys(response.json<{ error: object }>().error).sort(), ['code', 'message'])
    })
  })
}

describe('PostgreSQL outage', () => {
  test('answers 503 with Retry-After while the database is unreachable and recovers without a restart', async (t) => {
    if (!(await requirePostgres(t))) return
    const scratch = new URL(await createScratchDatabase(t))
    const proxy = await startTcpProxy(t, scratch.hostname, Number(scratch.port || 5432))
    scratch.port = String(proxy.port)
    const harness = await buildTestApp(t, 'postgres', { DATABASE_URL: scratch.toString() })
    if (harness === undefined) return
    const { app } = harness
    const headers = await harness.deviceHeaders('outage-user')
    const upload = (index: number) => app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([heartRate(index)]) })
    assert.equal((await upload(0)).statusCode, 200)

    proxy.cut()
    const during = await upload(1)
    assert.equal(during.statusCode, 503)
    assert.equal(during.json<{ error: { code: string } }>().error.code, 'BB_STORAGE_UNAVAILABLE')
    assert.ok(Number(during.headers['retry-after']) > 0)
    const readyDuring = await app.http.inject({ method: 'GET', url: '/readyz' })
    assert.equal(readyDuring.statusCode, 503)
    assert.equal(readyDuring.json<{ dependencies: { database: { state: string } } }>().dependencies.database.state, 'down')

    proxy.restore()
    assert.equal((await upload(2)).statusCode, 200)
    assert.equal((await app.http.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    const { rows } = await app.db.query<{ source_record_id: string }>('SELECT source_record_id FROM events ORDER BY 1')
    assert.deepEqual(rows.map((row) => row.source_record_id), [heartRate(0).uuid, heartRate(2).uuid], 'the failed upload stored nothing')
  })
})

describe('overload', () => {
  test('sheds uploads beyond twice the pool with 503 + Retry-After, and the held ones still commit', async (t) => {
    const harness = await buildTestApp(t, 'pglite', { DB_POOL_SIZE: '1' })
    if (harness === undefined) return
    const { app } = harness
    const headers = await harness.deviceHeaders('busy-user')
    const address = await app.listen()
    // Two uploads whose bodies are still arriving occupy both slots.
    const held = [0, 1].map((index) => {
      const body = batch([heartRate(index)])
      const request = httpRequest(`${address}/v1/healthkit/batch`, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } })
      request.write(body.slice(0, 10))
      return { request, rest: body.slice(10), response: responseOf(request) }
    })
    await waitFor(async () => /^healthkit_uploads_in_flight 2$/m.test(await (await fetch(`${address}/metrics`)).text()))
    const shed = await fetch(`${address}/v1/healthkit/batch`, { method: 'POST', headers, body: batch([heartRate(2)]) })
    assert.equal(shed.status, 503)
    assert.equal(((await shed.json()) as { error: { code: string } }).error.code, 'BB_OVERLOADED')
    assert.equal(shed.headers.get('retry-after'), '1')
    for (const { request, rest } of held) request.end(rest)
    for (const { response } of held) assert.equal((await response).statusCode, 200)
    const { rows } = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
    assert.equal(rows[0]?.n, 2)
  })
})

function responseOf(request: ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    request.on('response', (response) => {
      response.resume()
      response.on('end', () => resolve(response))
    })
    request.on('error', reject)
  })
}

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('condition not reached')
}
