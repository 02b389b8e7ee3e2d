import assert from 'node:assert/strict'
import { connect, createServer, type Socket } from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import pg from 'pg'
import { listMigrations } from '../../src/storage/migrate.ts'
import { runBridge } from '../helpers/bridge-process.ts'
import { CANARY } from '../helpers/canaries.ts'
import { createScratchDatabase, requirePostgres, TEST_DATABASE_URL } from '../helpers/services.ts'

const ROUNDS = 3
const MIGRATORS = 2
/** If a migrator never connects, the others are let through anyway so the test fails on output, not a hang. */
const GATE_FALLBACK_MS = 15_000

interface Gate {
  port: number
  connections(): number
}

/**
 * A TCP proxy to PostgreSQL that holds every connection until `expected` have arrived, then lets them all
 * through at once: separately started processes reach the database at the same instant, so their migrations
 * really race instead of merely starting close together.
 */
async function startGate(t: TestContext, expected: number): Promise<Gate> {
  const target = new URL(TEST_DATABASE_URL)
  const held: Socket[] = []
  const open = new Set<Socket>()
  let released = false
  let count = 0
  const release = (): void => {
    released = true
    for (const client of held.splice(0)) pass(client)
  }
  const pass = (client: Socket): void => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    open.add(upstream)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    // Bytes the client sent while held (its startup message) wait in the paused socket and flow now.
    client.pipe(upstream).pipe(client)
  }
  const server = createServer({ pauseOnConnect: true }, (client) => {
    count++
    open.add(client)
    client.on('error', () => { client.destroy() })
    if (released) {
      pass(client)
      return
    }
    held.push(client)
    if (held.length >= expected) release()
  })
  const fallback = setTimeout(release, GATE_FALLBACK_MS)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => {
    clearTimeout(fallback)
    for (const socket of open) socket.destroy()
    server.close(() => resolve())
  }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('gate has no port')
  return { port: address.port, connections: () => count }
}

describe('migrate: concurrent processes (PostgreSQL)', { timeout: 120_000 }, () => {
  test('two `bridge migrate` processes racing on a fresh database: both succeed, one applies, each migration once', async (t) => {
    if (!(await requirePostgres(t))) return
    const versions = listMigrations().map((m) => m.version)

    for (let round = 0; round < ROUNDS; round++) {
      const url = new URL(await createScratchDatabase(t))
      const gate = await startGate(t, MIGRATORS)
      const gated = new URL(url)
      gated.hostname = '127.0.0.1'
      gated.port = String(gate.port)
      const env = { DATABASE_URL: gated.toString(), TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey, LOG_PSEUDONYM_KEY: CANARY.pseudonymKey }

      const results = await Promise.all(Array.from({ length: MIGRATORS }, () => runBridge(['migrate'], env, { logName: 'migrate-concurrent' })))
      const report = results.map((r) => `exit ${r.code ?? r.signal}: ${r.stdout}${r.stderr}`).join('\n')
      assert.ok(gate.connections() >= MIGRATORS, `every migrator went through the gate (round ${round})`)
      assert.deepEqual(results.map((r) => r.code), Array<number>(MIGRATORS).fill(0), `round ${round}:\n${report}`)
      assert.deepEqual(results.map((r) => r.stderr), Array<string>(MIGRATORS).fill(''), report)
      assert.deepEqual(results.map((r) => r.stdout).sort(), [
        `applied migrations: ${versions.join(', ')}\n`,
        ...Array<string>(MIGRATORS - 1).fill('database is up to date\n')
      ], `exactly one process applies the migrations (round ${round}):\n${report}`)

      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      try {
        const { rows } = await client.query<{ version: number, n: number }>(
          'SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version')
        assert.deepEqual(rows, versions.map((version) => ({ version, n: 1 })), 'one schema_migrations row per migration')
        const { rows: tables } = await client.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('events', 'outbox', 'api_keys')")
        assert.equal(tables[0]?.n, 3, 'the schema exists')
      } finally {
        await client.end()
      }
    }
  })
})
