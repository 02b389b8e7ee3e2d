import type { Config } from '../config/load.ts'
import type { Database } from './database.ts'
import { createPgliteDatabase } from './pglite.ts'
import { createPostgresDatabase } from './postgres.ts'

/** Real PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise (design §2.6). */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolSize' | 'dbStatementTimeoutMs'>
): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    // One deadline for both waits a request can meet (a pooled connection, then each statement), so a hung
    // database answers 503 after about DB_STATEMENT_TIMEOUT_MS whichever wait it hangs in.
    return createPostgresDatabase({
      url: config.databaseUrl, poolSize: config.dbPoolSize,
      statementTimeoutMs: config.dbStatementTimeoutMs, connectTimeoutMs: config.dbStatementTimeoutMs
    })
  }
  return createPgliteDatabase(config.dataDir)
}
