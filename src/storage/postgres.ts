import pg from 'pg'
import { BridgeError } from '../errors.ts'
import type { Database, Queryable, QueryResult, TransactionOptions } from './database.ts'

export interface PostgresOptions {
  url: string
  poolSize: number
  /**
   * Deadline of one statement, in milliseconds (default 5000). PostgreSQL enforces it (`statement_timeout`);
   * the bridge gives up on its own shortly after, because a hung link or a stopped server never answers.
   */
  statementTimeoutMs?: number
  /** How long to wait for a free or new connection, in milliseconds, before answering 503. */
  connectTimeoutMs?: number
}

const DEFAULT_STATEMENT_TIMEOUT_MS = 5000
/**
 * The client-side deadline is this much later than the server-side one, so that a server that is alive cancels
 * the statement itself (57014: the connection stays usable) and only a silent server or link trips the client's.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 500
/** pg's message when its client-side `query_timeout` fires; stable across pg 8.x. */
const CLIENT_TIMEOUT_MESSAGE = 'Query read timeout'

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
  // pg reports pool and socket loss, and its own query deadline, with these messages and no code; they are
  // stable across pg 8.x.
  const message = (error as { message?: unknown }).message
  return isClientTimeout(error) || (typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message))
}

/** Whether pg gave up on a statement client-side: the statement may still run, the connection is unusable. */
function isClientTimeout(error: unknown): boolean {
  const raw = error instanceof BridgeError ? error.cause : error
  return raw instanceof Error && raw.message === CLIENT_TIMEOUT_MESSAGE
}

function classify(error: unknown): unknown {
  if (isUnavailable(error)) return new BridgeError('BB_STORAGE_UNAVAILABLE', 'database unavailable', { cause: error, retryAfterSeconds: 5 })
  return error
}

/** pg honours a per-query `query_timeout` (its client-side deadline, ms), though its type definitions omit it. */
type TimedQuery = pg.QueryConfig & { query_timeout?: number }

function timed(text: string, values: unknown[] | undefined, queryTimeoutMs: number | undefined): TimedQuery {
  const query: TimedQuery = { text }
  // Without values pg uses the simple protocol, which runs multi-statement scripts (exec).
  if (values !== undefined) query.values = values
  if (queryTimeoutMs !== undefined) query.query_timeout = queryTimeoutMs
  return query
}

/** `queryTimeoutMs` undefined: no client-side deadline (migrations). */
function adapt(client: pg.Pool | pg.PoolClient, queryTimeoutMs: number | undefined): Queryable {
  const run = async (text: string, values: unknown[] | undefined): Promise<pg.QueryResult> => {
    try {
      return await client.query(timed(text, values, queryTimeoutMs))
    } catch (error) {
      throw classify(error)
    }
  }
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const result = await run(sql, [...params])
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 }
    },
    async exec(sql: string): Promise<void> {
      await run(sql, undefined)
    }
  }
}

export function createPostgresDatabase(options: PostgresOptions): Database {
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS
  const queryTimeoutMs = statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    // Server side, per session. The client-side deadline is passed per query (adapt), not here, so that a
    // transaction can lift it (migrations).
    statement_timeout: statementTimeoutMs,
    application_name: 'biometric-bridge'
  })
  // An idle client losing its connection (database restart) must not crash the process: the pool drops it
  // and the next query reconnects.
  pool.on('error', () => {})
  // pool.query releases its client with the error when a query fails, so a client whose statement timed out
  // client-side (still busy on a silent socket) is destroyed rather than handed to the next request.
  const root = adapt(pool, queryTimeoutMs)
  return {
    kind: 'postgres',
    query: root.query,
    exec: root.exec,
    async transaction<T>(work: (tx: Queryable) => Promise<T>, transactionOptions: TransactionOptions = {}): Promise<T> {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (error) {
        throw classify(error)
      }
      const own = transactionOptions.statementTimeoutMs
      const tx = adapt(client, own === undefined ? queryTimeoutMs : own === 0 ? undefined : own + CLIENT_TIMEOUT_MARGIN_MS)
      let broken: unknown
      try {
        await tx.query('BEGIN')
        if (own !== undefined) await tx.query(`SET LOCAL statement_timeout = ${Math.max(0, Math.trunc(own))}`)
        const result = await work(tx)
        await tx.query('COMMIT')
        return result
      } catch (error) {
        if (isClientTimeout(error)) {
          // The connection still owes the answer to a statement we gave up on: a ROLLBACK would queue behind it
          // and wait out another deadline. Closing the connection makes PostgreSQL roll the transaction back.
          broken = error
        } else {
          try {
            await client.query(timed('ROLLBACK', undefined, queryTimeoutMs))
          } catch (rollbackError) {
            broken = rollbackError
          }
        }
        throw classify(error)
      } finally {
        // A client whose rollback failed or timed out is in an unknown state; destroying it keeps the pool healthy.
        client.release(broken === undefined ? undefined : new Error('transaction ended without a clean rollback'))
      }
    },
    async close(): Promise<void> {
      await pool.end()
    }
  }
}
