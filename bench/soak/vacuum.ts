/**
 * Autovacuum stand-in for servers that run with `autovacuum = off` (the CI server's conf.d/90-ci.conf does).
 *
 * A soak writes hundreds of thousands of rows and updates each receipt several times (claimed, finished); without
 * vacuum the dead tuples pile up in webhook_receipts and its partial "pending" index, every claim wades through
 * more of them, and PostgreSQL's CPU per notification climbs over the run — a growth trend of the test server,
 * not of the bridge, since any production server vacuums. So when autovacuum is off, this applies autovacuum's
 * own rule to the soak's database: every `autovacuum_naptime`, each table past its thresholds (PostgreSQL 15):
 *   VACUUM  when n_dead_tup > autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × reltuples,
 *           or n_ins_since_vacuum > autovacuum_vacuum_insert_threshold + autovacuum_vacuum_insert_scale_factor × reltuples;
 *   ANALYZE when n_mod_since_analyze > autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × reltuples;
 * on a connection of its own, throttled as autovacuum is (vacuum_cost_delay/limit set to the autovacuum values).
 */
import pg from 'pg'

export interface VacuumRun {
  /** Seconds since the vacuumer started. */
  atS: number
  table: string
  kind: 'vacuum' | 'vacuum analyze' | 'analyze'
  ms: number
}

export interface Vacuumer {
  /** Whether the server's own autovacuum is on (then this does nothing). */
  readonly serverAutovacuum: boolean
  /** Checks the thresholds if a naptime has passed; runs in the background, one pass at a time. */
  poke(): void
  /** Waits for a pass in progress and closes the connection. */
  close(): Promise<void>
  runs(): VacuumRun[]
  /** Threshold checks made (one per naptime while active). */
  passes(): number
}

interface Thresholds {
  naptimeMs: number
  vacuumBase: number
  vacuumScale: number
  insertBase: number
  insertScale: number
  analyzeBase: number
  analyzeScale: number
  costDelay: string
  costLimit: string
}

async function thresholds(client: pg.Client): Promise<Thresholds> {
  const { rows } = await client.query<{ name: string, setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum_naptime', 'autovacuum_vacuum_threshold',
       'autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_insert_threshold', 'autovacuum_vacuum_insert_scale_factor',
       'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor', 'autovacuum_vacuum_cost_delay',
       'autovacuum_vacuum_cost_limit', 'vacuum_cost_limit')`)
  const setting = (name: string, fallback: number): number => {
    const value = Number(rows.find((row) => row.name === name)?.setting)
    return Number.isFinite(value) ? value : fallback
  }
  const costLimit = setting('autovacuum_vacuum_cost_limit', -1)
  return {
    // pg_settings gives the naptime in seconds.
    naptimeMs: setting('autovacuum_naptime', 60) * 1000,
    vacuumBase: setting('autovacuum_vacuum_threshold', 50),
    vacuumScale: setting('autovacuum_vacuum_scale_factor', 0.2),
    insertBase: setting('autovacuum_vacuum_insert_threshold', 1000),
    insertScale: setting('autovacuum_vacuum_insert_scale_factor', 0.2),
    analyzeBase: setting('autovacuum_analyze_threshold', 50),
    analyzeScale: setting('autovacuum_analyze_scale_factor', 0.1),
    // In ms; -1 would mean "use vacuum_cost_delay", which autovacuum's default (2 ms) never is.
    costDelay: `${Math.max(0, setting('autovacuum_vacuum_cost_delay', 2))}ms`,
    costLimit: String(costLimit > 0 ? costLimit : setting('vacuum_cost_limit', 200))
  }
}

/** `enabled: false` (the soak's --no-vacuum) leaves the tables alone even when the server does not vacuum. */
export async function startVacuumer(databaseUrl: string, enabled: boolean, log: (message: string) => void): Promise<Vacuumer> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const { rows: [autovacuum] } = await client.query<{ autovacuum: string }>('SHOW autovacuum')
  const serverAutovacuum = autovacuum?.autovacuum === 'on'
  const active = enabled && !serverAutovacuum
  const limits = await thresholds(client)
  if (active) {
    await client.query(`SET vacuum_cost_delay = '${limits.costDelay}'`)
    await client.query(`SET vacuum_cost_limit = ${Number(limits.costLimit)}`)
  }
  const startedMs = performance.now()
  let lastPassMs = startedMs
  let pass: Promise<void> | undefined
  const runs: VacuumRun[] = []
  let passes = 0

  const runPass = async (): Promise<void> => {
    passes++
    const { rows } = await client.query<{ table: string, dead: string, inserted: string, modified: string, tuples: string }>(
      `SELECT s.relname AS table, s.n_dead_tup::text AS dead, s.n_ins_since_vacuum::text AS inserted,
              s.n_mod_since_analyze::text AS modified, greatest(c.reltuples, 0)::text AS tuples
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid`)
    for (const row of rows) {
      const tuples = Number(row.tuples)
      const vacuum = Number(row.dead) > limits.vacuumBase + limits.vacuumScale * tuples ||
        Number(row.inserted) > limits.insertBase + limits.insertScale * tuples
      const analyze = Number(row.modified) > limits.analyzeBase + limits.analyzeScale * tuples
      if (!vacuum && !analyze) continue
      const kind: VacuumRun['kind'] = vacuum && analyze ? 'vacuum analyze' : vacuum ? 'vacuum' : 'analyze'
      const began = performance.now()
      // Table names come from the catalog of our own scratch database; quoted all the same.
      await client.query(`${kind === 'vacuum analyze' ? 'VACUUM (ANALYZE)' : kind.toUpperCase()} "${row.table.replaceAll('"', '""')}"`)
      runs.push({ atS: (began - startedMs) / 1000, table: row.table, kind, ms: performance.now() - began })
    }
  }

  return {
    serverAutovacuum,
    poke() {
      if (!active || pass !== undefined || performance.now() - lastPassMs < limits.naptimeMs) return
      lastPassMs = performance.now()
      pass = runPass().catch((error: unknown) => {
        log(`vacuum pass failed: ${(error as Error).message}`)
      }).finally(() => { pass = undefined })
    },
    async close() {
      await pass
      await client.end()
    },
    runs: () => [...runs],
    passes: () => passes
  }
}
