/**
 * Scratch PostgreSQL databases for the benchmarks: created on the server of BENCH_DATABASE_URL (or
 * TEST_DATABASE_URL, or the local test server) and dropped at the end of the run.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const createdDatabases: string[] = []

export async function adminQuery<Row extends pg.QueryResultRow = pg.QueryResultRow>(sql: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try {
    return (await client.query<Row>(sql)).rows
  } finally {
    await client.end()
  }
}

/** The URL of a database on the admin server. */
export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** The database name of a URL. */
export const databaseName = (url: string): string => new URL(url).pathname.slice(1)

/** Creates an empty database (or a copy of `template`, which must have no connections) and returns its URL. */
export async function createScratchDatabase(kind: string, template?: string): Promise<string> {
  const name = `bb_bench_${kind}_${randomBytes(4).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`)
  createdDatabases.push(name)
  return databaseUrl(name)
}

/** Drops one scratch database now. */
export async function dropScratchDatabase(url: string): Promise<void> {
  const name = databaseName(url)
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  const index = createdDatabases.indexOf(name)
  if (index !== -1) createdDatabases.splice(index, 1)
}

/** Drops every scratch database of this run (or lists them when `keep`). */
export async function dropScratchDatabases(keep: boolean, log: (message: string) => void): Promise<void> {
  if (keep) {
    if (createdDatabases.length > 0) log(`kept databases: ${createdDatabases.join(', ')}`)
    return
  }
  for (const name of createdDatabases.splice(0)) {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((error: unknown) => {
      log(`could not drop ${name}: ${(error as Error).message}`)
    })
  }
}
