import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import fc from 'fast-check'
import Fastify, { type InjectOptions, type LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.ts'
import { createApiKey, createDevice, revokeApiKey } from '../../src/auth/credentials-repository.ts'
import type { Authenticator } from '../../src/auth/principals.ts'
import { generateSecret, hashSecret, newId } from '../../src/auth/secrets.ts'
import { BridgeError } from '../../src/errors.ts'
import type { HttpServer } from '../../src/http/context.ts'
import { ROUTE_AUTH, installRouteAuth, type RouteAuth, type RouteInfo } from '../../src/http/route-auth.ts'
import { describeError } from '../../src/lib/logger.ts'
import { enqueueRange } from '../../src/pipeline/sync-ranges.ts'
import { refreshOuraToken } from '../../src/providers/oura/oauth.ts'
import type { OuraSimulator } from '../../src/simulators/oura/index.ts'
import type { WhoopSimulator } from '../../src/simulators/whoop/server.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import { CANARY, TEST_LOG_DIR, canaryForms, captureForScan, recordCanary } from '../helpers/canaries.ts'
import { readTopic, requireKafka, testTopics } from '../helpers/kafka.ts'
import {
  FAST_TUNING, connectOura, connectProvider, drainReceipts, ouraEnv, recordTokenCanaries, startTestOuraSimulator
} from '../helpers/oura.ts'
import { ADAPTERS, TEST_REDIS_URL, requireRedis, type AdapterName } from '../helpers/services.ts'
import { startTestWhoopSimulator, whoopEnv } from '../helpers/whoop.ts'

/**
 * Issue #7, parts 5 and 6 (reference §7.4 A1–A5, §7.5 S1–S3): the route table read back from the server and
 * every protected route tried with every wrong credential; user isolation on writes, reads and the cache;
 * credentials and OAuth tokens at rest; the audit trail; and secrets kept out of every output a client, an
 * operator or a Kafka consumer sees.
 */

const BEARER_AUTH = ['admin', 'read:events', 'device'] as const
type BearerAuth = (typeof BEARER_AUTH)[number]
const isBearer = (auth: RouteAuth): auth is BearerAuth => (BEARER_AUTH as readonly string[]).includes(auth)

/**
 * Everything reachable without a bearer credential, exactly. A new entry here is a decision: it must carry its
 * own proof (signature, state, verification token) or be harmless operations data.
 */
const UNPROTECTED = [
  'GET /healthz public', 'HEAD /healthz public', 'GET /readyz public', 'HEAD /readyz public',
  'GET /metrics public', 'HEAD /metrics public',
  'GET /webhooks/oura verification-token', 'HEAD /webhooks/oura verification-token',
  'POST /webhooks/oura signature', 'POST /webhooks/whoop signature',
  'GET /oauth/:provider/callback oauth-state', 'HEAD /oauth/:provider/callback oauth-state'
].sort()

const routeName = (route: RouteInfo): string => `${route.method} ${route.url} ${route.auth}`

/** Valid values for every path parameter a route may declare; a route with another parameter fails the test. */
const PATH_PARAMS: Record<string, string> = { userId: CANARY.userId, provider: 'oura', metric: 'heart_rate' }

function concreteUrl(template: string): string {
  return template.replace(/:(\w+)/g, (_match, name: string) => {
    const value = PATH_PARAMS[name]
    assert.ok(value !== undefined, `no valid value for :${name} of ${template}; add one to PATH_PARAMS`)
    return encodeURIComponent(value)
  })
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/**
 * Every request of this file goes through here: error bodies are what a client sees, so they are handed to the
 * post-suite canary scan (S1) and checked against the contract's shape on the spot.
 */
async function call(app: App, request: InjectOptions): Promise<LightMyRequestResponse> {
  const response = await app.http.inject(request)
  if (response.statusCode >= 400 && response.body !== '') {
    captureForScan('http-error-bodies', `${response.statusCode} ${response.body}`)
    const body = response.json<{ error?: { code?: unknown, message?: unknown } }>()
    assert.match(String(body.error?.code), /^BB_[A-Z_]+$/, 'error bodies follow the contract')
    assert.equal(typeof body.error?.message, 'string')
  }
  return response
}

const codeOf = (response: LightMyRequestResponse): string => response.json<{ error: { code: string } }>().error.code

/** The bridge with Oura and WHOOP configured against their simulators, so every route the server can have exists. */
async function withProviders(
  t: TestContext, adapter: AdapterName, env: Record<string, string> = {}
): Promise<{ harness: TestApp, oura: OuraSimulator, whoop: WhoopSimulator } | undefined> {
  const oura = await startTestOuraSimulator(t)
  const whoop = await startTestWhoopSimulator(t)
  const harness = await buildTestApp(t, adapter, { ...ouraEnv(oura), ...whoopEnv(whoop), ...env }, { providerTuning: FAST_TUNING })
  return harness === undefined ? undefined : { harness, oura, whoop }
}

/** An API key whose only scope is one the bridge does not know: valid, yet holding neither admin nor read:events. */
async function keyWithUnknownScope(app: App): Promise<string> {
  const token = generateSecret('bbk')
  await app.db.query('INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1, $2, $3, $4::text[])',
    [newId(), 'unknown-scope', hashSecret(token), '{write:events}'])
  recordCanary(token)
  return token
}

async function eventsOf(app: App, userId: string): Promise<Array<{ event_id: string, source_record_id: string, value: number }>> {
  const { rows } = await app.db.query<{ event_id: string, source_record_id: string, value: number }>(
    'SELECT event_id::text AS event_id, source_record_id, value FROM events WHERE user_id = $1 ORDER BY source_record_id', [userId])
  return rows
}

describe('route auth declarations (no database)', () => {
  test('a route that declares no auth requirement cannot be registered; a declared one is enforced', async () => {
    const server = Fastify() as unknown as HttpServer
    const refuseAll: Authenticator = { authenticate: () => Promise.reject(new BridgeError('BB_UNAUTHENTICATED', 'no token')) }
    const table = installRouteAuth(server, refuseAll)
    assert.throws(() => server.get('/undeclared', () => 'open'), /declares no auth requirement/)
    server.get('/declared', { config: { auth: 'admin' } }, () => 'secret')
    await server.ready()
    assert.deepEqual(table(), [
      { method: 'GET', url: '/declared', auth: 'admin' }, { method: 'HEAD', url: '/declared', auth: 'admin' }
    ])
    const response = await server.inject({ url: '/declared' })
    assert.ok(response.statusCode >= 400 && response.body !== 'secret')
    await server.close()
  })
})

for (const adapter of ADAPTERS) {
  describe(`route table and bearer auth (${adapter})`, () => {
    test('every route declares its auth; every protected route refuses every wrong credential (A1, S1)', async (t) => {
      const setup = await withProviders(t, adapter)
      if (setup === undefined) return
      const { app, adminHeaders } = setup.harness
      const routes = await app.routes()

      // Read back from the server, not hand-listed: a new route appears here by itself.
      assert.ok(routes.length >= 20, `only ${routes.length} routes enumerated`)
      for (const route of routes) assert.ok((ROUTE_AUTH as readonly string[]).includes(route.auth), `${route.method} ${route.url} declares no auth`)
      assert.deepEqual(routes.filter((route) => !isBearer(route.auth)).map(routeName).sort(), UNPROTECTED)
      const protectedRoutes = routes.filter((route) => isBearer(route.auth))
      assert.ok(protectedRoutes.length >= 10, `only ${protectedRoutes.length} protected routes`)
      for (const auth of BEARER_AUTH) assert.ok(protectedRoutes.some((route) => route.auth === auth), `no ${auth} route`)

      const device = await setup.harness.deviceHeaders(CANARY.userId)
      const revokedDevice = await setup.harness.deviceHeaders('revoked-device-user')
      await app.db.query("UPDATE devices SET revoked_at = now() WHERE user_id = 'revoked-device-user'")
      const reader = await createApiKey(app.db, 'reader', ['read:events'])
      const adminKey = await createApiKey(app.db, 'admin-key', ['admin'])
      const revokedAdmin = await createApiKey(app.db, 'revoked-admin', ['admin'])
      await revokeApiKey(app.db, revokedAdmin.id)
      for (const key of [reader, adminKey, revokedAdmin]) recordCanary(key.token)
      const unknownScope = await keyWithUnknownScope(app)
      const unknownKey = generateSecret('bbk')
      const unknownDevice = generateSecret('bbd')
      recordCanary(unknownKey)
      recordCanary(unknownDevice)

      type Expect = 'allowed' | 401 | 403
      const everywhere = (expect: Expect): Record<BearerAuth, Expect> => ({ admin: expect, 'read:events': expect, device: expect })
      const malformed = [
        `Basic ${Buffer.from(`admin:${CANARY.adminToken}`).toString('base64')}`, 'Bearer', 'Bearer ', `Token ${CANARY.adminToken}`,
        CANARY.adminToken, `Bearer ${CANARY.adminToken} extra`, `Bearer  ${CANARY.adminToken}`, 'Bearer short',
        `Bearer ${'x'.repeat(513)}`, `Bearer ${CANARY.adminToken.slice(0, -1)}`
      ]
      const credentials: Array<{ name: string, headers: Record<string, string>, expect: Record<BearerAuth, Expect> }> = [
        { name: 'no Authorization', headers: {}, expect: everywhere(401) },
        ...malformed.map((authorization, index) => ({ name: `malformed #${index}`, headers: { authorization }, expect: everywhere(401) })),
        { name: 'unknown API key', headers: bearer(unknownKey), expect: everywhere(401) },
        { name: 'unknown device token', headers: bearer(unknownDevice), expect: everywhere(401) },
        { name: 'revoked admin key', headers: bearer(revokedAdmin.token), expect: everywhere(401) },
        { name: 'revoked device token', headers: { authorization: revokedDevice.authorization! }, expect: everywhere(401) },
        { name: 'key without a known scope', headers: bearer(unknownScope), expect: everywhere(403) },
        { name: 'read:events key', headers: bearer(reader.token), expect: { admin: 403, 'read:events': 'allowed', device: 403 } },
        // design §4: ADMIN_API_TOKEN holds every scope; docs/architecture.md (query path): an `admin` key reads too.
        { name: 'admin key', headers: bearer(adminKey.token), expect: { admin: 'allowed', 'read:events': 'allowed', device: 403 } },
        { name: 'ADMIN_API_TOKEN', headers: adminHeaders, expect: { admin: 'allowed', 'read:events': 'allowed', device: 403 } },
        { name: 'ADMIN_API_TOKEN, scheme in lower case', headers: { authorization: `bearer ${CANARY.adminToken}` }, expect: { admin: 'allowed', 'read:events': 'allowed', device: 403 } },
        { name: 'device token', headers: { authorization: device.authorization! }, expect: { admin: 403, 'read:events': 403, device: 'allowed' } }
      ]

      const presented = [CANARY.adminToken, reader.token, adminKey.token, revokedAdmin.token, unknownScope, unknownKey, unknownDevice]
      let checks = 0
      for (const route of protectedRoutes) {
        const url = concreteUrl(route.url)
        const auth = route.auth as BearerAuth
        for (const credential of credentials) {
          const withBody = route.method === 'POST'
          const response = await call(app, {
            method: route.method, url,
            headers: withBody ? { ...credential.headers, 'content-type': 'application/json' } : credential.headers,
            ...(withBody ? { payload: '{}' } : {})
          })
          const what = `${route.method} ${route.url} with ${credential.name}`
          const expected = credential.expect[auth]
          if (expected === 'allowed') {
            assert.ok(![401, 403].includes(response.statusCode) && response.statusCode < 500, `${what}: ${response.statusCode} ${response.body}`)
          } else {
            assert.equal(response.statusCode, expected, `${what}: ${response.body}`)
            if (route.method !== 'HEAD') assert.equal(codeOf(response), expected === 401 ? 'BB_UNAUTHENTICATED' : 'BB_FORBIDDEN', what)
            for (const token of presented) assert.ok(!response.body.includes(token), `${what}: the body repeats a credential`)
          }
          checks++
        }
      }
      assert.equal(checks, protectedRoutes.length * credentials.length)

      // A few more failures a client can provoke, so the exposition below has them in its labels (S1).
      assert.equal((await call(app, { method: 'GET', url: '/v1/users/a%20b/events', headers: adminHeaders })).statusCode, 400)
      assert.equal((await call(app, { method: 'GET', url: '/v1/users/a%2Fb/latest', headers: adminHeaders })).statusCode, 400)
      assert.equal((await call(app, { method: 'GET', url: `/v1/users/${encodeURIComponent(CANARY.userId)}/nothing-here` })).statusCode, 404)
      assert.equal((await call(app, { method: 'POST', url: `/v1/users/x/connections/fitbit`, headers: adminHeaders })).statusCode, 404)
      assert.equal((await call(app, { method: 'GET', url: `/oauth/oura/callback?state=${CANARY.adminToken}&code=x` })).statusCode, 400)
      const unsigned = await call(app, { method: 'POST', url: '/webhooks/oura', headers: { 'content-type': 'application/json' }, payload: '{}' })
      assert.equal(unsigned.statusCode, 401)
      const badVerification = await call(app, { method: 'GET', url: `/webhooks/oura?verification_token=${CANARY.adminToken}&challenge=c` })
      assert.equal(badVerification.statusCode, 401)

      const exposition = (await call(app, { method: 'GET', url: '/metrics' })).body
      captureForScan('metrics', exposition)
      // Labels name route templates, never concrete URLs (which carry user ids).
      const templates = new Set([...routes.map((route) => route.url), 'unmatched'])
      const routeLabels = [...exposition.matchAll(/route="([^"]*)"/g)].map((match) => match[1]!)
      assert.ok(routeLabels.length > 0)
      for (const label of routeLabels) assert.ok(templates.has(label), `route label ${label} is not a template`)
      for (const form of canaryForms(CANARY.userId)) assert.ok(!exposition.includes(form), 'a user id in the metrics')
    })
  })

  describe(`isolation between users (${adapter})`, () => {
    test('a device token writes only for the user it is bound to; nothing in the request can name another (A2)', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const [userA, userB] = ['iso-device-a', 'iso-device-b']
      const deviceA = await harness.deviceHeaders(userA)
      const deviceB = await harness.deviceHeaders(userB)
      const ownUpload = batch([heartRate(0, { uuid: 'B-OWN-1' })])
      assert.equal((await call(app, { method: 'POST', url: '/v1/healthkit/batch', headers: deviceB, payload: ownUpload })).statusCode, 200)
      const bBefore = await eventsOf(app, userB)
      assert.equal(bBefore.length, 1)

      // The HealthKit body has no user id by contract; try every place one could be smuggled in.
      const smuggle = { user_id: userB, userId: userB, user: userB }
      const nativeBody = JSON.stringify({
        ...smuggle,
        samples: [{ ...heartRate(1, { uuid: 'A-SMUGGLE-1' }), ...smuggle, metadata: smuggle }],
        // B's own sample, named by its uuid: a deletion is scoped to the device's user too.
        deleted: [{ uuid: 'B-OWN-1', type: 'HKQuantityTypeIdentifierHeartRate', ...smuggle }]
      })
      const autoExportBody = JSON.stringify({
        ...smuggle,
        data: {
          ...smuggle,
          metrics: [{ name: 'heart_rate', units: 'count/min', ...smuggle, data: [{ date: '2026-01-07 08:00:00 +0000', qty: 61, ...smuggle }] }]
        }
      })
      const query = `?${new URLSearchParams(smuggle).toString()}`
      const headers = { ...deviceA, 'x-user-id': userB, 'x-bridge-user-id': userB, 'x-forwarded-user': userB, cookie: `user_id=${userB}` }
      for (const [url, payload] of [['/v1/healthkit/batch', nativeBody], ['/v1/healthkit/auto-export', autoExportBody]] as const) {
        for (const target of [url, `${url}${query}`]) {
          const response = await call(app, { method: 'POST', url: target, headers, payload })
          assert.equal(response.statusCode, 200, response.body)
        }
      }
      for (const url of [`/v1/users/${userB}/healthkit/batch`, `/v1/healthkit/batch/${userB}`, `/v1/users/${userB}/events`]) {
        const response = await call(app, { method: 'POST', url, headers, payload: nativeBody })
        assert.ok([403, 404].includes(response.statusCode), `${url}: ${response.statusCode}`)
      }

      assert.deepEqual(await eventsOf(app, userB), bBefore, 'B has exactly its own sample, untouched')
      const aEvents = await eventsOf(app, userA)
      assert.ok(aEvents.some((event) => event.source_record_id === 'A-SMUGGLE-1'), 'the upload was stored, for A')
      const { rows } = await app.db.query<{ user_id: string }>('SELECT DISTINCT user_id FROM events ORDER BY user_id')
      assert.deepEqual(rows.map((row) => row.user_id), [userA, userB])
    })
  })

  for (const [cacheName, cacheEnv] of Object.entries({ 'in-process': {}, redis: { REDIS_URL: TEST_REDIS_URL } })) {
    describe(`isolation between users (${adapter}, ${cacheName} cache)`, () => {
      test('user A\'s events never appear in user B\'s queries, for any pair of ids (A2, property)', async (t) => {
        if ('REDIS_URL' in cacheEnv && !(await requireRedis(t))) return
        const harness = await buildTestApp(t, adapter, cacheEnv)
        if (harness === undefined) return
        const { app, adminHeaders } = harness

        // Ids one slip of normalization away from each other: case, Unicode look-alikes and combining marks,
        // whitespace, URL encoding and path traversal. Data is stored under every one of them (devices are made
        // directly, bypassing the API's id check), so a lookup that normalized anything would find the other.
        const swapCase = (id: string): string => [...id].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('')
        const variants: Array<(id: string) => string> = [
          (id) => id.toUpperCase(), (id) => id.toLowerCase(), swapCase, (id) => `${id} `, (id) => ` ${id}`, (id) => `${id}\t`,
          (id) => `${id}\u0301`, (id) => id.replace(/[a-z]/, (c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)),
          (id) => id.replace(/a/g, '\u0430'), (id) => encodeURIComponent(id), (id) => `${id}%2F..`, (id) => `${id}/..`,
          (id) => `../${id}`, () => '..', () => '.', (id) => `${id}/`, (id) => `${id}%2F${id}`, (id) => `${id}:heart_rate`
        ]
        const idChars = fc.constantFrom(...'aAbBzZ09._:@+-'.split(''))
        const baseId = fc.string({ unit: idChars, minLength: 1, maxLength: 10 })
        const pairs = fc.oneof(
          fc.tuple(baseId, fc.nat({ max: variants.length - 1 })).map(([id, index]) => [id, variants[index]!(id)] as const),
          fc.tuple(baseId, baseId)
        ).filter(([a, b]) => a !== b)

        let run = 0
        let served = 0
        await fc.assert(fc.asyncProperty(pairs, async ([a, b]) => {
          run++
          const own = new Map<string, string[]>()
          for (const [index, userId] of [a, b].entries()) {
            const device = await createDevice(app.db, userId, undefined)
            recordCanary(device.token)
            const uuid = `PROP-${run}-${index}`
            const response = await call(app, {
              method: 'POST', url: '/v1/healthkit/batch', headers: { ...bearer(device.token), 'content-type': 'application/json' },
              payload: batch([heartRate(10_000 + run * 2 + index, { uuid })])
            })
            assert.equal(response.statusCode, 200)
            const { rows } = await app.db.query<{ event_id: string }>('SELECT event_id::text AS event_id FROM events WHERE source_record_id = $1', [uuid])
            own.set(userId, rows.map((row) => row.event_id))
          }
          for (const [reader, other] of [[a, b], [b, a]] as const) {
            // Encoded as a client must, and raw as a careless one might. A raw segment names whoever it decodes to
            // (`x%41` is `xA`), and one the URL parser rewrites (dot segments, tabs) is not sent as written at all,
            // so the answer is checked against the user the server was actually asked for.
            for (const segment of new Set([encodeURIComponent(reader), reader])) {
              if (new URL(`http://bridge.test/v1/users/${segment}/latest`).pathname !== `/v1/users/${segment}/latest`) continue
              let target: string
              try {
                target = decodeURIComponent(segment)
              } catch {
                continue
              }
              const foreign = new Set(target === other ? [] : own.get(other))
              for (const path of ['events?metric=heart_rate&limit=1000', 'latest', 'metrics/heart_rate/recent?limit=1000']) {
                const response = await call(app, { method: 'GET', url: `/v1/users/${segment}/${path}`, headers: adminHeaders })
                if (response.statusCode !== 200) {
                  assert.equal(response.statusCode, 400, `${response.statusCode} ${response.body}`)
                  continue
                }
                served++
                const body = response.json<{ data: unknown }>()
                const events = Array.isArray(body.data)
                  ? body.data as Array<{ event_id: string, user_id?: string }>
                  : Object.values(body.data as Record<string, { event_id: string, user_id: string }>)
                for (const event of events) {
                  assert.ok(!foreign.has(event.event_id), `${JSON.stringify(other)}'s event in ${JSON.stringify(target)}'s ${path}`)
                  if (event.user_id !== undefined) assert.equal(event.user_id, target)
                }
              }
            }
          }
        }), { numRuns: 25, seed: 7 })
        assert.ok(served > 25, `the property must exercise real answers, not only refusals (${served} served)`)
      })

      test('latest and recent of one user never show another\'s value of the same metric (A3)', async (t) => {
        if ('REDIS_URL' in cacheEnv && !(await requireRedis(t))) return
        const harness = await buildTestApp(t, adapter, cacheEnv)
        if (harness === undefined) return
        const { app, adminHeaders } = harness
        const hits = async (): Promise<number> => {
          const text = (await call(app, { method: 'GET', url: '/metrics' })).body
          return Number(/^cache_lookups_total\{kind="latest",result="hit"\} (\d+)$/m.exec(text)?.[1] ?? 0)
        }
        // Pairs whose cache keys would collide under a careless layout (`latest:{user}`, `series:{user}:{metric}`).
        const pairs = [['Cache-User', 'cache-user'], ['u', 'u:heart_rate'], ['a.b', 'a:b'], ['x@y', 'x+y']] as const
        for (const [pairIndex, pair] of pairs.entries()) {
          const uploads = new Map<string, Record<string, string>>()
          for (const [index, userId] of pair.entries()) {
            const headers = await harness.deviceHeaders(userId)
            uploads.set(userId, headers)
            const sample = heartRate(pairIndex * 10 + index, { uuid: `CACHE-${pairIndex}-${index}`, value: 60 + pairIndex * 10 + index })
            assert.equal((await call(app, { method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([sample]) })).statusCode, 200)
          }
          const check = async (userId: string, expected: number | undefined): Promise<void> => {
            const base = `/v1/users/${encodeURIComponent(userId)}`
            for (let read = 0; read < 2; read++) { // a miss that fills, then a hit
              const latest = (await call(app, { method: 'GET', url: `${base}/latest`, headers: adminHeaders }))
                .json<{ data: Record<string, { user_id: string, value: number }> }>()
              assert.equal(latest.data.heart_rate?.value, expected, `${userId}'s latest`)
              if (expected !== undefined) assert.equal(latest.data.heart_rate?.user_id, userId)
              const recent = (await call(app, { method: 'GET', url: `${base}/metrics/heart_rate/recent`, headers: adminHeaders }))
                .json<{ data: Array<{ value: number }> }>()
              assert.deepEqual(recent.data.map((point) => point.value), expected === undefined ? [] : [expected], `${userId}'s recent`)
            }
          }
          const hitsBefore = await hits()
          await check(pair[0], 60 + pairIndex * 10)
          await check(pair[1], 61 + pairIndex * 10)
          assert.ok(await hits() > hitsBefore, 'the cache answered, not only the database')
          // A deletion forgets the deleting user's picture only.
          const deletion = batch([], [{ uuid: `CACHE-${pairIndex}-0`, type: 'HKQuantityTypeIdentifierHeartRate' }])
          assert.equal((await call(app, { method: 'POST', url: '/v1/healthkit/batch', headers: uploads.get(pair[0])!, payload: deletion })).statusCode, 200)
          await check(pair[0], undefined)
          await check(pair[1], 61 + pairIndex * 10)
        }
      })
    })
  }

  describe(`credentials and tokens at rest (${adapter})`, () => {
    test('API keys and device tokens are stored only as their SHA-256 (A5)', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const key = await createApiKey(app.db, 'at-rest', ['read:events'])
      recordCanary(key.token)
      const device = (await harness.deviceHeaders('at-rest-user')).authorization!.slice('Bearer '.length)
      const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')
      const { rows: keys } = await app.db.query<{ hash: string, dump: string }>(
        "SELECT encode(key_hash, 'hex') AS hash, row_to_json(api_keys)::text AS dump FROM api_keys WHERE id = $1", [key.id])
      const { rows: devices } = await app.db.query<{ hash: string, dump: string }>(
        "SELECT encode(token_hash, 'hex') AS hash, row_to_json(devices)::text AS dump FROM devices WHERE user_id = 'at-rest-user'")
      assert.equal(keys[0]?.hash, sha256(key.token))
      assert.equal(devices[0]?.hash, sha256(device))
      for (const [dump, token] of [[keys[0].dump, key.token], [devices[0].dump, device]] as const) {
        for (const form of canaryForms(token)) assert.ok(!dump.includes(form), 'a credential stored readable')
      }
    })

    test('a dump of the database holds no OAuth token, device token or API key, in any encoding (A5)', async (t) => {
      const oauthTokens: string[] = []
      const collect = (tokens: { access_token: string, refresh_token?: string }): void => {
        recordTokenCanaries(tokens)
        oauthTokens.push(tokens.access_token, ...(tokens.refresh_token === undefined ? [] : [tokens.refresh_token]))
      }
      const oura = await startTestOuraSimulator(t, { onTokensIssued: collect })
      const whoop = await startTestWhoopSimulator(t, { onTokensIssued: collect })
      oura.addUser({ userId: 'oura-dump-member', days: 1 })
      whoop.addUser({ userId: '4560009990001', days: 1 })
      const harness = await buildTestApp(t, adapter, { ...ouraEnv(oura), ...whoopEnv(whoop), BACKFILL_DAYS: '0' }, { providerTuning: FAST_TUNING })
      if (harness === undefined) return
      const { app } = harness
      await connectProvider(harness, 'oura', 'dump-user', 'oura-dump-member')
      await connectProvider(harness, 'whoop', 'dump-user', '4560009990001')
      assert.ok(oauthTokens.length >= 4, 'both providers issued a token pair')
      const device = (await harness.deviceHeaders('dump-user')).authorization!.slice('Bearer '.length)
      const key = await createApiKey(app.db, 'dump', ['admin'])
      recordCanary(key.token)
      const secrets = [...oauthTokens, device, key.token, CANARY.adminToken]

      let dump: string
      if (adapter === 'postgres') {
        // The real thing an attacker would take: pg_dump of the whole database (bytea in hex).
        const pgDump = ['/usr/lib/postgresql/15/bin/pg_dump'].find((path) => existsSync(path)) ?? 'pg_dump'
        const result = spawnSync(pgDump, ['--no-owner', '--dbname', app.config.databaseUrl!], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
        assert.equal(result.status, 0, result.stderr)
        dump = result.stdout
      } else {
        // PGlite has no pg_dump: every row of every table as JSON (bytea rendered as hex), which is what a dump holds.
        const { rows: tables } = await app.db.query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        const parts: string[] = []
        for (const { name } of tables) {
          const { rows } = await app.db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${name}" t`)
          parts.push(`-- ${name}`, ...rows.map((row) => row.row))
        }
        dump = parts.join('\n')
      }
      // The dump is not empty of what matters: both connections and the credentials' rows are in it.
      assert.ok(dump.includes('oura-dump-member') && dump.includes('4560009990001'), 'connections are in the dump')
      assert.ok(dump.includes('dump-user'))
      for (const secret of secrets) {
        for (const form of canaryForms(secret)) assert.ok(!dump.includes(form), 'a token readable in the database dump')
      }
    })

    test('a token ciphertext moved to another connection fails only that user\'s work, with a coded error (A5, A2)', async (t) => {
      // The cipher itself is covered by test/auth/token-crypto.test.ts and the repository by
      // test/storage/connections-repository.int.test.ts; this is what the running bridge does with such a row.
      const oura = await startTestOuraSimulator(t)
      oura.addUser({ userId: 'oura-moved-a', days: 2 })
      oura.addUser({ userId: 'oura-moved-b', days: 2 })
      const harness = await buildTestApp(t, adapter, ouraEnv(oura, { BACKFILL_DAYS: '0' }), { providerTuning: FAST_TUNING })
      if (harness === undefined) return
      const { app } = harness
      await connectOura(harness, 'moved-a', 'oura-moved-a')
      await connectOura(harness, 'moved-b', 'oura-moved-b')
      await app.db.query(`UPDATE connections SET access_token_enc = (SELECT access_token_enc FROM connections WHERE user_id = 'moved-a')
                          WHERE user_id = 'moved-b'`)
      // Both users' work in one transaction, so one claim of the worker holds receipts of both.
      await app.db.transaction(async (tx) => {
        for (const providerUserId of ['oura-moved-a', 'oura-moved-b']) {
          await enqueueRange(tx, {
            provider: 'oura', providerUserId, dataTypes: ['daily_readiness'], kind: 'reconcile', endMs: Date.now(), days: 2, dedupSuffix: 'moved'
          })
        }
      })
      await drainReceipts(app.db)
      const { rows } = await app.db.query<{ provider_user_id: string, status: string, last_error_code: string | null }>(
        'SELECT provider_user_id, status, last_error_code FROM webhook_receipts ORDER BY provider_user_id')
      assert.deepEqual(rows.map((row) => [row.provider_user_id, row.status, row.last_error_code]), [
        ['oura-moved-a', 'done', null],
        ['oura-moved-b', 'dead', 'BB_TOKEN_UNREADABLE']
      ])
      assert.ok((await eventsOf(app, 'moved-a')).length > 0, 'A\'s work was done')
      assert.deepEqual(await eventsOf(app, 'moved-b'), [], 'B got nothing fetched with A\'s token')
      // The API stays coded and non-500 around such a row: listing shows no tokens, deleting still works.
      const list = await call(app, { method: 'GET', url: '/v1/users/moved-b/connections', headers: harness.adminHeaders })
      assert.equal(list.statusCode, 200)
      assert.equal((await call(app, { method: 'DELETE', url: '/v1/users/moved-b/connections/oura', headers: harness.adminHeaders })).statusCode, 204)
    })
  })

  describe(`audit trail (${adapter})`, () => {
    test('every PHI read and admin change writes exactly one audit record naming its principal; refusals write none (A4)', async (t) => {
      const oura = await startTestOuraSimulator(t)
      oura.addUser({ userId: 'oura-audit-member', days: 1 })
      const harness = await buildTestApp(t, adapter, ouraEnv(oura, { BACKFILL_DAYS: '0' }), { providerTuning: FAST_TUNING })
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const reader = await createApiKey(app.db, 'audit-reader', ['read:events'])
      const admin = await createApiKey(app.db, 'audit-admin', ['admin'])
      recordCanary(reader.token)
      recordCanary(admin.token)
      const user = 'audit-user'
      const base = `/v1/users/${user}`
      const subject = app.pseudonymize(user)
      // S2: a keyed HMAC of at least 128 bits, never the id itself.
      assert.match(subject, /^[0-9a-f]{32,}$/)

      const lastId = async (): Promise<number> =>
        Number((await app.db.query<{ id: string | null }>('SELECT max(id)::text AS id FROM audit_log')).rows[0]?.id ?? 0)
      const audited = async (request: InjectOptions & { url: string }, expected: Array<[string, string]>): Promise<LightMyRequestResponse> => {
        const before = await lastId()
        const response = await call(app, request)
        const { rows } = await app.db.query<{ principal: string, action: string, subject: string | null }>(
          'SELECT principal, action, subject FROM audit_log WHERE id > $1 ORDER BY id', [before])
        assert.deepEqual(rows.map((row) => [row.principal, row.action]), expected, `${request.method ?? 'GET'} ${request.url}: ${response.statusCode}`)
        for (const row of rows) assert.equal(row.subject, subject, 'the subject is the pseudonym, never the raw id')
        return response
      }

      const device = await audited({ method: 'POST', url: `${base}/devices`, headers: bearer(admin.token) }, [[`api-key:${admin.id}`, 'device.create']])
      const deviceToken = device.json<{ token: string }>().token
      recordCanary(deviceToken)
      const upload = { ...bearer(deviceToken), 'content-type': 'application/json' }
      await call(app, { method: 'POST', url: '/v1/healthkit/batch', headers: upload, payload: batch([heartRate(0)]) })

      const readerPrincipal = `api-key:${reader.id}`
      await audited({ method: 'GET', url: `${base}/events`, headers: bearer(reader.token) }, [[readerPrincipal, 'events.read']])
      await audited({ method: 'HEAD', url: `${base}/events`, headers: bearer(reader.token) }, [[readerPrincipal, 'events.read']])
      await audited({ method: 'GET', url: `${base}/latest`, headers: bearer(reader.token) }, [[readerPrincipal, 'latest.read']])
      await audited({ method: 'GET', url: `${base}/latest`, headers: bearer(reader.token) }, [[readerPrincipal, 'latest.read']]) // a cache hit too
      await audited({ method: 'GET', url: `${base}/metrics/heart_rate/recent`, headers: bearer(reader.token) }, [[readerPrincipal, 'recent.read']])
      await audited({ method: 'GET', url: `${base}/events`, headers: adminHeaders }, [['admin-token:admin', 'events.read']])

      const start = await audited({ method: 'POST', url: `${base}/connections/oura`, headers: bearer(admin.token) },
        [[`api-key:${admin.id}`, 'connection.start']])
      const authorizeUrl = new URL(start.json<{ authorize_url: string }>().authorize_url)
      authorizeUrl.searchParams.set('sim_user_id', 'oura-audit-member')
      const location = new URL((await fetch(authorizeUrl, { redirect: 'manual' })).headers.get('location')!)
      await audited({ method: 'GET', url: `${location.pathname}${location.search}` }, [['oauth-callback', 'connection.create']])
      await audited({ method: 'GET', url: `${base}/connections`, headers: bearer(admin.token) }, [[`api-key:${admin.id}`, 'connections.read']])
      await audited({ method: 'DELETE', url: `${base}/connections/oura`, headers: adminHeaders }, [['admin-token:admin', 'connection.delete']])

      // Refused or invalid requests read nothing and change nothing: no record.
      await audited({ method: 'GET', url: `${base}/events` }, [])
      await audited({ method: 'GET', url: `${base}/latest`, headers: bearer(deviceToken) }, [])
      await audited({ method: 'POST', url: `${base}/devices`, headers: bearer(reader.token) }, [])
      await audited({ method: 'GET', url: `${base}/events?limit=0`, headers: bearer(reader.token) }, [])
      // API key create/revoke exist only in the CLI: test/cli/cli.int.test.ts ('api-keys create prints a key once …').
    })

    test('the application\'s own database handle cannot UPDATE, DELETE or TRUNCATE the audit log (A4)', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      await call(app, { method: 'POST', url: '/v1/users/append-only/devices', headers: harness.adminHeaders })
      const snapshot = async (): Promise<string> =>
        JSON.stringify((await app.db.query('SELECT id::text, principal, action, subject, detail FROM audit_log ORDER BY id')).rows)
      const before = await snapshot()
      assert.ok(before.includes('device.create'))
      for (const statement of [
        "UPDATE audit_log SET principal = 'someone-else'", 'DELETE FROM audit_log', 'TRUNCATE audit_log'
      ]) {
        await assert.rejects(app.db.query(statement), statement)
        await assert.rejects(app.db.transaction((tx) => tx.query(statement)), `${statement} in a transaction`)
      }
      assert.equal(await snapshot(), before, 'nothing changed')
    })
  })
}

describe('secrets in what a Kafka consumer sees (S1)', () => {
  test('message keys and headers carry no secret, token or provider user id; the key is always the event\'s own user', async (t) => {
    if (!(await requireKafka(t))) return
    const { topic, env } = testTopics()
    const oura = await startTestOuraSimulator(t)
    const providerUserId = `canary-oura-member-${randomBytes(4).toString('hex')}`
    recordCanary(providerUserId)
    oura.addUser({ userId: providerUserId, days: 1 })
    const harness = await buildTestApp(t, 'pglite', { ...ouraEnv(oura, { BACKFILL_DAYS: '1' }), ...env }, { providerTuning: FAST_TUNING })
    if (harness === undefined) return
    const { app } = harness
    // By contract the key IS the app's user id and the value carries PHI for the consumers that need it, so
    // neither is scanned for the user id: these users are not canaries. What must never be in keys or headers
    // are secrets, tokens, credentials and the provider's user id (design §6: user_id is never the provider's).
    const healthkitUser = 'kafka-scan-healthkit-user'
    const ouraUser = 'kafka-scan-oura-user'
    const headers = await harness.deviceHeaders(healthkitUser)
    assert.equal((await call(app, { method: 'POST', url: '/v1/healthkit/batch', headers, payload: batch([heartRate(0), heartRate(1)]) })).statusCode, 200)
    await connectOura(harness, ouraUser, providerUserId)
    await drainReceipts(app.db)
    const { rows } = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')
    const expected = Number(rows[0]!.n)
    assert.ok(expected > 2, 'provider events were stored too')

    const messages = await readTopic(topic, expected, 30_000)
    assert.equal(messages.length, expected)
    captureForScan('kafka-keys-headers', messages.map((message) => JSON.stringify({ key: message.key, headers: message.headers })).join('\n'))
    for (const message of messages) {
      const event = JSON.parse(message.value) as { user_id: string, source: string }
      assert.equal(message.key, event.user_id, 'the partition key is the event\'s own user')
      assert.ok([healthkitUser, ouraUser].includes(event.user_id))
      assert.ok(!message.value.includes(providerUserId), 'the provider\'s user id never replaces or joins the app\'s')
      const visible = JSON.stringify({ key: message.key, headers: message.headers })
      for (const form of canaryForms(providerUserId)) assert.ok(!visible.includes(form))
    }
    assert.deepEqual(new Set(messages.map((message) => (JSON.parse(message.value) as { source: string }).source)), new Set(['healthkit', 'oura']))
    // S2: the provider's user id is an identifier too; the pipeline that just ran under it logged none of it.
    const log = readFileSync(join(TEST_LOG_DIR, `app-${process.pid}.log`), 'utf8')
    assert.ok(log.includes('provider connected'))
    for (const form of canaryForms(providerUserId)) assert.ok(!log.includes(form), 'a provider user id in the log')
  })
})

/**
 * A token endpoint in front of the Oura simulator that refuses every refresh with an error body repeating the
 * refresh token it was sent, in each place a provider might put it; everything else is passed through.
 */
async function startEchoingTokenEndpoint(t: TestContext, upstream: string): Promise<{ url: string, refreshes: string[] }> {
  const echoes = [
    (token: string) => ({
      status: 400, body: JSON.stringify({ error: 'invalid_request', error_description: `refresh_token ${token} is malformed`, refresh_token: token })
    }),
    (token: string) => ({ status: 401, body: JSON.stringify({ error: token, error_description: token }) }),
    (token: string) => ({ status: 500, body: `token endpoint failed for refresh_token=${token}` }),
    (token: string) => ({ status: 429, body: JSON.stringify({ detail: `too many refreshes of ${token}` }) })
  ]
  const refreshes: string[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks)
      const form = new URLSearchParams(body.toString('utf8'))
      if (request.method === 'POST' && request.url === '/oauth/token' && form.get('grant_type') === 'refresh_token') {
        const token = form.get('refresh_token') ?? ''
        const echo = echoes[refreshes.length % echoes.length]!(token)
        refreshes.push(token)
        response.writeHead(echo.status, { 'content-type': 'application/json' }).end(echo.body)
        return
      }
      const forwarded = Object.fromEntries(Object.entries(request.headers)
        .filter(([name]) => !['host', 'connection', 'content-length', 'transfer-encoding'].includes(name))
        .map(([name, value]) => [name, String(value)]))
      fetch(`${upstream}${request.url}`, {
        method: request.method!, headers: forwarded, ...(request.method === 'GET' || request.method === 'HEAD' ? {} : { body })
      }).then(async (answer) => {
        const headers = Object.fromEntries([...answer.headers]
          .filter(([name]) => !['content-encoding', 'content-length', 'transfer-encoding', 'connection'].includes(name)))
        response.writeHead(answer.status, headers).end(Buffer.from(await answer.arrayBuffer()))
      }).catch(() => response.writeHead(502).end())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, refreshes }
}

describe('token endpoint failures (S3)', () => {
  test('a refresh refused with an error body that repeats the refresh token never puts it in a log, error or record', async (t) => {
    const oura = await startTestOuraSimulator(t)
    oura.addUser({ userId: 'oura-echo-member', days: 1 })
    const endpoint = await startEchoingTokenEndpoint(t, oura.baseUrl)
    const harness = await buildTestApp(t, 'pglite', ouraEnv(oura, { BACKFILL_DAYS: '0', OURA_API_URL: endpoint.url }), { providerTuning: FAST_TUNING })
    if (harness === undefined) return
    const { app } = harness
    await connectOura(harness, 'echo-user', 'oura-echo-member')

    // Every access token now answers 401: the worker refreshes, and every refresh is refused with an echo.
    oura.expireAccessTokens()
    await app.db.transaction((tx) => enqueueRange(tx, {
      provider: 'oura', providerUserId: 'oura-echo-member', dataTypes: ['daily_readiness'], kind: 'reconcile', endMs: Date.now(), days: 1, dedupSuffix: 'echo'
    }))
    const deadline = Date.now() + 15_000
    while (endpoint.refreshes.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
    assert.ok(endpoint.refreshes.length >= 4, `every kind of echo was answered (${endpoint.refreshes.length} refreshes)`)
    const presented = [...new Set(endpoint.refreshes)]

    // What the bridge made of them: codes on the receipt, nothing else.
    const { rows } = await app.db.query<{ dump: string }>('SELECT row_to_json(webhook_receipts)::text AS dump FROM webhook_receipts')
    assert.ok(rows.some((row) => row.dump.includes('BB_TOKEN_REFRESH_BUSY')))
    const log = readFileSync(join(TEST_LOG_DIR, `app-${process.pid}.log`), 'utf8')
    assert.ok(log.includes('receipt will be retried'), 'the failures were logged')
    for (const token of presented) {
      for (const form of canaryForms(token)) {
        assert.ok(!log.includes(form), 'the echoed refresh token reached the log')
        for (const row of rows) assert.ok(!row.dump.includes(form))
      }
    }

    // The errors themselves, as any caller could log or show them: neither message nor description repeats it.
    for (let kind = 0; kind < 4; kind++) {
      const token = `canary-refresh-${randomBytes(12).toString('base64url')}`
      recordCanary(token)
      const error = await refreshOuraToken(app.config.oura!, token, Date.now()).then(() => undefined, (failure: unknown) => failure)
      assert.ok(error instanceof Error, `kind ${kind} failed`)
      // As the token manager wraps it before the receipt worker logs it.
      const wrapped = new BridgeError('BB_TOKEN_REFRESH_BUSY', 'oura token refresh failed', { cause: error })
      const visible = `${error.message} ${JSON.stringify(describeError(error))} ${JSON.stringify(describeError(wrapped))}`
      for (const form of canaryForms(token)) assert.ok(!visible.includes(form), `kind ${kind}: the error repeats the refresh token`)
    }
  })
})
