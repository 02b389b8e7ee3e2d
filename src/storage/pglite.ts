import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import type { Database, Queryable, QueryResult } from './database.ts'

interface PGliteQueryable {
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[], affectedRows?: number }>
  exec(sql: string): Promise<unknown>
}

function adapt(target: PGliteQueryable): Queryable {
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const result = await target.query<Row>(sql, params as unknown[])
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length }
    },
    async exec(sql: string): Promise<void> {
      await target.exec(sql)
    }
  }
}

/**
 * Embedded PostgreSQL (PGlite, WebAssembly) for single-process use: persistent in `dataDir`, or ephemeral
 * with `memory://`. It has one connection, so transactions run one at a time.
 */
export async function createPgliteDatabase(dataDir: string): Promise<Database> {
  const location = dataDir === 'memory://' ? 'memory://' : `${dataDir.replace(/\/+$/, '')}/pglite`
  if (location !== 'memory://') mkdirSync(location, { recursive: true })
  const db = await PGlite.create(location)
  const root = adapt(db)
  return {
    kind: 'pglite',
    query: root.query,
    exec: root.exec,
    async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      return db.transaction(async (tx) => work(adapt(tx)))
    },
    async close(): Promise<void> {
      await db.close()
    }
  }
}
