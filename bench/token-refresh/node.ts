/**
 * One "node" of the token refresh benchmark, run as a child process (bench/lib/child.ts): its own PostgreSQL pool
 * on the shared scratch database and one token manager per arm, built as src/pipeline/provider-work.ts builds it
 * (default lease, poll and wait settings), differing only in the lock in front of the row lease:
 * - `redis`: createRedisCoordination on REDIS_URL (a key prefix of this run);
 * - `postgres-only`: createRedisCoordination on a port where nothing listens, so every tryLock throws and the
 *   row lease alone decides (the fallback path while Redis is down);
 * - `single-process`: createMemoryCoordination (one node).
 *
 * Commands: `load { ids }` reads the connections (the copy the attempts start from), `fire { arm, atMs,
 * attempts }` starts attempts[i] concurrent `fresh()` calls on connection i at wall-clock time atMs and answers
 * with what each returned and how long it took.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createAudit } from '../../src/auth/audit.ts'
import { createPseudonymizer } from '../../src/auth/secrets.ts'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { createMemoryCoordination, type Coordination } from '../../src/cache/coordination.ts'
import { createRedisCoordination } from '../../src/cache/redis-coordination.ts'
import type { Config } from '../../src/config/load.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { createTokenManager, type TokenManager } from '../../src/pipeline/token-manager.ts'
import { refreshWhoopToken } from '../../src/providers/whoop/oauth.ts'
import { loadConnectionById, type LoadedConnection } from '../../src/storage/connections-repository.ts'
import type { Database } from '../../src/storage/database.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { ARM_IDS, UNREACHABLE_REDIS_URL, type ArmId, type ConnectionOutcome, type FireReply, type LockCounts } from './protocol.ts'

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is required`)
  return value
}
const node = env('BENCH_NODE')
const now = Date.now
const whoop: NonNullable<Config['whoop']> = {
  clientId: env('WHOOP_CLIENT_ID'), clientSecrets: [env('WHOOP_CLIENT_SECRET')], apiUrl: env('WHOOP_API_URL'),
  requestsPerMinute: 1_000_000, requestsPerDay: 1_000_000_000
}
/** Added before every token request (--token-delay-ms), to stand in for a provider slower than the simulator. */
const tokenDelayMs = Number(process.env.BENCH_TOKEN_DELAY_MS ?? '0')

const elapsedMs = (startedNs: bigint): number => Number(process.hrtime.bigint() - startedNs) / 1e6

// The pool the bridge opens by default (DB_POOL_SIZE 10), with every statement timed.
const pool = createPostgresDatabase({ url: env('DATABASE_URL'), poolSize: 10 })
const statementsMs: number[] = []
const db: Database = {
  ...pool,
  async query(sql, params) {
    const startedNs = process.hrtime.bigint()
    try {
      return await pool.query(sql, params)
    } finally {
      statementsMs.push(elapsedMs(startedNs))
    }
  }
}
const cipher = createTokenCipher([{ kid: 'bench', key: Buffer.from(env('BENCH_TOKEN_KEY'), 'base64') }])
const metrics = createMetrics()
const pseudonymize = createPseudonymizer(randomBytes(16).toString('hex'))
const logger = pino({ level: 'silent' })

const lock: LockCounts = { taken: 0, busy: 0, down: 0 }
const refreshCallsMs: number[] = []
const lockCallsMs: number[] = []
/** Refresh tokens of the loaded connections → connection id, to tell which connections this node refreshed. */
const byRefreshToken = new Map<string, string>()
const refreshedIds = new Set<string>()

function counted(coordination: Coordination): Pick<Coordination, 'tryLock' | 'unlock'> {
  return {
    async tryLock(name, ttlMs) {
      const startedNs = process.hrtime.bigint()
      try {
        const owner = await coordination.tryLock(name, ttlMs)
        if (owner === undefined) lock.busy++
        else lock.taken++
        return owner
      } catch (error) {
        lock.down++
        throw error
      } finally {
        lockCallsMs.push(elapsedMs(startedNs))
      }
    },
    unlock: (name, owner) => coordination.unlock(name, owner)
  }
}

const coordinations: Record<ArmId, Coordination> = {
  redis: await createRedisCoordination({ url: env('REDIS_URL'), logger, now, keyPrefix: env('BENCH_REDIS_PREFIX') }),
  'postgres-only': await createRedisCoordination({ url: UNREACHABLE_REDIS_URL, logger, now }),
  'single-process': createMemoryCoordination(now)
}
const managers = Object.fromEntries(ARM_IDS.map((arm) => [arm, createTokenManager({
  db, cipher, metrics, audit: createAudit(pseudonymize, metrics), logger, pseudonymize, holder: `${node}:${process.pid}:${arm}`,
  refreshers: {
    whoop: async (refreshToken) => {
      const id = byRefreshToken.get(refreshToken)
      if (id !== undefined) refreshedIds.add(id)
      if (tokenDelayMs > 0) await sleep(tokenDelayMs)
      const startedNs = process.hrtime.bigint()
      try {
        return await refreshWhoopToken(whoop, refreshToken, now())
      } finally {
        refreshCallsMs.push(elapsedMs(startedNs))
      }
    }
  },
  locks: counted(coordinations[arm]), now
})])) as Record<ArmId, TokenManager>

let loaded: LoadedConnection[] = []

async function load(ids: readonly string[]): Promise<void> {
  loaded = []
  byRefreshToken.clear()
  for (const id of ids) {
    const connection = await loadConnectionById(db, cipher, id)
    if (connection === undefined) throw new Error(`connection ${id} not found`)
    loaded.push(connection)
    if (connection.refreshToken !== null) byRefreshToken.set(connection.refreshToken, id)
  }
}

async function fire(arm: ArmId, atMs: number, attempts: readonly number[]): Promise<FireReply> {
  const manager = managers[arm]
  const delayMs = atMs - Date.now()
  if (delayMs > 0) await sleep(delayMs)
  const startLagMs = Date.now() - atMs
  lock.taken = lock.busy = lock.down = 0
  refreshCallsMs.length = statementsMs.length = lockCallsMs.length = 0
  refreshedIds.clear()
  // Every attempt is started in this one synchronous loop, before any of them can resolve.
  const pending = loaded.map((connection, i) => Array.from({ length: attempts[i] ?? 0 }, async () => {
    const startedNs = process.hrtime.bigint()
    try {
      const fresh = await manager.fresh(connection)
      return { waitMs: elapsedMs(startedNs), token: fresh.accessToken, error: undefined }
    } catch (error) {
      return { waitMs: elapsedMs(startedNs), token: undefined, error: String(error) }
    }
  }))
  const outcomes: ConnectionOutcome[] = []
  for (const [i, attemptsOfConnection] of pending.entries()) {
    const results = await Promise.all(attemptsOfConnection)
    const id = loaded[i]!.id
    outcomes.push({
      id, waitsMs: results.map((r) => r.waitMs), tokens: results.map((r) => r.token),
      errors: results.flatMap((r) => r.error === undefined ? [] : [r.error]), refreshedHere: refreshedIds.has(id)
    })
  }
  return { type: 'fired', node, startLagMs, outcomes, refreshCallsMs: [...refreshCallsMs], lock: { ...lock },
    statementsMs: [...statementsMs], lockCallsMs: [...lockCallsMs] }
}

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  for (const coordination of Object.values(coordinations)) await coordination.close().catch(() => {})
  await pool.close().catch(() => {})
  process.exit(0)
}

type Command =
  | { type: 'load', ids: string[] }
  | { type: 'fire', arm: ArmId, atMs: number, attempts: number[] }

async function onMessage(message: unknown): Promise<void> {
  if (message === 'stop') return stop()
  const command = message as Command
  if (command.type === 'load') {
    await load(command.ids)
    process.send?.({ type: 'loaded', node })
  } else {
    process.send?.(await fire(command.arm, command.atMs, command.attempts))
  }
}

process.on('message', (message) => {
  onMessage(message).catch((error: unknown) => {
    process.stderr.write(`[${node}] ${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  })
})
process.on('SIGTERM', () => void stop())
process.on('disconnect', () => void stop())
process.send?.({ type: 'listening', address: `${node} (pid ${process.pid})` })
