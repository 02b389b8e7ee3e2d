import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import pg from 'pg'
import { createPgliteDatabase } from '../../src/storage/pglite.ts'
import type { Database } from '../../src/storage/database.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'

/**
 * Real services for integration tests. Outside CI an unreachable service skips its tests with a loud
 * message; with CI=true it fails them, so a broken pipeline can never pass by skipping.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const IN_CI = process.env.CI === 'true'

let postgresReachable: Promise<string | undefined> | undefined

/** Resolves to undefined when reachable, otherwise to the reason. Cached per process. */
function checkPostgres(): Promise<string | undefined> {
  postgresReachable ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 })
    try {
      await client.connect()
      await client.query('SELECT 1')
      return undefined
    } catch (error) {
      return (error as Error).message
    } finally {
      await client.end().catch(() => {})
    }
  })()
  return postgresReachable
}

/**
 * Skips (locally) or fails (CI) the test when PostgreSQL is unreachable. Returns false when the test must stop.
 */
export async function requirePostgres(t: TestContext): Promise<boolean> {
  return requireService(t, await checkPostgres(), 'PostgreSQL at TEST_DATABASE_URL', 'bash scripts/services.sh up')
}

/**
 * The one rule for every real service: reachable → run; unreachable → skip loudly, or fail with CI=true so a
 * broken pipeline can never pass by skipping. Returns false when the test must stop.
 */
export function requireService(t: TestContext, unreachableReason: string | undefined, service: string, startHint: string): boolean {
  if (unreachableReason === undefined) return true
  const message = `${service} is unreachable (${unreachableReason}); start it with: ${startHint}`
  if (IN_CI) throw new Error(`${message}; CI=true requires it`)
  process.stderr.write(`\n!!! SKIPPING: ${message}\n`)
  t.skip(message)
  return false
}

const cleanupStacks = new WeakMap<TestContext, Array<() => Promise<void> | void>>()

/**
 * Registers cleanup that runs in reverse order of registration (node:test runs `t.after` hooks first-in,
 * first-out): an app built on a scratch database must stop before the database is dropped under it.
 */
export function deferCleanup(t: TestContext, cleanup: () => Promise<void> | void): void {
  let stack = cleanupStacks.get(t)
  if (stack === undefined) {
    const created: Array<() => Promise<void> | void> = []
    stack = created
    cleanupStacks.set(t, created)
    t.after(async () => {
      while (created.length > 0) await created.pop()!()
    })
  }
  stack.push(cleanup)
}

/** Creates an empty database for one test and drops it afterwards; returns its URL. */
export async function createScratchDatabase(t: TestContext): Promise<string> {
  const name = `bb_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  deferCleanup(t, async () => {
    const dropper = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await dropper.connect()
    await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await dropper.end()
  })
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** Redis of the integration tests; tests isolate themselves with a random key prefix each. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

let redisReachable: Promise<string | undefined> | undefined

function checkRedis(): Promise<string | undefined> {
  redisReachable ??= (async () => {
    const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 3000, enableOfflineQueue: false, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      return undefined
    } catch (error) {
      return (error as Error).message
    } finally {
      client.disconnect()
    }
  })()
  return redisReachable
}

/** Skips (locally) or fails (CI) the test when Redis is unreachable. Returns false when the test must stop. */
export async function requireRedis(t: TestContext): Promise<boolean> {
  return requireService(t, await checkRedis(), 'Redis at TEST_REDIS_URL', 'bash scripts/services.sh up')
}

/** A random key prefix for one test; every key under it is deleted after the test. */
export function redisKeyPrefix(t: TestContext, url = TEST_REDIS_URL): string {
  const prefix = `bb-test-${randomBytes(6).toString('hex')}:`
  t.after(async () => {
    const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      let cursor = '0'
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (found.length > 0) await client.unlink(...found)
        cursor = next
      } while (cursor !== '0')
    } catch {
      // A test that stopped its own Redis has nothing left to clean.
    } finally {
      client.disconnect()
    }
  })
  return prefix
}

export type AdapterName = 'pglite' | 'postgres'
export const ADAPTERS: readonly AdapterName[] = ['pglite', 'postgres']

export interface DatabaseTarget {
  /** Env overrides that make the app use this adapter. */
  env: Record<string, string>
}

/**
 * Prepares storage for an app under test: an in-memory PGlite, or a scratch PostgreSQL database.
 * Returns undefined when the test was skipped.
 */
export async function databaseTarget(t: TestContext, adapter: AdapterName): Promise<DatabaseTarget | undefined> {
  if (adapter === 'pglite') return { env: { DATA_DIR: 'memory://' } }
  if (!(await requirePostgres(t))) return undefined
  return { env: { DATABASE_URL: await createScratchDatabase(t) } }
}

/** A bare, migrated-or-not Database on the given adapter, closed after the test. */
export async function openTestDatabase(t: TestContext, adapter: AdapterName): Promise<Database | undefined> {
  let db: Database
  if (adapter === 'pglite') {
    db = await createPgliteDatabase('memory://')
  } else {
    if (!(await requirePostgres(t))) return undefined
    db = createPostgresDatabase({ url: await createScratchDatabase(t), poolSize: 4 })
  }
  deferCleanup(t, () => db.close())
  return db
}
