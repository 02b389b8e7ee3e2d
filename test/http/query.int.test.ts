import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createApiKey, revokeApiKey } from '../../src/auth/credentials-repository.ts'
import { batch, heartRate, sleepSpan } from '../fixtures/healthkit/samples.ts'
import { buildTestApp } from '../helpers/app.ts'
import { CANARY, recordCanary } from '../helpers/canaries.ts'
import { ADAPTERS } from '../helpers/services.ts'

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
