import pg from 'pg'
import { BridgeError } from '../errors.ts'
import type { Database, Queryable, QueryResult } from './database.ts'

export interface PostgresOptions {
  url: string
  poolSize: number
  /** Per-statement limit, in milliseconds; a hung database must not hold requests forever. */
  statementTimeoutMs?: number
  /** How long to wait for a free or new connection, in milliseconds, before answering 503. */
  connectTimeoutMs?: number
}

// SQLSTATE classes and socket errors that mean "the database is not reachable right now": the operation may
// succeed later, so callers answer 503 + Retry-After instead of 500.
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '57014' // query_canceled (statement_timeout)
])
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'])

export function isUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_SOCKET_CODES.has(code)) return true
  }
  // pg reports pool and socket loss with these messages and no code; they are stable across pg 8.x.
  const message = (error as { message?: unknown }).message
  return typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message)
}

function classify(error: unknown): unknown {
  if (isUnavailable(error)) return new BridgeError('BB_STORAGE_UNAVAILABLE', 'database unavailable', { cause: error, retryAfterSeconds: 5 })
  return error
}

function adapt(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      try {
        const result = await client.query(sql, params as unknown[])
        return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 }
      } catch (error) {
        throw classify(error)
      }
    },
    async exec(sql: string): Promise<void> {
      try {
        await client.query(sql)
      } catch (error) {
        throw classify(error)
      }
    }
  }
}

export function createPostgresDatabase(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    application_name: 'biometric-bridge'
  })
  // An idle client losing its connection (database restart) must not crash the process: the pool drops it
  // and the next query reconnects.
  pool.on('error', () => {})
  const root = adapt(pool)
  return {
    kind: 'postgres',
    query: root.query,
    exec: root.exec,
    async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (error) {
        throw classify(error)
      }
      let broken: unknown
      try {
        await client.query('BEGIN')
        const result = await work(adapt(client))
        await client.query('COMMIT')
        return result
      } catch (error) {
        try {
          await client.query('ROLLBACK')
        } catch (rollbackError) {
          broken = rollbackError
        }
        throw classify(error)
      } finally {
        // A client whose rollback failed is in an unknown state; destroying it keeps the pool healthy.
        client.release(broken === undefined ? undefined : new Error('rollback failed'))
      }
    },
    async close(): Promise<void> {
      await pool.end()
    }
  }
}
