import type { Config } from '../config/load.ts'
import type { Database } from './database.ts'
import { createPgliteDatabase } from './pglite.ts'
import { createPostgresDatabase } from './postgres.ts'

/** Real PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise (design §2.6). */
export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolSize'>): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return createPostgresDatabase({ url: config.databaseUrl, poolSize: config.dbPoolSize })
  }
  return createPgliteDatabase(config.dataDir)
}
