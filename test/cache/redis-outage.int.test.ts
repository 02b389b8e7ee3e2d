import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { latestEvents } from '../../src/storage/events-repository.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { exited, freePort, requireRedisServerBinary, startRedisServer } from '../helpers/redis-server.ts'

/**
 * The bridge against a Redis of the test's own that is killed, restarted and paused while uploads and
 * latest-value reads keep coming: no request may fail, and no read may ever answer what PostgreSQL does not hold.
 */

const USER = 'outage.patient@example.com'
const userPath = `/v1/users/${encodeURIComponent(USER)}`

interface Client {
  upload(samples: unknown[], deleted?: unknown[]): Promise<void>
  /** /latest, asserted equal to what PostgreSQL holds at that moment. */
  latestMatchesPostgres(): Promise<void>
  redisState(): Promise<string | undefined>
  cacheHits(): Promise<number>
}

async function client(harness: TestApp): Promise<Client> {
  const { app, adminHeaders } = harness
  const device = await harness.deviceHeaders(USER)
  return {
    async upload(samples, deleted = []) {
      const response = await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers: device, payload: batch(samples, deleted) })
      assert.equal(response.statusCode, 200, `upload answered ${response.statusCode}`)
    },
    async latestMatchesPostgres() {
      const response = await app.http.inject({ method: 'GET', url: `${userPath}/latest`, headers: adminHeaders })
      assert.equal(response.statusCode, 200, `latest answered ${response.statusCode}`)
      const expected = Object.fromEntries((await latestEvents(app.db, USER)).map((event) => [event.metric, event]))
      assert.deepEqual(response.json<{ data: unknown }>().data, expected)
    },
    async redisState() {
      const response = await app.http.inject({ method: 'GET', url: '/readyz' })
      assert.equal(response.statusCode, 200, 'a Redis outage never makes the bridge unready')
      return response.json<{ dependencies: { redis?: { state: string } } }>().dependencies.redis?.state
    },
    async cacheHits() {
      const text = await app.metrics.registry.metrics()
      return Number(/^cache_lookups_total\{kind="latest",result="hit"\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
  }
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`)
}

describe('Redis outage', () => {
  test('killed mid-stream and restarted: no request fails, latest falls back to PostgreSQL, the cache is correct again', async (t) => {
    if (!requireRedisServerBinary(t)) return
    const port = await freePort()
    const server = await startRedisServer(t, port)
    const harness = await buildTestApp(t, 'pglite', { REDIS_URL: server.url })
    if (harness === undefined) return
    const bridge = await client(harness)
    let minute = 0
    const step = async (): Promise<void> => {
      await bridge.upload([heartRate(minute++), heartRate(minute++)])
      await bridge.latestMatchesPostgres()
      await bridge.latestMatchesPostgres()
    }

    for (let i = 0; i < 5; i++) await step()
    assert.equal(await bridge.redisState(), 'up')
    assert.ok(await bridge.cacheHits() > 0, 'reads were served by Redis')

    // Uploads and reads in flight while the server dies.
    const inFlight = Promise.all([step(), bridge.upload([heartRate(1000 + minute)]), bridge.latestMatchesPostgres()])
    server.kill('SIGKILL')
    await inFlight
    await exited(server)
    for (let i = 0; i < 5; i++) await step()
    assert.equal(await bridge.redisState(), 'degraded')

    await startRedisServer(t, port)
    await eventually(async () => await bridge.redisState() === 'up', 'redis up again in /readyz')
    const hitsBefore = await bridge.cacheHits()
    for (let i = 0; i < 5; i++) await step()
    assert.ok(await bridge.cacheHits() > hitsBefore, 'the cache serves reads again')
  })

  test('paused long enough for commands to time out: writes missed meanwhile never surface as stale values', async (t) => {
    if (!requireRedisServerBinary(t)) return
    const server = await startRedisServer(t, await freePort())
    const harness = await buildTestApp(t, 'pglite', { REDIS_URL: server.url })
    if (harness === undefined) return
    const bridge = await client(harness)
    await bridge.upload([heartRate(0)])
    await bridge.latestMatchesPostgres()
    await bridge.latestMatchesPostgres()
    assert.ok(await bridge.cacheHits() > 0)

    // SIGSTOP: the connection stays open and nothing closes it, so only timeouts reveal the partition.
    server.kill('SIGSTOP')
    t.after(() => { server.kill('SIGCONT') })
    await bridge.upload([heartRate(1)])
    await bridge.upload([heartRate(2)])
    await bridge.upload([heartRate(3)])
    await bridge.upload([], [{ uuid: heartRate(3).uuid, type: heartRate(3).type }])
    await bridge.latestMatchesPostgres()
    assert.equal(await bridge.redisState(), 'degraded')

    server.kill('SIGCONT')
    await eventually(async () => await bridge.redisState() === 'up', 'redis up again in /readyz')
    await bridge.latestMatchesPostgres()
    await bridge.latestMatchesPostgres()
    await bridge.upload([heartRate(4)])
    await bridge.latestMatchesPostgres()
  })
})
