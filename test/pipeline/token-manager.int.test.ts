import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import pino from 'pino'
import { createAudit } from '../../src/auth/audit.ts'
import { createPseudonymizer } from '../../src/auth/secrets.ts'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { loadConfig } from '../../src/config/load.ts'
import { isBridgeError } from '../../src/errors.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { createMemoryCoordination } from '../../src/cache/coordination.ts'
import { createTokenManager, type TokenManager } from '../../src/pipeline/token-manager.ts'
import { refreshOuraToken } from '../../src/providers/oura/oauth.ts'
import { refreshWhoopToken } from '../../src/providers/whoop/oauth.ts'
import type { WhoopSimulator } from '../../src/simulators/whoop/server.ts'
import type { WhoopTokenStats } from '../../src/simulators/whoop/oauth.ts'
import { startTestWhoopSimulator, whoopEnv } from '../helpers/whoop.ts'
import type { OuraSimulator } from '../../src/simulators/oura/index.ts'
import {
  loadConnection, saveConnection, takeRefreshLease, type LoadedConnection
} from '../../src/storage/connections-repository.ts'
import type { Database } from '../../src/storage/database.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { BASE_TEST_ENV } from '../helpers/app.ts'
import { ouraEnv, startTestOuraSimulator } from '../helpers/oura.ts'
import { ADAPTERS, openTestDatabase, type AdapterName } from '../helpers/services.ts'

const OURA_USER = 'oura-token-user'
const USER = 'token-user'

interface Setup {
  sim: OuraSimulator
  db: Database
  manager: (overrides?: { leaseMs?: number, refreshMarginMs?: number }) => TokenManager
  connection: () => Promise<LoadedConnection>
}

async function setup(t: TestContext, adapter: AdapterName): Promise<Setup | undefined> {
  const db = await openTestDatabase(t, adapter)
  if (db === undefined) return undefined
  await migrate(db)
  const sim = await startTestOuraSimulator(t)
  sim.addUser({ userId: OURA_USER, days: 1 })
  const config = loadConfig({ ...BASE_TEST_ENV, ...ouraEnv(sim) })
  const cipher = createTokenCipher(config.tokenEncryptionKeys!)
  const issued = sim.issueTokens(OURA_USER)
  await saveConnection(db, cipher, {
    userId: USER, provider: 'oura', providerUserId: OURA_USER, scopes: ['daily'],
    tokens: { accessToken: issued.access_token, refreshToken: issued.refresh_token, accessExpiresAt: new Date(Date.now() + issued.expires_in * 1000) }
  })
  const metrics = createMetrics()
  const pseudonymize = createPseudonymizer(config.logPseudonymKey!)
  return {
    sim,
    db,
    manager: (overrides = {}) => createTokenManager({
      db, cipher, metrics, audit: createAudit(pseudonymize, metrics), logger: pino({ level: 'silent' }), pseudonymize,
      holder: `test-${Math.random()}`, refreshers: { oura: (token) => refreshOuraToken(config.oura!, token, Date.now()) },
      locks: createMemoryCoordination(Date.now), now: Date.now, pollMs: 5, waitLimitMs: 5000, ...overrides
    }),
    connection: async () => (await loadConnection(db, cipher, USER, 'oura'))!
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'resolved'
  } catch (error) {
    return isBridgeError(error) ? error.code : String(error)
  }
}

for (const adapter of ADAPTERS) {
  describe(`token manager (${adapter})`, () => {
    test('concurrent renewals of one token in one process spend one refresh token; all get the new pair', async (t) => {
      const context = await setup(t, adapter)
      if (context === undefined) return
      const stale = await context.connection()
      const managers = [context.manager(), context.manager()]
      const renewed = await Promise.all(Array.from({ length: 20 }, (_, i) => managers[i % 2]!.renew(stale)))
      assert.equal(context.sim.tokenStats(OURA_USER).refreshCalls, 1)
      assert.equal(new Set(renewed.map((connection) => connection.accessToken)).size, 1, 'everyone uses the one new token')
      const stored = await context.connection()
      assert.equal(stored.accessToken, renewed[0]!.accessToken, 'the new token was committed before use')
      assert.equal(stored.tokenVersion, stale.tokenVersion + 1)
    })

    test('fresh() refreshes only inside the margin before expiry', async (t) => {
      const context = await setup(t, adapter)
      if (context === undefined) return
      const connection = await context.connection()
      assert.equal(await context.manager().fresh(connection), connection, 'a day of validity left: no refresh')
      const refreshed = await context.manager({ refreshMarginMs: 2 * 86_400_000 }).fresh(connection)
      assert.notEqual(refreshed.accessToken, connection.accessToken)
      assert.equal(context.sim.tokenStats(OURA_USER).refreshCalls, 1)
    })

    test('an outage at the token endpoint is retryable and keeps the refresh token unspent', async (t) => {
      const context = await setup(t, adapter)
      if (context === undefined) return
      const connection = await context.connection()
      context.sim.faults.serverErrors({ next: 1, status: 503, on: ['oauth'] })
      assert.equal(await codeOf(context.manager().renew(connection)), 'BB_TOKEN_REFRESH_BUSY')
      const renewed = await context.manager().renew(connection)
      assert.notEqual(renewed.accessToken, connection.accessToken, 'the lease was given back and the next attempt worked')
      assert.equal((await context.connection()).status, 'active')
    })

    test('a refresher dying between the token response and its commit ends in reauth_required, not a loop', async (t) => {
      const context = await setup(t, adapter)
      if (context === undefined) return
      const connection = await context.connection()
      // The "dead" process: took the lease, spent the refresh token at Oura, never committed the new pair.
      assert.ok(await takeRefreshLease(context.db, connection.id, connection.tokenVersion, 'dead-node', 100))
      const config = loadConfig({ ...BASE_TEST_ENV, ...ouraEnv(context.sim) })
      await refreshOuraToken(config.oura!, connection.refreshToken!, Date.now())

      const manager = context.manager()
      assert.equal(await codeOf(manager.renew(connection)), 'BB_REAUTH_REQUIRED', 'after the lease lapsed, the spent token is refused')
      assert.equal(await codeOf(manager.renew(connection)), 'BB_REAUTH_REQUIRED', 'and later attempts do not call Oura again')
      const stats = context.sim.tokenStats(OURA_USER)
      assert.equal(stats.refreshCalls, 2, 'the dead node\'s refresh and exactly one refused retry')
      const { rows } = await context.db.query<{ status: string, access_token_enc: Uint8Array | null }>(
        "SELECT status, access_token_enc FROM connections WHERE user_id = 'token-user'")
      assert.deepEqual(rows.map((row) => [row.status, row.access_token_enc]), [['reauth_required', null]])
      const { rows: audit } = await context.db.query<{ action: string }>("SELECT action FROM audit_log WHERE action = 'connection.reauth_required'")
      assert.equal(audit.length, 1)
    })
  })
}

const WHOOP_MEMBER = '4560009876543'

interface WhoopSetup {
  sim: WhoopSimulator
  db: Database
  /** A token manager as one process has it; `lockDown` makes its lock service fail like an unreachable Redis. */
  manager: (options?: { lockDown?: boolean }) => TokenManager
  connection: () => Promise<LoadedConnection>
  refresh: (refreshToken: string) => Promise<unknown>
}

async function setupWhoop(t: TestContext, adapter: AdapterName): Promise<WhoopSetup | undefined> {
  const db = await openTestDatabase(t, adapter)
  if (db === undefined) return undefined
  await migrate(db)
  const sim = await startTestWhoopSimulator(t)
  sim.addUser({ userId: WHOOP_MEMBER, days: 1 })
  const config = loadConfig({ ...BASE_TEST_ENV, ...whoopEnv(sim) })
  const cipher = createTokenCipher(config.tokenEncryptionKeys!)
  const issued = sim.issueTokens(WHOOP_MEMBER)
  await saveConnection(db, cipher, {
    userId: USER, provider: 'whoop', providerUserId: WHOOP_MEMBER, scopes: ['offline'],
    tokens: { accessToken: issued.access_token, refreshToken: issued.refresh_token ?? null, accessExpiresAt: new Date(Date.now() + issued.expires_in * 1000) }
  })
  const metrics = createMetrics()
  const pseudonymize = createPseudonymizer(config.logPseudonymKey!)
  const refresh = (token: string) => refreshWhoopToken(config.whoop!, token, Date.now())
  const unreachable = { tryLock: () => Promise.reject(new Error('redis down')), unlock: () => Promise.reject(new Error('redis down')) }
  return {
    sim,
    db,
    refresh,
    manager: (options = {}) => createTokenManager({
      db, cipher, metrics, audit: createAudit(pseudonymize, metrics), logger: pino({ level: 'silent' }), pseudonymize,
      holder: `test-${Math.random()}`, refreshers: { whoop: refresh },
      locks: options.lockDown === true ? unreachable : createMemoryCoordination(Date.now), now: Date.now, pollMs: 5, waitLimitMs: 5000
    }),
    connection: async () => (await loadConnection(db, cipher, USER, 'whoop'))!
  }
}

for (const adapter of ADAPTERS) {
  describe(`token manager with WHOOP's rotating refresh tokens (${adapter})`, () => {
    test('25 attempts from three processes with their lock service down: the row lease alone allows one refresh', async (t) => {
      const context = await setupWhoop(t, adapter)
      if (context === undefined) return
      for (let round = 0; round < 5; round++) {
        const stale = await context.connection()
        const managers: TokenManager[] = [context.manager({ lockDown: true }), context.manager({ lockDown: true }), context.manager({ lockDown: true })]
        const renewed: LoadedConnection[] = await Promise.all(Array.from({ length: 25 }, (_, i) => managers[i % 3]!.renew(stale)))
        const stats: WhoopTokenStats = context.sim.tokenStats(WHOOP_MEMBER)
        assert.deepEqual([stats.refreshCalls, stats.refreshReuses, stats.familiesRevoked], [round + 1, 0, 0], `round ${round}`)
        assert.equal(new Set(renewed.map((connection) => connection.accessToken)).size, 1, 'all 25 use the one new token')
        assert.equal((await context.connection()).refreshToken, renewed[0]!.refreshToken, 'the rotated refresh token was committed')
      }
    })

    test('a refresher dying after WHOOP rotated the token ends in reauth_required, not a loop (WHOOP revoked the family)', async (t) => {
      const context = await setupWhoop(t, adapter)
      if (context === undefined) return
      const connection = await context.connection()
      assert.ok(await takeRefreshLease(context.db, connection.id, connection.tokenVersion, 'dead-node', 100))
      await context.refresh(connection.refreshToken!)
      const manager = context.manager()
      assert.equal(await codeOf(manager.renew(connection)), 'BB_REAUTH_REQUIRED')
      assert.equal(await codeOf(manager.renew(connection)), 'BB_REAUTH_REQUIRED', 'no second try at WHOOP')
      const stats = context.sim.tokenStats(WHOOP_MEMBER)
      assert.deepEqual([stats.refreshCalls, stats.refreshReuses, stats.familiesRevoked], [2, 1, 1])
      const { rows } = await context.db.query<{ status: string }>("SELECT status FROM connections WHERE provider = 'whoop'")
      assert.deepEqual(rows.map((row) => row.status), ['reauth_required'])
    })
  })
}
