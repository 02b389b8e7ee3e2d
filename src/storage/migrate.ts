import { readdirSync, readFileSync } from 'node:fs'
import { BridgeError } from '../errors.ts'
import type { Database } from './database.ts'

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url)
/** Arbitrary constant key of the transaction-scoped advisory lock that serializes migrators across nodes. */
const MIGRATION_LOCK_KEY = 7_301_944_211

export interface Migration {
  version: number
  name: string
  sql: string
}

export function listMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8')
    }))
}

/**
 * Applies pending migrations in one transaction. The advisory lock is taken before anything else, so nodes
 * starting together queue up: the first applies, the others then find nothing to do.
 * Returns the versions applied by this call.
 */
export async function migrate(db: Database): Promise<number[]> {
  try {
    // No statement deadline here: a migration may rewrite or index a large table, and a node starting while
    // another migrates waits on the lock for as long as that takes. Both are legitimately longer than
    // DB_STATEMENT_TIMEOUT_MS, which bounds request latency, and cutting them would fail every start-up.
    return await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
      const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations')
      const applied = new Set(rows.map((row) => Number(row.version)))
      const done: number[] = []
      for (const migration of listMigrations()) {
        if (applied.has(migration.version)) continue
        await tx.exec(migration.sql)
        await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
        done.push(migration.version)
      }
      return done
    }, { statementTimeoutMs: 0 })
  } catch (error) {
    if (error instanceof BridgeError) throw error
    throw new BridgeError('BB_MIGRATION_FAILED', 'database migration failed', { cause: error })
  }
}
