import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createApiKey, revokeApiKey } from '../../src/auth/credentials-repository.ts'
import { batch, heartRate, sleepSpan } from '../fixtures/healthkit/samples.ts'
import { buildTestApp } from '../helpers/app.ts'
import { CANARY, recordCanary } from '../helpers/canaries.ts'
import { latestEvents } from '../../src/storage/events-repository.ts'
import { ADAPTERS, TEST_REDIS_URL, requireRedis } from '../helpers/services.ts'

interface EventPage {
  data: Array<{ event_id: string, metric: string, start: string, source: string, user_id: string }>
  next_cursor: string | null
}

const userPath = `/v1/users/${encodeURIComponent(CANARY.userId)}`

for (const adapter of ADAPTERS) {
  describe(`query API (${adapter})`, () => {
    test('pages through events in start order with filters, and audits every read', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders(CANARY.userId)
      const samples = [
        ...Array.from({ length: 250 }, (_, i) => heartRate(249 - i)),
        sleepSpan('S-1', 5, '2026-01-07T02:00:00Z', 20)
      ]
      assert.equal((await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples) })).statusCode, 200)
      const other = await harness.deviceHeaders(CANARY.otherUserId)
      await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers: other, payload: batch([heartRate(0)]) })

      const key = await createApiKey(app.db, 'reader', ['read:events'])
      recordCanary(key.token)
      const reader = { authorization: `Bearer ${key.token}` }
      const seen: EventPage['data'] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const query: string = cursor === null ? 'limit=100' : `limit=100&cursor=${cursor}`
        const response = await app.http.inject({ method: 'GET', url: `${userPath}/events?${query}`, headers: reader })
        assert.equal(response.statusCode, 200)
        const page: EventPage = response.json<EventPage>()
        seen.push(...page.data)
        cursor = page.next_cursor
        pages++
      } while (cursor !== null)
      assert.equal(pages, 3)
      assert.equal(seen.length, 251)
      assert.equal(new Set(seen.map((e) => e.event_id)).size, 251, 'no event twice across pages')
      assert.ok(seen.every((e) => e.user_id === CANARY.userId), 'only the requested user')
      const starts = seen.map((e) => Date.parse(e.start))
      assert.deepEqual(starts, [...starts].sort((a, b) => a - b))

      const sleepOnly = await app.http.inject({ method: 'GET', url: `${userPath}/events?metric=rem_sleep_minutes`, headers: reader })
      assert.deepEqual(sleepOnly.json<EventPage>().data.map((e) => e.metric), ['rem_sleep_minutes'])
      const window = await app.http.inject({
        method: 'GET', url: `${userPath}/events?metric=heart_rate&from=2026-01-06T22:00:00Z&to=2026-01-06T22:10:00Z&source=healthkit`, headers: reader
      })
      assert.equal(window.json<EventPage>().data.length, 10, 'from inclusive, to exclusive')
      const otherSource = await app.http.inject({ method: 'GET', url: `${userPath}/events?source=oura`, headers: reader })
      assert.equal(otherSource.json<EventPage>().data.length, 0)

      const latest = await app.http.inject({ method: 'GET', url: `${userPath}/latest`, headers: reader })
      const latestData = latest.json<{ data: Record<string, { start: string }> }>().data
      assert.deepEqual(Object.keys(latestData).sort(), ['heart_rate', 'rem_sleep_minutes'])
      assert.equal(latestData.heart_rate?.start, heartRate(249).start.replace('.000Z', 'Z'))

      const { rows } = await app.db.query<{ principal: string, action: string, subject: string }>(
        'SELECT principal, action, subject FROM audit_log WHERE action IN ($1, $2) ORDER BY id', ['events.read', 'latest.read'])
      assert.equal(rows.length, pages + 3 + 1)
      assert.ok(rows.every((row) => row.principal === `api-key:${key.id}`))
      assert.ok(rows.every((row) => row.subject === app.pseudonymize(CANARY.userId) && !row.subject.includes('canary')))
    })

    test('pages without gaps or repeats when many events share one start time', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders('same-start-user')
      // Identical start times leave event_id as the only order, and the cursor must follow it exactly.
      const samples = Array.from({ length: 40 }, (_, i) => heartRate(0, { uuid: `SAME-${i}` }))
      await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples) })
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const query: string = cursor === null ? 'limit=7' : `limit=7&cursor=${cursor}`
        const page: EventPage = (await app.http.inject({ method: 'GET', url: `/v1/users/same-start-user/events?${query}`, headers: adminHeaders })).json<EventPage>()
        seen.push(...page.data.map((event) => event.event_id))
        cursor = page.next_cursor
      } while (cursor !== null)
      assert.equal(seen.length, 40)
      assert.equal(new Set(seen).size, 40)
    })

    test('rejects bad paging and filter parameters with 400', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      for (const query of ['limit=0', 'limit=1001', 'limit=abc', 'cursor=bm9wZQ', 'from=yesterday', 'to=2026-13-45T00:00:00Z']) {
        const response = await app.http.inject({ method: 'GET', url: `${userPath}/events?${query}`, headers: adminHeaders })
        assert.equal(response.statusCode, 400, query)
        assert.match(response.json<{ error: { code: string } }>().error.code, /^BB_INVALID_(REQUEST|CURSOR)$/)
      }
      const badUser = await app.http.inject({ method: 'GET', url: '/v1/users/a%20b/events', headers: adminHeaders })
      assert.equal(badUser.statusCode, 400)
    })

    test('enforces bearer auth and scopes on every protected route', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const device = await harness.deviceHeaders(CANARY.userId)
      const reader = await createApiKey(app.db, 'reader', ['read:events'])
      const adminKey = await createApiKey(app.db, 'admin', ['admin'])
      const revoked = await createApiKey(app.db, 'gone', ['read:events'])
      await revokeApiKey(app.db, revoked.id)
      for (const key of [reader, adminKey, revoked]) recordCanary(key.token)
      const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

      const routes: Array<{ method: 'GET' | 'POST', url: string, scope: 'read:events' | 'admin' }> = [
        { method: 'GET', url: `${userPath}/events`, scope: 'read:events' },
        { method: 'GET', url: `${userPath}/latest`, scope: 'read:events' },
        { method: 'POST', url: `${userPath}/devices`, scope: 'admin' }
      ]
      for (const route of routes) {
        const call = (headers: Record<string, string>) => app.http.inject({ method: route.method, url: route.url, headers })
        assert.equal((await call({})).statusCode, 401, `${route.url} without a token`)
        assert.equal((await call({ authorization: 'Basic abc' })).statusCode, 401)
        assert.equal((await call(bearer(revoked.token))).statusCode, 401, 'revoked key')
        assert.equal((await call({ authorization: device.authorization! })).statusCode, 403, 'device token')
        assert.equal((await call(bearer(route.scope === 'admin' ? reader.token : 'bbk_' + 'x'.repeat(43)))).statusCode,
          route.scope === 'admin' ? 403 : 401)
        assert.ok([200, 201].includes((await call(adminHeaders)).statusCode), 'the admin token holds every scope')
        assert.ok([200, 201].includes((await call(bearer(adminKey.token))).statusCode), 'admin scope implies read')
      }
    })

    test('without ADMIN_API_TOKEN the admin token path is closed', async (t) => {
      const harness = await buildTestApp(t, adapter, { ADMIN_API_TOKEN: '' })
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const response = await app.http.inject({ method: 'POST', url: `${userPath}/devices`, headers: adminHeaders })
      assert.equal(response.statusCode, 401)
    })
  })
}

const CACHES: Record<string, Record<string, string>> = { 'in-process': {}, redis: { REDIS_URL: TEST_REDIS_URL } }

for (const [cacheName, cacheEnv] of Object.entries(CACHES)) {
  describe(`latest and recent through the cache (${cacheName})`, () => {
    const lookups = async (metricsText: Promise<string>, kind: string, result: string): Promise<number> =>
      Number(new RegExp(`^cache_lookups_total\\{kind="${kind}",result="${result}"\\} (\\d+)$`, 'm').exec(await metricsText)?.[1] ?? 0)

    test('latest answers an upload at once from the cache, and a deletion removes it', async (t) => {
      if (cacheEnv.REDIS_URL !== undefined && !(await requireRedis(t))) return
      const harness = await buildTestApp(t, 'pglite', cacheEnv)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders(CANARY.userId)
      const upload = async (samples: unknown[], deleted: unknown[] = []) => {
        assert.equal((await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples, deleted) })).statusCode, 200)
      }
      const latest = async () => {
        const response = await app.http.inject({ method: 'GET', url: `${userPath}/latest`, headers: adminHeaders })
        assert.equal(response.statusCode, 200)
        const data = response.json<{ data: Record<string, { source_record_id: string }> }>().data
        const stored = Object.fromEntries((await latestEvents(app.db, CANARY.userId)).map((event) => [event.metric, event]))
        assert.deepEqual(data, stored, 'the cache answers exactly what PostgreSQL holds')
        return data
      }

      await upload([heartRate(0), heartRate(2), heartRate(1), sleepSpan('S-1', 5, '2026-01-07T02:00:00Z', 20)])
      assert.equal((await latest()).heart_rate?.source_record_id, heartRate(2).uuid, 'miss, answered by PostgreSQL and filled')
      await upload([heartRate(10)])
      assert.equal((await latest()).heart_rate?.source_record_id, heartRate(10).uuid, 'the upload updated the cached picture')
      await upload([heartRate(5)])
      assert.equal((await latest()).heart_rate?.source_record_id, heartRate(10).uuid, 'an older measurement does not replace it')
      assert.equal(await lookups(app.metrics.registry.metrics(), 'latest', 'hit'), 2)

      await upload([], [{ uuid: heartRate(10).uuid, type: heartRate(10).type }])
      assert.equal((await latest()).heart_rate?.source_record_id, heartRate(5).uuid, 'the deleted value is gone')
      assert.equal(await lookups(app.metrics.registry.metrics(), 'latest', 'miss'), 2, 'the deletion dropped the cached picture')
    })

    test('recent serves the newest points of a metric, newest first, and audits every read', async (t) => {
      if (cacheEnv.REDIS_URL !== undefined && !(await requireRedis(t))) return
      const harness = await buildTestApp(t, 'pglite', { ...cacheEnv, MAX_TIMESERIES_ENTRIES: '50' })
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders(CANARY.userId)
      const upload = async (samples: unknown[]) => {
        assert.equal((await app.http.inject({ method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch(samples) })).statusCode, 200)
      }
      type Recent = { metric: string, unit: string, data: Array<{ event_id: string, start: string, value: number }> }
      const recent = async (query: string) => app.http.inject({ method: 'GET', url: `${userPath}/metrics/heart_rate/recent${query}`, headers: adminHeaders })
      const expected = async (limit: number) => {
        const response = await app.http.inject({ method: 'GET', url: `${userPath}/events?metric=heart_rate&limit=1000`, headers: adminHeaders })
        const events = response.json<{ data: Array<{ event_id: string, start: string, value: number }> }>().data
        return events.reverse().slice(0, limit).map((event) => ({ event_id: event.event_id, start: event.start, value: event.value }))
      }

      await upload([...Array.from({ length: 30 }, (_, i) => heartRate(29 - i)), sleepSpan('S-1', 5, '2026-01-07T02:00:00Z', 20)])
      const first = await recent('?limit=5')
      assert.equal(first.statusCode, 200)
      assert.deepEqual(first.json<Recent>(), { metric: 'heart_rate', unit: 'bpm', data: await expected(5) })
      assert.deepEqual((await recent('?limit=5')).json<Recent>().data, await expected(5))
      assert.equal(await lookups(app.metrics.registry.metrics(), 'recent', 'hit'), 1, 'the second read came from the cache')

      await upload([heartRate(40)])
      assert.deepEqual((await recent('?limit=5')).json<Recent>().data, await expected(5), 'a new point is at the front at once')
      assert.equal((await recent('')).json<Recent>().data.length, 31, 'the default limit covers every point here')
      for (const query of ['?limit=0', '?limit=51', '?limit=abc']) assert.equal((await recent(query)).statusCode, 400, query)
      const unknown = await app.http.inject({ method: 'GET', url: `${userPath}/metrics/body_mass/recent`, headers: adminHeaders })
      assert.equal(unknown.statusCode, 400)
      assert.equal((await app.http.inject({ method: 'GET', url: `${userPath}/metrics/heart_rate/recent`, headers })).statusCode, 403, 'device tokens read nothing')

      const { rows } = await app.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action = 'recent.read'")
      assert.equal(rows[0]?.n, 4)
    })
  })
}
