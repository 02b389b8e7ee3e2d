/**
 * Soak (`npm run bench:soak -- --duration 10m`, or `runSoak(options)` from another runner): the bridge under a
 * fixed arrival rate of signed Oura notifications for a long time, watched window by window for growth.
 *
 *   node bench/soak/run.ts [--duration 10m] [--warmup 6m] [--rate 250] [--window 60s] [--users 100] [--workers 40]
 *                          [--redis] [--kafka] [--drain-timeout 10m] [--keep-db] [--no-write]
 *                          [--no-vacuum] [--bridge-env KEY=VALUE …] [--node-options '<flags of the bridge>']
 *
 * Durations are `30s`, `10m`, `1h`, `1h30m` (a bare number is seconds). The rate is notifications per second.
 *
 * Set-up: the real app (bench/soak/bridge.ts: createApp + listen, as `bridge serve`) in a child process on a
 * scratch PostgreSQL database, Redis with --redis (else the in-process cache), Kafka with --kafka (a fresh topic
 * on BENCH_KAFKA_BROKERS / TEST_KAFKA_BROKERS / 127.0.0.1:9092; else events stay in the outbox), the worker
 * pool on (MAX_CONCURRENT_WEBHOOKS), backfill and reconciliation off, the Oura request budget lifted. The Oura
 * simulator runs in this process and serves every fetch (bench/soak/workload.ts: each notification names a new
 * document). The open-loop generator (bench/lib/http-load.ts) sends notification i at start + i / rate on an
 * absolute timeline; intake latency runs from that due time to the answer.
 *
 * Every window (60 s from 5 minutes of duration, 30 s from 2, else 10 s) a progress line goes to stderr and a
 * row is kept: intake p50/p99 of the notifications due in it; receipts done in it; end-to-end p50/p99
 * (finished_at − received_at) of the receipts received in it — the last two exact only after the drain, the
 * progress line shows receipts finished in the window instead; backlog (pending receipts) at its end; the
 * bridge's RSS and heap (mean and max of 5-s samples), event-loop lag p99/max, CPU of the bridge, its
 * PostgreSQL backends, this process (simulator + generator) and the whole machine. After the load the backlog
 * is drained (and, with Kafka, the outbox published) and the run is checked for loss: every notification
 * answered `accepted`, one receipt each, all `done`, every document with events (and with --kafka every
 * outbox row on the topic, no duplicates). Trends (bench/soak/trend.ts) are fitted past the warm-up.
 *
 * PostgreSQL without autovacuum (the CI server's configuration) would bloat over a soak; bench/soak/vacuum.ts then
 * applies autovacuum's thresholds to the soak's database (--no-vacuum: leave the server as configured).
 *
 * Results: bench/results/soak.json and the "Soak" section of docs/benchmarks.md (unless --no-write). Exit code 1
 * when the loss check fails (results are still written: a soak that loses data must say so) or the run broke.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type { Admin } from '@platformatic/kafka'
import pg from 'pg'
import { startChildServer, type ChildServer } from '../lib/child.ts'
import { updateDocsSection } from '../lib/docs.ts'
import { describeMachine, type Machine } from '../lib/environment.ts'
import { openLoop, Samples, type LoadResult } from '../lib/http-load.ts'
import { backendCpu, cpuDelta, machineBusyMs, ownCpuMs, waitForQuietMachine, type QuietReading } from '../lib/proc.ts'
import { runBenchmark } from '../lib/run.ts'
import { createScratchDatabase, databaseName, dropScratchDatabase } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, percentile } from '../lib/stats.ts'
import type { BridgeSample } from './bridge.ts'
import { renderSoakSection, SOAK_TARGETS } from './report.ts'
import { judgeTrend, KEEP_UP_SECONDS, type SeriesPoint, type Trend } from './trend.ts'
import { startVacuumer, type Vacuumer, type VacuumRun } from './vacuum.ts'
import { DATA_TYPE_MIX, startWorkload, type SoakWorkload } from './workload.ts'
import { freePort } from '../lib/net.ts'
import { BENCH_REDIS_URL, deleteRedisKeys } from '../lib/redis.ts'

const ROOT = new URL('../../', import.meta.url)
const BRIDGE_SCRIPT = new URL('bench/soak/bridge.ts', ROOT)
export const RESULTS_FILE = new URL('bench/results/soak.json', ROOT)

/**
 * What the 2-core reference machine sustains end to end with margin: with every notification a new document it
 * saturates at ~350/s (400/s built a backlog of 11,000 in 90 s); 300/s held for 3 minutes but with ~1.75 of the
 * 2 cores busy, so any outside work tips it over; 250/s is ~70 % of saturation.
 */
export const DEFAULT_RATE_PER_SECOND = 250
/** Bridge memory is sampled this often, in ms; windows are whole multiples of it. */
const SAMPLE_MS = 5000
/** Finished documents are dropped from the simulator this often, in ms. */
const EVICT_EVERY_MS = 10_000
const WARMUP_MAX_MS = 60_000
const MB = 1024 * 1024
const REDIS_URL = BENCH_REDIS_URL
const KAFKA_BROKERS = (process.env.BENCH_KAFKA_BROKERS ?? process.env.TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((entry) => entry.trim())
const KAFKA_PARTITIONS = 16
/** Users connected through the OAuth flow at once during set-up. */
const CONNECT_CONCURRENCY = 8

export interface SoakOptions {
  /** The measured load, in ms; trends are fitted over its windows. */
  durationMs: number
  /**
   * Load at the same rate before the measured duration, in ms: its windows are reported but not fitted. A node on
   * the in-process cache fills its bounded caches (series points, dedup claims) for minutes before its memory
   * levels off; that filling is not a leak, so a steady-state verdict needs it behind the fit. Without it the
   * first minute (a quarter of short runs) of the duration is the warm-up.
   */
  warmupMs?: number
  ratePerSecond?: number
  /** Length of a report row; default by duration (60 s from 5 min, 30 s from 2 min, else 10 s). */
  windowMs?: number
  users?: number
  /** MAX_CONCURRENT_WEBHOOKS of the bridge. */
  workers?: number
  redis?: boolean
  kafka?: boolean
  /** How long the backlog may take to drain after the load before the run is judged as it stands, in ms. */
  drainTimeoutMs?: number
  keepDb?: boolean
  /** Extra environment of the bridge, for experiments (e.g. MAX_TIMESERIES_ENTRIES); recorded in the results. */
  bridgeEnv?: Record<string, string>
  /** Node flags of the bridge process, for experiments (e.g. --max-semi-space-size=16); recorded in the results. */
  nodeOptions?: string[]
  /**
   * When the server runs without autovacuum, apply autovacuum's rule to the soak's database (bench/soak/vacuum.ts).
   * Default true; false measures the server as configured.
   */
  vacuum?: boolean
  /** Writes bench/results/soak.json and the docs section. Default true. */
  write?: boolean
  /** The command line to show in the docs. */
  command?: string
  log?: (message: string) => void
}

type Settings = Required<Omit<SoakOptions, 'log' | 'command'>> & {
  /** Warm-up plus duration: the length of the load's timeline. */
  timelineMs: number
  command: string
}

export interface Cores {
  bridge: number
  postgres: number
  /** This process: the Oura simulator serving fetches plus the load generator. */
  bench: number
  machine: number
}

export interface WindowRow {
  index: number
  startS: number
  endS: number
  /** Notifications due in the window (by their place on the timeline). */
  due: number
  accepted: number
  /** Answers other than 2xx, and requests that got none. */
  refused: number
  intakeP50Ms: number
  intakeP99Ms: number
  intakeMaxMs: number
  /** Receipts whose finished_at falls in the window. */
  done: number
  /** finished_at − received_at of the receipts received in the window. */
  endToEndP50Ms: number
  endToEndP99Ms: number
  /** Pending receipts at the end of the window; with Kafka also unpublished outbox rows. */
  backlog: number
  outboxPending: number | null
  rssMeanMb: number
  rssMaxMb: number
  heapUsedMeanMb: number
  heapUsedMaxMb: number
  externalMeanMb: number
  /** Heap used right after the last major GC by the window's end (the live heap), MB; NaN before the first. */
  heapAfterMajorGcMb: number
  /** Major GCs in the window, and the time every GC paused the bridge's loop, ms. */
  majorGcs: number
  gcPauseMs: number
  lagP99Ms: number
  lagMaxMs: number
  /** Event-loop lag of this process (simulator + generator), which intake latency includes. */
  benchLagP99Ms: number
  cores: Cores
  /** Documents the simulator held at the window's end (copies not yet evicted). */
  simulatorDocuments: number
}

export interface DrainRow {
  durationMs: number
  timedOut: boolean
  done: number
  backlogAtStart: number
  rssMaxMb: number
  lagP99Ms: number
  lagMaxMs: number
}

export interface MemorySample {
  atS: number
  rssMb: number
  heapUsedMb: number
  heapTotalMb: number
  /** V8's reserved young generation and old space, MB. */
  newSpaceMb: number
  oldSpaceMb: number
  externalMb: number
  heapAfterMajorGcMb: number
}

export interface LossCheck {
  ok: boolean
  problems: string[]
  sent: number
  accepted: number
  duplicateAnswers: number
  otherAnswers: number
  refused: number
  transportErrors: number
  receipts: number
  receiptsByStatus: Record<string, number>
  distinctObjectIds: number
  /** Receipts that needed more than one attempt. */
  retried: number
  documentsWithEvents: number
  events: number
  outboxRows: number
  kafka: null | {
    topic: string
    outboxPublished: number
    outboxPending: number
    outboxDeadLettered: number
    documentsPublished: number
    topicMessages: number
    distinctEventIds: number
    duplicates: number
  }
}

export interface SoakResult {
  machine: Machine
  command: string
  settings: Omit<Settings, 'command' | 'keepDb' | 'write'>
  mix: readonly string[]
  startedAt: string
  /** Machine CPU in the last 2 s before the load (other work), and whether it fell below 0.5 cores. */
  quietAtStart: QuietReading
  setupMs: number
  loadMs: number
  drainMs: number
  checkMs: number
  totalMs: number
  windows: WindowRow[]
  drain: DrainRow
  overall: {
    intakeP50Ms: number
    intakeP99Ms: number
    intakeP999Ms: number
    intakeMaxMs: number
    /** How late the generator wrote requests after they were due (its own stalls), p99, ms. */
    sendLagP99Ms: number
    endToEndP50Ms: number
    endToEndP99Ms: number
    endToEndMaxMs: number
    backlogMax: number
    rssMaxMb: number
    /** Peak RSS by getrusage, in MB (catches peaks between samples). */
    peakRssMb: number
    heapUsedMaxMb: number
    lagP99MaxMs: number
    lagMaxMs: number
    cores: Cores
    simulatorRequests: number
  }
  /** The bridge after start-up and the users' connections, before the load. */
  atRest: MemorySample
  memorySamples: MemorySample[]
  loss: LossCheck
  /** The server's autovacuum setting, and the stand-in's VACUUM/ANALYZE runs when it is off. */
  vacuum: { serverAutovacuum: boolean, emulated: boolean, passes: number, runs: VacuumRun[] }
  trends: Trend[]
  verdict: {
    rss: Trend['verdict']
    p99: Trend['verdict']
    flat: boolean
    /** Fewer than 5 minutes were fitted: the growth per 10 minutes is an extrapolation. */
    indicative: boolean
    /**
     * The bridge kept up with the rate: at the end of the load no more than KEEP_UP_SECONDS of notifications were
     * pending. When it did not, end-to-end latency grows with the queue, whatever the bridge's own health.
     */
    keptUp: boolean
    rssTargetMet: boolean
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Options

/** `30s`, `10m`, `1h`, `1h30m`, `500ms`; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  let rest = trimmed
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest)
    if (match === null) throw new Error(`not a duration: ${text} (use e.g. 30s, 10m, 1h)`)
    total += Number(match[1]) * units[match[2]!]!
    rest = rest.slice(match[0].length)
  }
  return total
}

const fmtDuration = (ms: number): string => {
  const seconds = Math.round(ms / 1000)
  if (seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds % 60 === 0) return `${seconds / 60}m`
  return seconds > 60 ? `${Math.floor(seconds / 60)}m${seconds % 60}s` : `${seconds}s`
}

function defaultWindowMs(durationMs: number): number {
  if (durationMs >= 5 * 60_000) return 60_000
  if (durationMs >= 2 * 60_000) return 30_000
  return 10_000
}

function settle(options: SoakOptions): Settings {
  const durationMs = Math.round(options.durationMs / 1000) * 1000
  const explicitWarmupMs = options.warmupMs === undefined ? undefined : Math.round(options.warmupMs / 1000) * 1000
  const windowMs = options.windowMs ?? defaultWindowMs(durationMs)
  const settings: Settings = {
    durationMs,
    ratePerSecond: options.ratePerSecond ?? DEFAULT_RATE_PER_SECOND,
    windowMs,
    // Without an explicit warm-up, the first minute, or the first quarter of a short run, warms up (JIT, pools,
    // V8 sizing its heap).
    warmupMs: explicitWarmupMs ?? Math.min(WARMUP_MAX_MS, Math.ceil(durationMs / 4 / windowMs) * windowMs),
    timelineMs: durationMs + (explicitWarmupMs ?? 0),
    users: options.users ?? 100,
    workers: options.workers ?? 40,
    redis: options.redis ?? false,
    kafka: options.kafka ?? false,
    drainTimeoutMs: options.drainTimeoutMs ?? Math.max(120_000, durationMs),
    keepDb: options.keepDb ?? false,
    bridgeEnv: options.bridgeEnv ?? {},
    nodeOptions: options.nodeOptions ?? [],
    vacuum: options.vacuum ?? true,
    write: options.write ?? true,
    command: options.command ?? `node bench/soak/run.ts --duration ${fmtDuration(durationMs)}` +
      `${explicitWarmupMs === undefined ? '' : ` --warmup ${fmtDuration(explicitWarmupMs)}`} --rate ${options.ratePerSecond ?? DEFAULT_RATE_PER_SECOND}`
  }
  if (!(durationMs >= 10_000)) throw new Error('the duration must be at least 10 s')
  if (explicitWarmupMs !== undefined && !(explicitWarmupMs >= 0 && explicitWarmupMs % windowMs === 0)) {
    throw new Error(`the warm-up must be a whole number of windows (${windowMs / 1000} s)`)
  }
  if (!(windowMs >= SAMPLE_MS && windowMs % SAMPLE_MS === 0)) throw new Error(`the window must be a multiple of ${SAMPLE_MS / 1000} s`)
  if (!(settings.ratePerSecond > 0)) throw new Error('the rate must be positive')
  if (!Number.isInteger(settings.users) || settings.users < 1) throw new Error('--users must be a positive integer')
  if (!Number.isInteger(settings.workers) || settings.workers < 1) throw new Error('--workers must be a positive integer (the soak needs the worker pool)')
  return settings
}

// ---------------------------------------------------------------------------------------------------------------
// Resources of a run, released however it ends (also from stopSoak on Ctrl-C)

interface Resources {
  workload?: SoakWorkload | undefined
  bridge?: ChildServer | undefined
  databaseUrl?: string | undefined
  db?: pg.Client | undefined
  vacuumer?: Vacuumer | undefined
  kafkaAdmin?: Admin | undefined
  topics: string[]
  redisPrefix?: string | undefined
  keepDb: boolean
  log: (message: string) => void
}

const running = new Set<Resources>()

async function release(resources: Resources): Promise<void> {
  running.delete(resources)
  const attempt = async (what: string, work: () => Promise<unknown>): Promise<void> => {
    await work().catch((error: unknown) => resources.log(`cleanup: ${what}: ${(error as Error).message}`))
  }
  const { bridge, workload, db, vacuumer, kafkaAdmin, databaseUrl, redisPrefix } = resources
  resources.vacuumer = undefined
  resources.bridge = undefined
  resources.workload = undefined
  resources.db = undefined
  resources.kafkaAdmin = undefined
  resources.databaseUrl = undefined
  resources.redisPrefix = undefined
  if (bridge !== undefined) await attempt('stopping the bridge', () => bridge.stop())
  if (workload !== undefined) await attempt('closing the simulator', () => workload.sim.close())
  if (vacuumer !== undefined) await attempt('closing the vacuum connection', () => vacuumer.close())
  if (db !== undefined) await attempt('closing the database client', () => db.end())
  if (kafkaAdmin !== undefined) {
    const topics = resources.topics.splice(0)
    if (topics.length > 0) await attempt('deleting the topics', () => kafkaAdmin.deleteTopics({ topics }))
    await attempt('closing the Kafka admin', () => kafkaAdmin.close())
  }
  if (redisPrefix !== undefined) await attempt('deleting the Redis keys', () => deleteRedisKeys(redisPrefix))
  if (databaseUrl !== undefined) {
    if (resources.keepDb) resources.log(`kept database ${databaseName(databaseUrl)}`)
    else await attempt('dropping the scratch database', () => dropScratchDatabase(databaseUrl))
  }
}

/** Cleans up every soak still running in this process (Ctrl-C in a runner that called runSoak). */
export async function stopSoak(): Promise<void> {
  await Promise.all([...running].map((resources) => release(resources)))
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The connect flow as a user's app drives it: admin call, the simulator's consent redirect, the callback. */
async function connect(baseUrl: string, adminToken: string, userId: string, ouraUserId: string): Promise<void> {
  const start = await fetch(`${baseUrl}/v1/users/${userId}/connections/oura`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } })
  if (start.status !== 200 && start.status !== 201) throw new Error(`connect ${userId}: ${start.status} ${await start.text()}`)
  const authorizeUrl = new URL((await start.json() as { authorize_url: string }).authorize_url)
  authorizeUrl.searchParams.set('sim_user_id', ouraUserId)
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  const location = new URL(redirect.headers.get('location')!)
  const callback = await fetch(`${baseUrl}${location.pathname}${location.search}`)
  if (callback.status !== 200) throw new Error(`connect ${userId}: callback answered ${callback.status}`)
}

const mb = (bytes: number): number => bytes / MB
const max = (values: readonly number[]): number => values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY)
const mean = (values: readonly number[]): number => values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
const sortedOf = (samples: Samples): Float64Array => samples.toArray().sort()

/** Per window: the answers of the notifications due in it. */
interface IntakeBucket {
  latencies: Samples
  accepted: number
  refused: number
}

/** Memory and lag samples of the bridge gathered over one window. */
interface SampleBucket {
  rss: number[]
  heapUsed: number[]
  external: number[]
}

const emptySampleBucket = (): SampleBucket => ({ rss: [], heapUsed: [], external: [] })

interface CpuMark {
  atMs: number
  bridgeUs: number
  postgres: Map<number, number>
  benchMs: number
  machineMs: number
}

// ---------------------------------------------------------------------------------------------------------------
// The run

/** Runs one soak and returns its results (and writes them unless `write: false`). Cleans up however it ends. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const settings = settle(options)
  const log = options.log ?? ((message: string) => { process.stderr.write(`[soak] ${message}\n`) })
  const resources: Resources = { topics: [], keepDb: settings.keepDb, log }
  running.add(resources)
  try {
    return await soak(settings, resources, log)
  } finally {
    await release(resources)
  }
}

async function soak(settings: Settings, resources: Resources, log: (message: string) => void): Promise<SoakResult> {
  const runStartedMs = performance.now()
  const startedAt = new Date().toISOString()
  const machine = await describeMachine()
  // The load's timeline is the warm-up plus the measured duration; only trends look at the difference.
  const { durationMs, timelineMs, ratePerSecond: rate, windowMs } = settings
  const windowCount = Math.ceil(timelineMs / windowMs)
  const total = Math.round(rate * timelineMs / 1000)
  const warmupText = timelineMs === durationMs ? '' : ` after a warm-up of ${fmtDuration(settings.warmupMs)}`
  log(`${fmtDuration(durationMs)}${warmupText} at ${fmtInt(rate)}/s (${fmtInt(total)} notifications), windows of ${windowMs / 1000} s, ` +
    `${settings.users} users, ${settings.workers} workers, ${settings.redis ? 'Redis' : 'in-process cache'}, ${settings.kafka ? 'Kafka' : 'no Kafka'}`)

  // ---- set-up
  resources.databaseUrl = await createScratchDatabase('soak')
  const databaseUrl = resources.databaseUrl
  const clientSecret = randomBytes(16).toString('hex')
  resources.workload = await startWorkload(settings.users, clientSecret)
  const workload = resources.workload
  let topic: string | undefined
  if (settings.kafka) {
    const { Admin } = await import('@platformatic/kafka')
    resources.kafkaAdmin = new Admin({ clientId: 'bb-soak-admin', bootstrapBrokers: KAFKA_BROKERS })
    topic = `bb-soak-${randomBytes(4).toString('hex')}`
    try {
      await resources.kafkaAdmin.createTopics({ topics: [topic, `${topic}.dlq`], partitions: KAFKA_PARTITIONS, replicas: 1 })
    } catch (error) {
      throw new Error(`--kafka: could not create the topic on ${KAFKA_BROKERS.join(',')} (is a broker up? bash scripts/kafka.sh up): ${(error as Error).message}`)
    }
    resources.topics.push(topic, `${topic}.dlq`)
  }
  if (settings.redis) resources.redisPrefix = `bb-soak-${randomBytes(4).toString('hex')}:`
  const port = await freePort()
  const baseUrl = `http://127.0.0.1:${port}`
  const adminToken = `bench_${randomBytes(24).toString('base64url')}`
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), PUBLIC_BASE_URL: baseUrl,
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`, LOG_PSEUDONYM_KEY: randomBytes(32).toString('hex'),
    ADMIN_API_TOKEN: adminToken, LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
    OURA_CLIENT_ID: workload.sim.clientId, OURA_CLIENT_SECRET: clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: 'bench-vt',
    OURA_API_URL: workload.sim.baseUrl, OURA_AUTHORIZE_URL: workload.sim.authorizeUrl,
    // The simulator is what the bridge fetches from, not Oura's real budget (16.7 requests/s per app).
    OURA_REQUESTS_PER_5_MIN: '1000000000',
    BACKFILL_DAYS: '0', RECONCILE_INTERVAL_MINUTES: '0', MAX_RECEIPT_BACKLOG: '10000000', MAX_CONCURRENT_WEBHOOKS: String(settings.workers),
    ...settings.redis ? { REDIS_URL, BENCH_CACHE_PREFIX: resources.redisPrefix } : {},
    ...topic === undefined ? {} : { KAFKA_BROKERS: KAFKA_BROKERS.join(','), KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq` },
    ...settings.bridgeEnv
  }
  resources.bridge = await startChildServer(BRIDGE_SCRIPT, { env, execArgv: settings.nodeOptions, stopTimeoutMs: 30_000 })
  const bridge = resources.bridge
  // A few connections at a time: set-up of 100+ users one by one takes a minute on a busy machine.
  let nextUser = 0
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, async () => {
    for (let i = nextUser++; i < workload.ouraUsers.length; i = nextUser++) {
      await connect(baseUrl, adminToken, `soak-user-${i}`, workload.ouraUsers[i]!)
    }
  }))
  resources.db = new pg.Client({ connectionString: databaseUrl })
  await resources.db.connect()
  const db = resources.db
  const dbName = databaseName(databaseUrl)
  resources.vacuumer = await startVacuumer(databaseUrl, settings.vacuum, log)
  const vacuumer = resources.vacuumer
  if (!vacuumer.serverAutovacuum) {
    log(settings.vacuum
      ? 'autovacuum is off on this server: the soak applies its thresholds to its own database (bench/soak/vacuum.ts)'
      : 'WARNING: autovacuum is off on this server and --no-vacuum was given: dead tuples will pile up over the run')
  }
  // Other work on the machine (tests, another benchmark) would be measured as the bridge's latency: start when
  // it has died down, or after a minute anyway (the rows' machine CPU column shows what else ran).
  const quiet = await waitForQuietMachine(0.5, 2000, 60_000)
  if (!quiet.quiet) log(`WARNING: the machine is busy (${quiet.busyCores.toFixed(2)} cores before the load); figures will include that`)
  const setupMs = performance.now() - runStartedMs
  log(`bridge up (${bridge.address}, pid ${bridge.pid}), ${settings.users} users connected; set-up took ${(setupMs / 1000).toFixed(1)} s`)

  const count = async (sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql)).rows[0]?.n ?? 0)
  const pendingReceipts = (): Promise<number> => count("SELECT count(*)::text AS n FROM webhook_receipts WHERE status = 'pending'")
  const pendingOutbox = (): Promise<number> =>
    count('SELECT count(*)::text AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL')
  const sampleBridge = (resetLag: boolean): Promise<BridgeSample> => bridge.request<BridgeSample>({ type: 'sample', resetLag }, 'sample')
  const cpuMark = async (bridgeUs: number): Promise<CpuMark> => ({
    atMs: performance.now(), bridgeUs, postgres: await backendCpu(db, dbName), benchMs: ownCpuMs(), machineMs: machineBusyMs()
  })
  const coresBetween = (from: CpuMark, to: CpuMark): Cores => {
    const wallMs = to.atMs - from.atMs
    return {
      bridge: (to.bridgeUs - from.bridgeUs) / 1000 / wallMs,
      postgres: cpuDelta(from.postgres, to.postgres) / wallMs,
      bench: (to.benchMs - from.benchMs) / wallMs,
      machine: (to.machineMs - from.machineMs) / wallMs
    }
  }

  // ---- load
  const intake: IntakeBucket[] = Array.from({ length: windowCount }, () => ({ latencies: new Samples(), accepted: 0, refused: 0 }))
  const windowOf = (index: number): number => Math.min(windowCount - 1, Math.floor(index * 1000 / rate / windowMs))
  /** Warm-up windows are reported but left out of the trends. */
  const warmingUp = (row: WindowRow): boolean => row.startS * 1000 < settings.warmupMs
  const dueIn = (window: number): number => {
    const first = Math.ceil(window * windowMs * rate / 1000)
    const last = Math.min(total, Math.ceil(Math.min(timelineMs, (window + 1) * windowMs) * rate / 1000))
    return Math.max(0, last - first)
  }
  const ownLag = monitorEventLoopDelay({ resolution: 10 })
  ownLag.enable()
  const firstSample = await sampleBridge(true)
  let loadStartMs = 0
  let loadStartEpochMs = 0
  let markStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => { markStarted = resolve })
  const makeRequest = workload.requests({ host: '127.0.0.1', port })
  const load = openLoop({ host: '127.0.0.1', port }, {
    ratePerSecond: rate,
    durationMs: timelineMs,
    initialConnections: 16,
    maxConnections: 512,
    makeRequest(index) {
      // openLoop takes its clock right before it builds request 0: the timeline starts here.
      if (index === 0) {
        loadStartMs = performance.now()
        loadStartEpochMs = Date.now()
        markStarted()
      }
      return makeRequest(index)
    },
    onAnswer(index, status, latencyMs) {
      const bucket = intake[windowOf(index)]!
      bucket.latencies.push(latencyMs)
      if (status >= 200 && status < 300) bucket.accepted++
      else bucket.refused++
    }
  })
  await started

  const windows: WindowRow[] = []
  const memorySamples: MemorySample[] = []
  let bucket = emptySampleBucket()
  let windowMark = await cpuMark(firstSample.cpuUs)
  const loadMark = windowMark
  let lastEvictMs = performance.now()
  let evicted = 0

  const takeSample = async (resetLag: boolean): Promise<BridgeSample> => {
    const sample = await sampleBridge(resetLag)
    memorySamples.push({
      atS: (performance.now() - loadStartMs) / 1000, rssMb: mb(sample.rssBytes), heapUsedMb: mb(sample.heapUsedBytes),
      heapTotalMb: mb(sample.heapTotalBytes), newSpaceMb: mb(sample.newSpaceBytes), oldSpaceMb: mb(sample.oldSpaceBytes),
      externalMb: mb(sample.externalBytes), heapAfterMajorGcMb: mb(sample.heapAfterMajorGcBytes)
    })
    bucket.rss.push(mb(sample.rssBytes))
    bucket.heapUsed.push(mb(sample.heapUsedBytes))
    bucket.external.push(mb(sample.externalBytes))
    return sample
  }
  const evictIfDue = async (): Promise<void> => {
    if (performance.now() - lastEvictMs < EVICT_EVERY_MS) return
    lastEvictMs = performance.now()
    evicted += await workload.evictFinished(db)
  }

  const closeWindow = async (index: number, sample: BridgeSample): Promise<void> => {
    const startS = index * windowMs / 1000
    const endS = Math.min(timelineMs, (index + 1) * windowMs) / 1000
    const mark = await cpuMark(sample.cpuUs)
    const cores = coresBetween(windowMark, mark)
    windowMark = mark
    const backlog = await pendingReceipts()
    const outboxPending = settings.kafka ? await pendingOutbox() : null
    // Receipts finished during the window (received whenever): what the progress line can know now. The row's
    // end-to-end figures are replaced after the drain by those of the receipts received in the window.
    const { rows: [finished] } = await db.query<{ n: string, p99: number | null }>(
      `SELECT count(*)::text AS n, percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - received_at) * 1000) AS p99
       FROM webhook_receipts WHERE status = 'done' AND finished_at >= $1 AND finished_at < $2`,
      [new Date(loadStartEpochMs + startS * 1000), new Date(loadStartEpochMs + endS * 1000)])
    const answered = sortedOf(intake[index]!.latencies)
    const row: WindowRow = {
      index, startS, endS, due: dueIn(index),
      accepted: intake[index]!.accepted, refused: intake[index]!.refused,
      intakeP50Ms: percentile(answered, 50), intakeP99Ms: percentile(answered, 99), intakeMaxMs: answered.at(-1) ?? Number.NaN,
      done: Number(finished?.n ?? 0), endToEndP50Ms: Number.NaN, endToEndP99Ms: Number(finished?.p99 ?? Number.NaN),
      backlog, outboxPending,
      rssMeanMb: mean(bucket.rss), rssMaxMb: max(bucket.rss), heapUsedMeanMb: mean(bucket.heapUsed), heapUsedMaxMb: max(bucket.heapUsed),
      externalMeanMb: mean(bucket.external),
      heapAfterMajorGcMb: mb(sample.heapAfterMajorGcBytes), majorGcs: sample.majorGcs, gcPauseMs: sample.gcPauseMs,
      lagP99Ms: sample.lagP99Ms, lagMaxMs: sample.lagMaxMs,
      benchLagP99Ms: ownLag.count === 0 ? 0 : Math.max(0, ownLag.percentile(99) / 1e6 - 10),
      cores, simulatorDocuments: workload.liveDocuments()
    }
    ownLag.reset()
    bucket = emptySampleBucket()
    windows.push(row)
    log(`${clock(endS)}${warmingUp(row) ? ' (warm-up)' : ''} intake p50 ${fmtMs(row.intakeP50Ms)} p99 ${fmtMs(row.intakeP99Ms)} ms · accepted ${fmtInt(row.accepted)}/${fmtInt(row.due)}` +
      `${row.refused > 0 ? ` (${fmtInt(row.refused)} refused)` : ''} · done ${fmtInt(row.done)}, e2e p99 ${fmtMs(row.endToEndP99Ms)} ms (finished in window)` +
      ` · backlog ${fmtInt(backlog)}${outboxPending === null ? '' : `, outbox ${fmtInt(outboxPending)}`}` +
      ` · RSS ${row.rssMeanMb.toFixed(0)} MB (max ${row.rssMaxMb.toFixed(0)}), heap ${row.heapUsedMeanMb.toFixed(0)} MB, ` +
      `live ${row.heapAfterMajorGcMb.toFixed(0)} MB (${row.majorGcs} major GCs, ${fmtMs(row.gcPauseMs)} ms paused)` +
      ` · lag p99 ${fmtMs(row.lagP99Ms)} max ${fmtMs(row.lagMaxMs)} ms · CPU bridge ${cores.bridge.toFixed(2)} PG ${cores.postgres.toFixed(2)}` +
      ` bench ${cores.bench.toFixed(2)} other ${Math.max(0, cores.machine - cores.bridge - cores.postgres - cores.bench).toFixed(2)} cores`)
  }

  // Samples every SAMPLE_MS on the load's timeline, a row at each window's end; one step at a time, so
  // IPC requests to the bridge never overlap.
  const ticks: number[] = []
  for (let atMs = SAMPLE_MS; atMs < timelineMs; atMs += SAMPLE_MS) ticks.push(atMs)
  ticks.push(timelineMs)
  for (const atMs of ticks) {
    const waitMs = loadStartMs + atMs - performance.now()
    if (waitMs > 0) await sleep(waitMs)
    const closes = atMs % windowMs === 0 || atMs === timelineMs
    const sample = await takeSample(closes)
    if (closes) await closeWindow(Math.ceil(atMs / windowMs) - 1, sample)
    await evictIfDue()
    vacuumer.poke()
  }
  const result: LoadResult = await load
  const loadMs = performance.now() - loadStartMs
  const loadEndMark = await cpuMark((await sampleBridge(false)).cpuUs)

  // ---- drain: the backlog worked off (and, with Kafka, the outbox published)
  const drainStartMs = performance.now()
  const backlogAtStart = await pendingReceipts()
  log(`load done in ${(loadMs / 1000).toFixed(1)} s; draining ${fmtInt(backlogAtStart)} pending receipts` +
    (settings.kafka ? `, ${fmtInt(await pendingOutbox())} unpublished outbox rows` : ''))
  let timedOut = false
  let lastSampleMs = drainStartMs
  for (;;) {
    const pending = await pendingReceipts() + (settings.kafka ? await pendingOutbox() : 0)
    if (pending === 0) break
    if (performance.now() - drainStartMs > settings.drainTimeoutMs) {
      timedOut = true
      log(`drain timed out after ${fmtDuration(settings.drainTimeoutMs)} with ${fmtInt(pending)} pending`)
      break
    }
    if (performance.now() - lastSampleMs >= SAMPLE_MS) {
      lastSampleMs = performance.now()
      await takeSample(false)
    }
    await evictIfDue()
    vacuumer.poke()
    await sleep(250)
  }
  const drainMs = performance.now() - drainStartMs
  const endSample = await takeSample(true)
  const drainSamples = bucket
  ownLag.disable()

  // ---- after the run: exact per-window end-to-end figures, the loss check, the trends
  const vacuumRuns = vacuumer.runs()
  const vacuumPasses = vacuumer.passes()
  resources.vacuumer = undefined
  await vacuumer.close()
  const checkStartMs = performance.now()
  const epoch = new Date(loadStartEpochMs)
  const { rows: byReceived } = await db.query<{ w: number, p50: number, p99: number }>(
    `SELECT least(greatest(floor((extract(epoch FROM received_at - $1::timestamptz) * 1000) / $2::int), 0), $3::int - 1)::int AS w,
            percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99
     FROM (SELECT received_at, extract(epoch FROM finished_at - received_at) * 1000 AS ms FROM webhook_receipts WHERE status = 'done') AS r
     GROUP BY 1`, [epoch, windowMs, windowCount])
  const { rows: byFinished } = await db.query<{ w: number, n: string }>(
    `SELECT floor((extract(epoch FROM finished_at - $1::timestamptz) * 1000) / $2::int)::int AS w, count(*)::text AS n
     FROM webhook_receipts WHERE status = 'done' GROUP BY 1`, [epoch, windowMs])
  for (const row of windows) {
    const received = byReceived.find((entry) => entry.w === row.index)
    row.endToEndP50Ms = Number(received?.p50 ?? Number.NaN)
    row.endToEndP99Ms = Number(received?.p99 ?? Number.NaN)
    row.done = Number(byFinished.find((entry) => entry.w === row.index)?.n ?? 0)
  }
  const drainDone = byFinished.filter((entry) => entry.w >= windowCount).reduce((sum, entry) => sum + Number(entry.n), 0)
  const { rows: [endToEnd] } = await db.query<{ p50: number | null, p99: number | null, max: number | null }>(
    `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max
     FROM (SELECT extract(epoch FROM finished_at - received_at) * 1000 AS ms FROM webhook_receipts WHERE status = 'done') AS r`)

  const loss = await checkLoss(db, result, total, resources.kafkaAdmin, topic, log)
  const checkMs = performance.now() - checkStartMs

  const intakeAll = result.latenciesMs.slice().sort()
  const sendLag = result.sendLagMs.slice().sort()
  const fitted = windows.filter((row) => !warmingUp(row))
  const points = (value: (row: WindowRow) => number): SeriesPoint[] =>
    fitted.map((row) => ({ atMinutes: (row.startS + row.endS) / 2 / 60, value: value(row) }))
  const windowMinutes = windowMs / 60_000
  const trends = [
    judgeTrend('bridge RSS', 'MB', 'memory', points((row) => row.rssMeanMb), windowMinutes),
    judgeTrend('intake p99', 'ms', 'latency', points((row) => row.intakeP99Ms), windowMinutes),
    judgeTrend('end-to-end p99', 'ms', 'latency', points((row) => row.endToEndP99Ms), windowMinutes),
    // Reported, not judged: heap is what RSS growth would come from, lag what p99 growth would.
    judgeTrend('bridge heap used', 'MB', 'memory', points((row) => row.heapUsedMeanMb), windowMinutes),
    judgeTrend('bridge live heap (after major GC)', 'MB', 'memory', points((row) => row.heapAfterMajorGcMb), windowMinutes),
    judgeTrend('event-loop lag p99', 'ms', 'latency', points((row) => row.lagP99Ms), windowMinutes),
    judgeTrend('backlog', 'receipts', 'latency', points((row) => row.backlog), windowMinutes)
  ]
  const [rssTrend, intakeTrend, endToEndTrend] = trends as [Trend, Trend, Trend, ...Trend[]]
  const p99Verdict: Trend['verdict'] = [intakeTrend, endToEndTrend].some((trend) => trend.verdict === 'insufficient') ? 'insufficient'
    : [intakeTrend, endToEndTrend].every((trend) => trend.verdict === 'flat') ? 'flat' : 'growing'
  const rssMaxMb = Math.max(max(memorySamples.map((sample) => sample.rssMb)), mb(firstSample.rssBytes))
  const soakResult: SoakResult = {
    machine,
    command: settings.command,
    settings: {
      durationMs, timelineMs, ratePerSecond: rate, windowMs, warmupMs: settings.warmupMs, users: settings.users, workers: settings.workers,
      redis: settings.redis, kafka: settings.kafka, drainTimeoutMs: settings.drainTimeoutMs, bridgeEnv: settings.bridgeEnv,
      nodeOptions: settings.nodeOptions, vacuum: settings.vacuum
    },
    mix: DATA_TYPE_MIX,
    startedAt,
    quietAtStart: quiet,
    setupMs, loadMs, drainMs, checkMs,
    totalMs: performance.now() - runStartedMs,
    windows,
    drain: {
      durationMs: drainMs, timedOut, done: drainDone, backlogAtStart,
      rssMaxMb: max(drainSamples.rss), lagP99Ms: endSample.lagP99Ms, lagMaxMs: endSample.lagMaxMs
    },
    overall: {
      intakeP50Ms: percentile(intakeAll, 50), intakeP99Ms: percentile(intakeAll, 99), intakeP999Ms: percentile(intakeAll, 99.9),
      intakeMaxMs: intakeAll.at(-1) ?? Number.NaN, sendLagP99Ms: percentile(sendLag, 99),
      endToEndP50Ms: Number(endToEnd?.p50 ?? Number.NaN), endToEndP99Ms: Number(endToEnd?.p99 ?? Number.NaN),
      endToEndMaxMs: Number(endToEnd?.max ?? Number.NaN),
      backlogMax: max(windows.map((row) => row.backlog)),
      rssMaxMb,
      peakRssMb: endSample.maxRssKb / 1024,
      heapUsedMaxMb: max(memorySamples.map((sample) => sample.heapUsedMb)),
      lagP99MaxMs: max(windows.map((row) => row.lagP99Ms)),
      lagMaxMs: Math.max(max(windows.map((row) => row.lagMaxMs)), endSample.lagMaxMs),
      cores: coresBetween(loadMark, loadEndMark),
      simulatorRequests: workload.sim.requestCount()
    },
    atRest: {
      atS: 0, rssMb: mb(firstSample.rssBytes), heapUsedMb: mb(firstSample.heapUsedBytes), heapTotalMb: mb(firstSample.heapTotalBytes),
      newSpaceMb: mb(firstSample.newSpaceBytes), oldSpaceMb: mb(firstSample.oldSpaceBytes), externalMb: mb(firstSample.externalBytes), heapAfterMajorGcMb: mb(firstSample.heapAfterMajorGcBytes)
    },
    memorySamples,
    loss,
    vacuum: { serverAutovacuum: vacuumer.serverAutovacuum, emulated: settings.vacuum && !vacuumer.serverAutovacuum, passes: vacuumPasses, runs: vacuumRuns },
    trends,
    verdict: {
      rss: rssTrend.verdict,
      p99: p99Verdict,
      flat: rssTrend.verdict === 'flat' && p99Verdict === 'flat',
      indicative: rssTrend.spanMinutes < 5,
      keptUp: (windows.at(-1)?.backlog ?? 0) <= rate * KEEP_UP_SECONDS,
      rssTargetMet: rssMaxMb <= SOAK_TARGETS.rssMaxMb
    }
  }
  log(`evicted ${fmtInt(evicted)} finished documents from the simulator during the run` +
    (soakResult.vacuum.emulated ? `; autovacuum stand-in: ${vacuumRuns.length} runs, ` +
      `${(vacuumRuns.reduce((sum, run) => sum + run.ms, 0) / 1000).toFixed(1)} s` +
      (vacuumRuns.length === 0 ? '' : ` (${[...new Set(vacuumRuns.map((run) => run.table))].join(', ')})`) : ''))
  logSummary(soakResult, log)
  if (settings.write) {
    writeFileSync(RESULTS_FILE, `${JSON.stringify(soakResult, null, 2)}\n`)
    updateDocsSection('Soak', 'soak', (notes) => renderSoakSection(soakResult, notes))
    log(`wrote ${RESULTS_FILE.pathname} and the "Soak" section of docs/benchmarks.md`)
  }
  return soakResult
}

const clock = (seconds: number): string => `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, '0')}`

async function checkLoss(
  db: pg.Client, result: LoadResult, total: number, admin: Admin | undefined, topic: string | undefined, log: (message: string) => void
): Promise<LossCheck> {
  const answers = (body: string): number => result.okBodies.get(body) ?? 0
  const accepted = answers('{"status":"accepted"}')
  const duplicateAnswers = answers('{"status":"duplicate"}')
  const okAnswers = [...result.okBodies.values()].reduce((sum, n) => sum + n, 0)
  const refused = [...result.statusCounts].filter(([status]) => status < 200 || status >= 300).reduce((sum, [, n]) => sum + n, 0)
  const { rows: statusRows } = await db.query<{ status: string, n: string }>('SELECT status, count(*)::text AS n FROM webhook_receipts GROUP BY status')
  const receiptsByStatus = Object.fromEntries(statusRows.map((row) => [row.status, Number(row.n)]))
  const { rows: [receiptStats] } = await db.query<{ receipts: string, objects: string, retried: string }>(
    `SELECT count(*)::text AS receipts, count(DISTINCT object_id)::text AS objects, count(*) FILTER (WHERE attempts > 1)::text AS retried
     FROM webhook_receipts`)
  // Document events carry a context (day, sleep); heart-rate rows (fetched with each sleep) carry none.
  const { rows: [eventStats] } = await db.query<{ documents: string, events: string }>(
    "SELECT count(DISTINCT source_record_id) FILTER (WHERE context <> '')::text AS documents, count(*)::text AS events FROM events")
  const { rows: [outboxStats] } = await db.query<{ rows: string, published: string, pending: string, dead: string }>(
    `SELECT count(*)::text AS rows, count(*) FILTER (WHERE published_at IS NOT NULL)::text AS published,
            count(*) FILTER (WHERE published_at IS NULL AND dead_lettered_at IS NULL)::text AS pending,
            count(*) FILTER (WHERE dead_lettered_at IS NOT NULL)::text AS dead
     FROM outbox`)
  const check: LossCheck = {
    ok: true, problems: [],
    sent: result.sent, accepted, duplicateAnswers, otherAnswers: okAnswers - accepted - duplicateAnswers, refused,
    transportErrors: result.transportErrors,
    receipts: Number(receiptStats?.receipts ?? 0), receiptsByStatus, distinctObjectIds: Number(receiptStats?.objects ?? 0),
    retried: Number(receiptStats?.retried ?? 0),
    documentsWithEvents: Number(eventStats?.documents ?? 0), events: Number(eventStats?.events ?? 0), outboxRows: Number(outboxStats?.rows ?? 0),
    kafka: null
  }
  if (admin !== undefined && topic !== undefined) {
    const { rows: [published] } = await db.query<{ documents: string }>(
      `SELECT count(DISTINCT e.source_record_id)::text AS documents FROM outbox o JOIN events e USING (event_id)
       WHERE o.published_at IS NOT NULL AND e.context <> ''`)
    log('reading the topic back')
    const { messages, distinct } = await readTopic(admin, topic)
    check.kafka = {
      topic,
      outboxPublished: Number(outboxStats?.published ?? 0), outboxPending: Number(outboxStats?.pending ?? 0),
      outboxDeadLettered: Number(outboxStats?.dead ?? 0), documentsPublished: Number(published?.documents ?? 0),
      topicMessages: messages, distinctEventIds: distinct, duplicates: messages - distinct
    }
  }
  const expect = (what: string, actual: number, expected: number): void => {
    if (actual !== expected) check.problems.push(`${what}: ${fmtInt(actual)}, expected ${fmtInt(expected)}`)
  }
  expect('notifications sent', check.sent, total)
  expect('answered accepted', accepted, total)
  expect('answered duplicate', duplicateAnswers, 0)
  expect('other 2xx answers', check.otherAnswers, 0)
  expect('refused (non-2xx)', refused, 0)
  expect('transport errors', check.transportErrors, 0)
  expect('receipts', check.receipts, accepted)
  expect('receipts done', receiptsByStatus.done ?? 0, accepted)
  expect('distinct documents among receipts', check.distinctObjectIds, accepted)
  expect('documents with events', check.documentsWithEvents, accepted)
  if (check.kafka !== null) {
    expect('outbox rows published', check.kafka.outboxPublished, check.outboxRows)
    expect('outbox rows dead-lettered', check.kafka.outboxDeadLettered, 0)
    expect('documents with published events', check.kafka.documentsPublished, accepted)
    expect('distinct events on the topic', check.kafka.distinctEventIds, check.outboxRows)
    expect('duplicate messages on the topic', check.kafka.duplicates, 0)
  }
  check.ok = check.problems.length === 0
  return check
}

/** Counts the topic's messages (all partitions' end offsets) and reads it once for the distinct event ids. */
async function readTopic(admin: Admin, topic: string): Promise<{ messages: number, distinct: number }> {
  const { Consumer, stringDeserializers } = await import('@platformatic/kafka')
  const listed = await admin.listOffsets({
    topics: [{ name: topic, partitions: Array.from({ length: KAFKA_PARTITIONS }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }]
  })
  const messages = listed.flatMap((entry) => entry.partitions).reduce((sum, partition) => sum + Number(partition.offset), 0)
  const eventIds = new Set<string>()
  if (messages === 0) return { messages, distinct: 0 }
  const consumer = new Consumer({
    groupId: `bb-soak-${randomBytes(5).toString('hex')}`, clientId: 'bb-soak-consumer', bootstrapBrokers: KAFKA_BROKERS,
    deserializers: stringDeserializers
  })
  let read = 0
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 500, minBytes: 1 })
  let idle: NodeJS.Timeout | undefined
  try {
    const idleMs = 30_000
    idle = setTimeout(() => void stream.close(), idleMs)
    for await (const message of stream) {
      read++
      eventIds.add(String(message.headers.get('event_id')))
      idle.refresh()
      if (read >= messages) break
    }
  } finally {
    clearTimeout(idle)
    await stream.close().catch(() => {})
    await consumer.close(true).catch(() => {})
  }
  if (read < messages) throw new Error(`read ${fmtInt(read)} of the topic's ${fmtInt(messages)} messages before it went quiet`)
  return { messages, distinct: eventIds.size }
}

function logSummary(r: SoakResult, log: (message: string) => void): void {
  const o = r.overall
  log(`overall: intake p50 ${fmtMs(o.intakeP50Ms)} p99 ${fmtMs(o.intakeP99Ms)} max ${fmtMs(o.intakeMaxMs)} ms; ` +
    `end to end p50 ${fmtMs(o.endToEndP50Ms)} p99 ${fmtMs(o.endToEndP99Ms)} ms; RSS max ${o.rssMaxMb.toFixed(0)} MB (peak ${o.peakRssMb.toFixed(0)}); ` +
    `lag p99 ≤ ${fmtMs(o.lagP99MaxMs)} ms, max ${fmtMs(o.lagMaxMs)} ms; drain ${(r.drainMs / 1000).toFixed(1)} s`)
  for (const trend of r.trends) {
    log(`trend ${trend.name}: ${trend.growthPer10Min >= 0 ? '+' : ''}${trend.growthPer10Min.toFixed(1)} ${trend.unit} per 10 min ` +
      `(${(trend.growthPer10MinRelative * 100).toFixed(1)} % of the mean ${trend.mean.toFixed(1)}; allowed ${trend.allowedPer10Min.toFixed(1)}, ${trend.rule}) ` +
      `over ${trend.points} windows → ${trend.verdict}`)
  }
  const l = r.loss
  log(`loss check: ${l.ok ? 'none' : `FAILED: ${l.problems.join('; ')}`} (${fmtInt(l.sent)} sent, ${fmtInt(l.accepted)} accepted, ` +
    `${fmtInt(l.receiptsByStatus.done ?? 0)} done, ${fmtInt(l.documentsWithEvents)} documents with events` +
    `${l.kafka === null ? '' : `, ${fmtInt(l.kafka.documentsPublished)} published, ${fmtInt(l.kafka.duplicates)} duplicates on the topic`})`)
  if (!r.verdict.keptUp) {
    log(`WARNING: the bridge did not keep up with ${fmtInt(r.settings.ratePerSecond)}/s (${fmtInt(r.windows.at(-1)?.backlog ?? 0)} pending at the end ` +
      'of the load): end-to-end latency measured the queue; lower --rate or quiet the machine')
  }
  log(`verdict: RSS ${r.verdict.rss}, p99 ${r.verdict.p99}${r.verdict.indicative ? ' (short run: indicative only)' : ''}; ` +
    `RSS ≤ ${SOAK_TARGETS.rssMaxMb} MB ${r.verdict.rssTargetMet ? 'met' : 'MISSED'}; total ${(r.totalMs / 1000).toFixed(0)} s`)
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      duration: { type: 'string', default: '10m' },
      warmup: { type: 'string' },
      rate: { type: 'string', default: String(DEFAULT_RATE_PER_SECOND) },
      window: { type: 'string' },
      users: { type: 'string', default: '100' },
      workers: { type: 'string', default: '40' },
      redis: { type: 'boolean', default: false },
      kafka: { type: 'boolean', default: false },
      'drain-timeout': { type: 'string' },
      'keep-db': { type: 'boolean', default: false },
      /** KEY=VALUE, repeatable: extra environment of the bridge (experiments). */
      'bridge-env': { type: 'string', multiple: true, default: [] },
      /** Node flags of the bridge, space-separated (experiments), e.g. '--max-semi-space-size=16'. */
      'node-options': { type: 'string', default: '' },
      /** Do not stand in for autovacuum when the server has it off. */
      'no-vacuum': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false }
    }
  })
  const result = await runSoak({
    durationMs: parseDuration(flags.duration),
    ...flags.warmup === undefined ? {} : { warmupMs: parseDuration(flags.warmup) },
    ratePerSecond: Number(flags.rate),
    ...flags.window === undefined ? {} : { windowMs: parseDuration(flags.window) },
    users: Number(flags.users),
    workers: Number(flags.workers),
    redis: flags.redis,
    kafka: flags.kafka,
    ...flags['drain-timeout'] === undefined ? {} : { drainTimeoutMs: parseDuration(flags['drain-timeout']) },
    keepDb: flags['keep-db'],
    bridgeEnv: Object.fromEntries(flags['bridge-env'].map((entry) => {
      const at = entry.indexOf('=')
      if (at < 1) throw new Error(`--bridge-env takes KEY=VALUE, not ${entry}`)
      return [entry.slice(0, at), entry.slice(at + 1)]
    })),
    nodeOptions: flags['node-options'].split(' ').filter((flag) => flag !== ''),
    vacuum: !flags['no-vacuum'],
    write: !flags['no-write'],
    command: ['node bench/soak/run.ts', ...process.argv.slice(2)].join(' ')
  })
  if (!result.loss.ok) process.exitCode = 1
}

if (import.meta.main) {
  const log = (message: string): void => { process.stderr.write(`[soak] ${message}\n`) }
  await runBenchmark(main, stopSoak, log)
  // After a failure the load generator's timeline may still be running (it has no abort): end here.
  process.exit()
}
