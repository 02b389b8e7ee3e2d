/**
 * Webhook intake benchmark (`npm run bench:webhooks`): signed notifications of one provider (--provider oura, the
 * default, or whoop) → durable receipts.
 *
 * Arms, each a server in its own child process (bench/webhooks/server.ts), all started once and measured side
 * by side in the same run:
 * - bridge: the real app (createApp) on a scratch PostgreSQL database with REDIS_URL set (dedup markers in
 *   Redis, as a node of a multi-node deployment runs), the provider under test enabled (only it);
 * - bridge-memory: the same on its own scratch database without REDIS_URL (in-process cache, one node);
 * - floor / floor-batched: the baseline plus a receipt INSERT per webhook / group-committed INSERTs (references
 *   for what a durable intake costs at least);
 * - baseline: bare Fastify with the same raw-body parser, signature check and notification parser, no I/O.
 * The worker pool is switched off with MAX_CONCURRENT_WEBHOOKS=0 where the configuration accepts it (the run
 * records whether it did), the provider's API URL (OURA_API_URL / WHOOP_API_URL) points at a closed port,
 * MAX_RECEIPT_BACKLOG is 10,000,000. Every arm takes the same provider's notifications (bench/webhooks/notifications.ts)
 * and checks them with the same functions (server.ts: the provider's verify and parse, as the bridge's dialect calls them).
 *
 * Load shapes (bench/lib/http-load.ts; every notification unique and validly signed with the current time):
 * - saturation: closed loop, --connections (100) keep-alive connections, requests/s;
 * - rate: open loop at a fixed --rate (1,000/s) on an absolute timeline, latency from when each request was due;
 *   --rates 1000,5000 runs one such shape per rate (results per rate: `ratePerSecond` of each rate summary);
 * - concurrency: closed loop at --concurrency (50) connections, the reference system's condition.
 * Each of several rounds runs every shape in shuffled order and, within a shape, the arms in shuffled order;
 * ratios are taken per round, their median reported. After every phase the bridge arms' receipts are counted:
 * the count must equal the phase's 200 answers, and no answer may be non-2xx.
 *
 * Another workload (e.g. end to end: notification → document fetched from the Oura simulator → stored events)
 * fits in as another kind of arm: a server child plus a request factory and a check; the load shapes, the
 * load generator and the statistics are shared.
 *
 * After each phase's check the receipts table is emptied, so every phase starts from the same table (with
 * --backlog N: N pending receipts). The machine is shared: phases start when it is quiet and are repeated when
 * outside work disturbed them.
 *
 * Flags: --provider oura|whoop, --quick (~2 min), --rounds N, --connections N, --concurrency N, --rate N or --rates N,N, --seconds N (closed-loop
 * phases), --rate-seconds N, --shapes saturation,rate,concurrency, --arms bridge,bridge-memory,baseline,
 * --backlog N, --cpu-prof (profile the bridge children during the measured rounds into
 * bench/results/profiles; results and docs are then not written), --keep-db, --no-write,
 * --server-node-options='<flags>'. Progress goes to stderr; results to bench/results/webhooks.json (Oura) or
 * webhooks-whoop.json and the "Webhook intake (Oura)" or "Webhook intake (WHOOP)" section of docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { loadConfig } from '../../src/config/load.ts'
import { ConfigError } from '../../src/errors.ts'
import { startChildServer, stopChildServers, type ChildServer } from '../lib/child.ts'
import { docsFile, updateDocsSection } from '../lib/docs.ts'
import { describeMachine, type Machine } from '../lib/environment.ts'
import { closedLoop, okCount, openLoop, type LoadResult, type LoadTarget } from '../lib/http-load.ts'
import { backendCpu, cpuDelta, cpuMs, loadAverage, machineBusyMs, ownCpuMs, waitForQuietMachine } from '../lib/proc.ts'
import { runBenchmark } from '../lib/run.ts'
import { ADMIN_URL, createScratchDatabase, databaseName, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, makeRandom, median, shuffled, summarizeLatencies, type LatencySummary } from '../lib/stats.ts'
import { createNotificationSource, PROVIDERS, type NotificationSource, type Provider } from './notifications.ts'
import type { Usage } from './server.ts'
import { Redis } from 'ioredis'
import { BENCH_REDIS_URL, deleteRedisKeys } from '../lib/redis.ts'

const ROOT = new URL('../../', import.meta.url)
const PROFILE_DIR = new URL('bench/results/profiles/', ROOT)
const SERVER_SCRIPT = new URL('bench/webhooks/server.ts', ROOT)

const TARGETS = { webhooksPerSecond: 10_000, p99Ms: 10, p99RatePerSecond: 1000 }
const REDIS_URL = BENCH_REDIS_URL
/** Nothing listens on the discard port: a worker that fetched anyway would fail fast, never reach the provider. */
const UNUSED_API_URL = 'http://127.0.0.1:9'
const MAX_RECEIPT_BACKLOG = 10_000_000
/** The bridge's default pool, which the floor arms use too. */
const DB_POOL_SIZE = 10
/** Provider users the notifications rotate over. */
const USERS = 1000

const ARM_IDS = ['bridge', 'bridge-memory', 'floor', 'floor-batched', 'baseline'] as const
type ArmId = (typeof ARM_IDS)[number]
const ARM_LABELS: Record<ArmId, string> = {
  bridge: 'bridge, PostgreSQL + Redis',
  'bridge-memory': 'bridge, PostgreSQL + in-process cache',
  floor: 'floor: Fastify + HMAC + one INSERT per webhook',
  'floor-batched': 'floor: Fastify + HMAC + batched INSERT (group commit)',
  baseline: 'baseline: Fastify + HMAC, no I/O'
}
/** The arms whose figures the targets are about; the others are references. */
const isBridge = (id: ArmId): boolean => id === 'bridge' || id === 'bridge-memory'

const { values: flags } = parseArgs({
  options: {
    provider: { type: 'string', default: 'oura' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    connections: { type: 'string', default: '100' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    rates: { type: 'string' },
    seconds: { type: 'string' },
    'rate-seconds': { type: 'string' },
    arms: { type: 'string', default: ARM_IDS.join(',') },
    shapes: { type: 'string', default: 'saturation,rate,concurrency' },
    backlog: { type: 'string', default: '0' },
    'cpu-prof': { type: 'boolean', default: false },
    'keep-db': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'server-node-options': { type: 'string', default: '' }
  }
})
const provider = flags.provider as Provider
if (!PROVIDERS.includes(provider)) throw new Error(`--provider takes one of ${PROVIDERS.join(', ')}`)

interface ProviderBench {
  name: string
  /** Section of docs/benchmarks.md and the marker of its hand-written notes. */
  docsTitle: string
  docsMarker: string
  resultsFile: URL
  /** The system we replace, per node: webhooks/s, and p99 at `concurrency` concurrent webhooks. */
  reference: { webhooksPerSecond: number, p99Ms: number, concurrency: number }
  /** The bridge's environment that enables this provider alone. */
  env(): Record<string, string | undefined>
  /** The variable holding its client secret (webhook signing key) for the non-bridge servers. */
  secretVariable: 'OURA_CLIENT_SECRET' | 'WHOOP_CLIENT_SECRET'
  /** For the docs: the bridge functions the baseline calls, and what a notification looks like. */
  functions: string
  notifications: string
  simulator: string
}

const PROVIDER_BENCH: Record<Provider, ProviderBench> = {
  oura: {
    name: 'Oura',
    docsTitle: 'Webhook intake (Oura)',
    docsMarker: 'webhooks',
    resultsFile: new URL('bench/results/webhooks.json', ROOT),
    // 2,400 webhooks/min on one node, p99 87 ms at 50 concurrent webhooks.
    reference: { webhooksPerSecond: 40, p99Ms: 87, concurrency: 50 },
    env: () => ({ OURA_CLIENT_ID: 'bench-client', OURA_API_URL: UNUSED_API_URL, WHOOP_CLIENT_ID: undefined }),
    secretVariable: 'OURA_CLIENT_SECRET',
    functions: '`verifyOuraSignature` and `parseOuraNotification`',
    notifications: '(Oura\'s body shape, a unique `object_id`, ' + `${fmtInt(USERS)} users, six data types, create/update) signed when it is sent: ` +
      'upper-case hex HMAC-SHA256 of `x-oura-timestamp` (the current second) + body with the client secret',
    simulator: 'the Oura simulator\'s `signNotification`'
  },
  whoop: {
    name: 'WHOOP',
    docsTitle: 'Webhook intake (WHOOP)',
    docsMarker: 'webhooks-whoop',
    resultsFile: new URL('bench/results/webhooks-whoop.json', ROOT),
    // 2,400 webhooks/min on one node, p99 93 ms at 50 concurrent webhooks.
    reference: { webhooksPerSecond: 40, p99Ms: 93, concurrency: 50 },
    env: () => ({ WHOOP_CLIENT_ID: 'bench-client', WHOOP_API_URL: UNUSED_API_URL, OURA_CLIENT_ID: undefined }),
    secretVariable: 'WHOOP_CLIENT_SECRET',
    functions: '`verifyWhoopSignature` and `parseWhoopNotification` (dedup key `trace_id`, as the bridge\'s dialect)',
    notifications: '(WHOOP\'s v2 body `{"user_id":…,"id":"<uuid>","type":"sleep.updated","trace_id":"<uuid>"}`, a unique `trace_id` and `id`, ' +
      `${fmtInt(USERS)} users, sleep/recovery/workout × updated/deleted) signed when it is sent: base64 HMAC-SHA256 of ` +
      '`X-WHOOP-Signature-Timestamp` (the current Unix time in milliseconds) + body with the client secret',
    simulator: 'the WHOOP simulator\'s `whoopWebhookBody` and `signWhoopWebhook`'
  }
}
const bench = PROVIDER_BENCH[provider]
const REFERENCE = bench.reference
const quick = flags.quick
const rounds = Number(flags.rounds ?? (quick ? 2 : 5))
const connections = Number(flags.connections)
const concurrency = Number(flags.concurrency ?? REFERENCE.concurrency)
if (flags.rate !== undefined && flags.rates !== undefined) throw new Error('--rate and --rates exclude each other')
/** The fixed rates of the rate shape, requests/s, each its own shape; the first also paces the warm-up. */
const rates = (flags.rates ?? flags.rate ?? String(TARGETS.p99RatePerSecond)).split(',').map((rate) => Number(rate.trim()))
if (rates.some((rate) => !Number.isInteger(rate) || rate < 1) || new Set(rates).size !== rates.length) {
  throw new Error('--rate and --rates take positive integers (--rates without repeats)')
}
const ratePerSecond = rates[0]!
const closedSeconds = Number(flags.seconds ?? (quick ? 2 : 6))
const rateSeconds = Number(flags['rate-seconds'] ?? (quick ? 3 : 10))
/** Pending receipts the bridge's table holds when each phase starts (experiments: the backlog count's cost). */
const backlog = Number(flags.backlog)
const profiling = flags['cpu-prof']
const serverNodeOptions = flags['server-node-options'].split(' ').filter((flag) => flag !== '')
const armIds = flags.arms.split(',').map((arm) => arm.trim()) as ArmId[]
if ([rounds, connections, concurrency, ratePerSecond, closedSeconds, rateSeconds].some((value) => !Number.isInteger(value) || value < 1)) {
  throw new Error('--rounds, --connections, --concurrency, --rate, --seconds and --rate-seconds must be positive integers')
}
if (!Number.isInteger(backlog) || backlog < 0) throw new Error('--backlog must be a whole number')
if (armIds.some((arm) => !ARM_IDS.includes(arm)) || !armIds.includes('baseline') || armIds.length < 2) {
  throw new Error(`--arms takes baseline and at least one of ${ARM_IDS.filter((arm) => arm !== 'baseline').join(', ')}`)
}
/** In the order of ARM_IDS, whatever order they were given in. */
armIds.sort((a, b) => ARM_IDS.indexOf(a) - ARM_IDS.indexOf(b))
const WARMUP_SECONDS = quick ? 1 : 3

const log = (message: string): void => {
  process.stderr.write(`[bench:webhooks ${provider} ${(performance.now() / 1000).toFixed(1)}s] ${message}\n`)
}

// ---------------------------------------------------------------------------------------------------------------
// Load shapes

type ShapeId = 'saturation' | 'rate' | 'concurrency'
type Shape =
  | { id: 'saturation' | 'concurrency', kind: 'closed', connections: number, seconds: number }
  | { id: 'rate', kind: 'open', ratePerSecond: number, seconds: number }

const ALL_SHAPES: readonly Shape[] = [
  { id: 'saturation', kind: 'closed', connections, seconds: closedSeconds },
  ...rates.map((rate): Shape => ({ id: 'rate', kind: 'open', ratePerSecond: rate, seconds: rateSeconds })),
  { id: 'concurrency', kind: 'closed', connections: concurrency, seconds: closedSeconds }
]
const shapeIds = flags.shapes.split(',').map((shape) => shape.trim())
const SHAPES = ALL_SHAPES.filter((shape) => shapeIds.includes(shape.id))
if (shapeIds.some((id) => !ALL_SHAPES.some((shape) => shape.id === id)) || new Set(shapeIds).size !== shapeIds.length) {
  throw new Error(`--shapes takes some of ${[...new Set(ALL_SHAPES.map((shape) => shape.id))].join(', ')}`)
}

/** A shape's name in logs and checks: its id, and for the rate shapes, when several rates run, the rate too. */
function shapeKey(shape: Shape): string {
  return shape.kind === 'open' && rates.length > 1 ? `rate ${shape.ratePerSecond}/s` : shape.id
}

function describeShape(shape: Shape): string {
  return shape.kind === 'open'
    ? `fixed rate ${fmtInt(shape.ratePerSecond)}/s (open loop)`
    : `${shape.connections} connections (closed loop)`
}

/** Open loop: connections ready at the start, and the most it may open while requests wait. */
const OPEN_LOOP_CONNECTIONS = { initial: 16, max: 256 }

function runShape(shape: Shape, target: LoadTarget, source: NotificationSource): Promise<LoadResult> {
  const makeRequest = source.forTarget(target)
  return shape.kind === 'open'
    ? openLoop(target, {
      ratePerSecond: shape.ratePerSecond, durationMs: shape.seconds * 1000, makeRequest,
      initialConnections: OPEN_LOOP_CONNECTIONS.initial, maxConnections: OPEN_LOOP_CONNECTIONS.max
    })
    : closedLoop(target, { connections: shape.connections, durationMs: shape.seconds * 1000, makeRequest })
}

// ---------------------------------------------------------------------------------------------------------------
// Arms

const SECRETS = {
  ADMIN_API_TOKEN: randomBytes(24).toString('hex'),
  LOG_PSEUDONYM_KEY: randomBytes(24).toString('hex'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  OURA_CLIENT_SECRET: randomBytes(24).toString('hex'),
  OURA_WEBHOOK_VERIFICATION_TOKEN: randomBytes(16).toString('hex'),
  WHOOP_CLIENT_SECRET: randomBytes(24).toString('hex')
}

interface Arm {
  id: ArmId
  server: ChildServer
  target: LoadTarget
  /** Bridge arms: their scratch database and a client on it for the receipt checks. */
  database?: { url: string, name: string, client: pg.Client }
  /** 2xx answers so far, warm-up included. */
  okTotal: number
  /** 2xx answers since the receipts table was last emptied: what its count must exceed the backlog by. */
  okSinceReset: number
  /** Receipts found by the checks after each phase (backlog rows not counted), by status. */
  receiptStatuses: Record<string, number>
  /** Server usage after warm-up and at the end of the rounds. */
  usageAfterWarmup?: Usage
  usageAtEnd?: Usage
}

interface WorkerSetting {
  env: Record<string, string>
  /** What the docs say about the worker pool during the run. */
  note: string
  disabled: boolean
}

/**
 * MAX_CONCURRENT_WEBHOOKS=0 (intake only, no worker) where the configuration accepts it; otherwise the default
 * worker pool runs, against an API URL where nothing listens, and the docs say so.
 */
function workerSetting(): WorkerSetting {
  try {
    loadConfig({ ...appEnv('postgres://127.0.0.1/unused', undefined, { env: {}, note: '', disabled: false }), MAX_CONCURRENT_WEBHOOKS: '0' })
    return { env: { MAX_CONCURRENT_WEBHOOKS: '0' }, disabled: true, note: 'MAX_CONCURRENT_WEBHOOKS=0: the node takes webhooks only, no worker pool works the receipts off' }
  } catch (error) {
    if (!(error instanceof ConfigError) || !error.problems.some((problem) => problem.includes('MAX_CONCURRENT_WEBHOOKS'))) throw error
    return {
      env: {},
      disabled: false,
      note: 'the configuration does not accept MAX_CONCURRENT_WEBHOOKS=0: the worker pool runs at its default concurrency ' +
        `(if it exists in this build), and its fetches go to ${UNUSED_API_URL}, where nothing listens`
    }
  }
}

function appEnv(databaseUrl: string | undefined, redisPrefix: string | undefined, worker: WorkerSetting): Record<string, string | undefined> {
  return {
    ...process.env,
    ...SECRETS,
    ...worker.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisPrefix === undefined ? undefined : REDIS_URL,
    BENCH_CACHE_PREFIX: redisPrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...bench.env(),
    MAX_RECEIPT_BACKLOG: String(MAX_RECEIPT_BACKLOG),
    // No connections exist, but a reconciliation pass should not even look during the run.
    RECONCILE_INTERVAL_MINUTES: '0',
    KAFKA_BROKERS: undefined
  }
}

/** What the servers other than the bridge need: which provider's notifications they take, and its secret. */
const armSecret = { BENCH_PROVIDER: provider, [bench.secretVariable]: SECRETS[bench.secretVariable] }

async function startArm(id: ArmId, worker: WorkerSetting, redisPrefix: string): Promise<Arm> {
  let database: Arm['database']
  let env: Record<string, string | undefined>
  if (id === 'baseline') {
    env = { ...process.env, ...armSecret, BENCH_SERVER: 'baseline' }
  } else {
    const url = await createScratchDatabase('webhooks')
    env = isBridge(id)
      ? { ...appEnv(url, id === 'bridge' ? redisPrefix : undefined, worker), BENCH_SERVER: 'bridge', BENCH_PROFILE: profiling ? '1' : '0' }
      : { ...process.env, ...armSecret, DATABASE_URL: url, DB_POOL_SIZE: String(DB_POOL_SIZE), BENCH_SERVER: id }
    const client = new pg.Client({ connectionString: url })
    database = { url, name: databaseName(url), client }
  }
  const server = await startChildServer(SERVER_SCRIPT, { env, execArgv: serverNodeOptions })
  // The app migrates its database on start; only then can the checks connect.
  await database?.client.connect()
  const address = new URL(server.address)
  const target = { host: address.hostname, port: Number(address.port) }
  log(`${id}: pid ${server.pid} at ${server.address}`)
  const arm: Arm = { id, server, target, okTotal: 0, okSinceReset: 0, receiptStatuses: {}, ...database === undefined ? {} : { database } }
  await resetReceipts(arm)
  return arm
}

/** Autovacuum workers busy in this run's databases ("database: query"). */
async function autovacuumWorkers(admin: pg.Client): Promise<string[]> {
  const names = [...arms.values()].flatMap((arm) => arm.database === undefined ? [] : [arm.database.name])
  const { rows } = await admin.query<{ datname: string, query: string }>(
    "SELECT datname, query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = ANY($1)", [names])
  return rows.map((row) => `${row.datname}: ${row.query}`)
}

const usageOf = (arm: Arm): Promise<Usage> => arm.server.request<Usage>({ type: 'usage' }, 'usage')

async function receiptsByStatus(arm: Arm): Promise<Record<string, number>> {
  const { rows } = await arm.database!.client.query<{ status: string, n: number }>(
    'SELECT status, count(*)::int AS n FROM webhook_receipts GROUP BY status ORDER BY status')
  return Object.fromEntries(rows.map((row) => [row.status, row.n]))
}

/**
 * Empties the receipts table between phases (nothing works it off with the worker switched off) and, with
 * --backlog, fills it with that many pending receipts, vacuumed as autovacuum would have by then. Every phase
 * thus starts from the same table instead of inheriting all earlier phases' receipts: the intake path counts
 * the pending receipts once a second, and that count grows with the backlog.
 */
async function resetReceipts(arm: Arm): Promise<void> {
  const client = arm.database?.client
  if (client === undefined) return
  await client.query('TRUNCATE webhook_receipts')
  if (backlog > 0) {
    await client.query(`INSERT INTO webhook_receipts (provider, dedup_key, event_type, data_type, object_id, provider_user_id)
      SELECT $2::text, 'backlog|' || g, 'update', 'sleep', 'backlog-' || g, 'bench-user-' || (g % ${USERS}) FROM generate_series(1, $1::int) AS g`,
    [backlog, provider])
    await client.query('VACUUM (ANALYZE) webhook_receipts')
  }
  arm.okSinceReset = 0
}

/** A forged signature must be refused: proves the arm verifies what it is sent. */
async function checkRefusesForgery(arm: Arm, source: NotificationSource): Promise<void> {
  const forged = source.forged(arm.target)
  // One request: due at once, on one connection.
  const probe = await openLoop(arm.target, { ratePerSecond: 1000, durationMs: 1, makeRequest: () => forged, initialConnections: 1, maxConnections: 1 })
  const statuses = [...probe.statusCounts.keys()]
  if (probe.answered !== 1 || statuses.some((status) => status < 400)) {
    throw new Error(`${arm.id} did not refuse a forged signature: ${JSON.stringify([...probe.statusCounts])}`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement

interface PhaseRun {
  round: number
  arm: ArmId
  shape: ShapeId
  /** shapeKey() of its shape: tells the rate shapes apart. */
  shapeKey: string
  sent: number
  ok: number
  wallMs: number
  /** 2xx answers per second of wall time. */
  okPerSecond: number
  latenciesMs: Float64Array
  sendLagMs: Float64Array
  connectionsOpened: number
  serverCpuMs: number
  serverSystemCpuMs: number
  /** Share of the phase the server's event loop was busy. */
  serverLoopBusy: number
  postgresCpuMs: number
  redisCpuMs: number
  clientCpuMs: number
  machineBusyMs: number
  problems: string[]
}

interface Accounting {
  admin: pg.Client
  redisPid: number | undefined
}

async function measure(round: number, arm: Arm, shape: Shape, source: NotificationSource, accounting: Accounting): Promise<PhaseRun> {
  const usageBefore = await usageOf(arm)
  const pgBefore = arm.database === undefined ? undefined : await backendCpu(accounting.admin, arm.database.name)
  const redisBefore = accounting.redisPid === undefined ? 0 : cpuMs(accounting.redisPid)
  const machineBefore = machineBusyMs()
  const clientBefore = ownCpuMs()
  const result = await runShape(shape, arm.target, source)
  const clientCpuMs = ownCpuMs() - clientBefore
  const machine = machineBusyMs() - machineBefore
  const redisCpuMs = accounting.redisPid === undefined ? 0 : cpuMs(accounting.redisPid) - redisBefore
  const postgresCpuMs = pgBefore === undefined ? 0 : cpuDelta(pgBefore, await backendCpu(accounting.admin, arm.database!.name))
  const usageAfter = await usageOf(arm)
  const ok = okCount(result)
  const problems = await checkPhase(arm, result)
  const loopActive = usageAfter.eluActiveMs - usageBefore.eluActiveMs
  const loopIdle = usageAfter.eluIdleMs - usageBefore.eluIdleMs
  return {
    round,
    arm: arm.id,
    shape: shape.id,
    shapeKey: shapeKey(shape),
    sent: result.sent,
    ok,
    wallMs: result.wallMs,
    okPerSecond: ok / (result.wallMs / 1000),
    latenciesMs: result.latenciesMs,
    sendLagMs: result.sendLagMs,
    connectionsOpened: result.connectionsOpened,
    serverCpuMs: (usageAfter.cpuUs - usageBefore.cpuUs) / 1000,
    serverSystemCpuMs: (usageAfter.cpuSystemUs - usageBefore.cpuSystemUs) / 1000,
    serverLoopBusy: loopActive / (loopActive + loopIdle),
    postgresCpuMs,
    redisCpuMs,
    clientCpuMs,
    machineBusyMs: machine,
    problems
  }
}

/** Cores busy outside the server, its PostgreSQL backends, Redis and the load generator during a phase. */
function otherCores(run: PhaseRun): number {
  return Math.max(0, run.machineBusyMs - run.clientCpuMs - run.serverCpuMs - run.postgresCpuMs - run.redisCpuMs) / run.wallMs
}

const ACCEPTED_BODY = '{"status":"accepted"}'

/** Every request answered 2xx with "accepted", and (bridge) one more receipt per 2xx; then the table is reset. */
async function checkPhase(arm: Arm, result: LoadResult): Promise<string[]> {
  const problems: string[] = []
  const ok = okCount(result)
  arm.okTotal += ok
  arm.okSinceReset += ok
  const failed = result.answered - okCount(result)
  if (failed > 0) problems.push(`${failed} non-2xx answers (${result.failureSamples.join(' | ')})`)
  if (result.transportErrors > 0) problems.push(`${result.transportErrors} requests unanswered (${result.transportErrorSamples.join(' | ')})`)
  for (const [body, count] of result.okBodies) {
    if (body !== ACCEPTED_BODY) problems.push(`${count} 2xx answers said ${body.slice(0, 100)}`)
  }
  if (arm.database !== undefined) {
    const statuses = await receiptsByStatus(arm)
    statuses.pending = (statuses.pending ?? 0) - backlog
    const stored = Object.values(statuses).reduce((sum, n) => sum + n, 0)
    if (stored !== arm.okSinceReset) problems.push(`${stored} receipts stored after ${arm.okSinceReset} 2xx answers`)
    for (const [status, n] of Object.entries(statuses)) arm.receiptStatuses[status] = (arm.receiptStatuses[status] ?? 0) + n
    await resetReceipts(arm)
  }
  for (const problem of problems) log(`CHECK FAILED ${arm.id}: ${problem}`)
  return problems
}

/**
 * The machine is shared (other people's tests run on it too): each phase starts once the machine has been quiet
 * for a second, and a phase during which processes outside the benchmark's accounting used more than
 * DISTURBED_OTHER_CORES is measured again (its requests still count for the receipt check).
 */
const QUIET = { maxCores: 0.25, windowMs: 1000, timeoutMs: (quick ? 2 : 10) * 60_000 }
const DISTURBED_OTHER_CORES = 0.5
const MAX_ATTEMPTS = 3

async function measureUndisturbed(
  round: number, arm: Arm, shape: Shape, source: NotificationSource, accounting: Accounting, discarded: PhaseRun[]
): Promise<PhaseRun> {
  for (let attempt = 1; ; attempt++) {
    const quiet = await waitForQuietMachine(QUIET.maxCores, QUIET.windowMs, QUIET.timeoutMs)
    if (!quiet.quiet) log(`WARNING: the machine stayed busy (${quiet.busyCores.toFixed(2)} cores) for ${(quiet.waitedMs / 1000).toFixed(0)} s; measuring anyway`)
    else if (quiet.waitedMs > 5000) log(`waited ${(quiet.waitedMs / 1000).toFixed(0)} s for the machine to calm down`)
    const vacuuming = await autovacuumWorkers(accounting.admin)
    if (vacuuming.length > 0) log(`autovacuum running before ${arm.id} ${shapeKey(shape)}: ${vacuuming.join(', ')}`)
    const run = await measure(round, arm, shape, source, accounting)
    const other = otherCores(run)
    if (other <= DISTURBED_OTHER_CORES || attempt === MAX_ATTEMPTS) return run
    log(`${arm.id} ${shapeKey(shape)}: processes outside the benchmark used ${other.toFixed(2)} cores; measuring again`)
    discarded.push(run)
  }
}

async function warmUp(arm: Arm, source: NotificationSource): Promise<void> {
  const closed = await closedLoop(arm.target, { connections: concurrency, durationMs: WARMUP_SECONDS * 1000, makeRequest: source.forTarget(arm.target) })
  const problems = await checkPhase(arm, closed)
  const open = await openLoop(arm.target, {
    ratePerSecond, durationMs: 1000, makeRequest: source.forTarget(arm.target),
    initialConnections: OPEN_LOOP_CONNECTIONS.initial, maxConnections: OPEN_LOOP_CONNECTIONS.max
  })
  problems.push(...await checkPhase(arm, open))
  if (problems.length > 0) throw new Error(`warm-up of ${arm.id} failed: ${problems.join('; ')}`)
}

// ---------------------------------------------------------------------------------------------------------------
// Summaries

interface Ratio {
  median: number
  min: number
  max: number
  perRound: number[]
}

interface ShapeSummary {
  arm: ArmId
  shape: ShapeId
  /** Rate shape: its fixed rate, requests/s (one summary per rate with --rates). */
  ratePerSecond?: number
  rounds: number
  requestsPerRound: number
  /** Median over rounds of 2xx answers per second. */
  okPerSecond: number
  okPerSecondPerRound: number[]
  latency: LatencySummary
  /** p99 of each round alone, in ms: how much of the pooled tail one bad round makes. */
  p99PerRoundMs: number[]
  sendLag?: LatencySummary
  maxConnections: number
  /** CPU per webhook, in µs: server process, PostgreSQL backends of its database, Redis, load generator, machine. */
  cpuUsPerWebhook: { server: number, serverSystem: number, postgres: number, redis: number, client: number, machine: number }
  /** Cores used outside the accounted processes, mean over rounds (other work on the machine, kernel threads). */
  otherCores: number
  /** Mean share of the phase the server's event loop was busy. */
  serverLoopBusy: number
  /** Arms other than the baseline: ours / baseline per round, requests/s for closed shapes and p99 for the fixed rate. */
  ratio?: Ratio
  /** Bridge arms, when that arm ran: the same against `floor-batched` (verify, parse, group-committed INSERT, nothing else). */
  ratioToFloor?: Ratio
}

function ratioOf(values: number[]): Ratio {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), perRound: values }
}

function summarize(arm: ArmId, shape: Shape, runs: PhaseRun[], baseline: PhaseRun[], floor: PhaseRun[]): ShapeSummary {
  const total = (value: (run: PhaseRun) => number): number => runs.reduce((sum, run) => sum + value(run), 0)
  const webhooks = total((run) => run.ok)
  const perWebhook = (value: (run: PhaseRun) => number): number => total(value) * 1000 / webhooks
  const summary: ShapeSummary = {
    arm,
    shape: shape.id,
    ...(shape.kind === 'open' ? { ratePerSecond: shape.ratePerSecond } : {}),
    rounds: runs.length,
    requestsPerRound: median(runs.map((run) => run.sent)),
    okPerSecond: median(runs.map((run) => run.okPerSecond)),
    okPerSecondPerRound: runs.map((run) => run.okPerSecond),
    latency: summarizeLatencies(runs.map((run) => run.latenciesMs)),
    p99PerRoundMs: runs.map((run) => summarizeLatencies([run.latenciesMs]).p99Ms),
    maxConnections: Math.max(...runs.map((run) => run.connectionsOpened)),
    cpuUsPerWebhook: {
      server: perWebhook((run) => run.serverCpuMs),
      serverSystem: perWebhook((run) => run.serverSystemCpuMs),
      postgres: perWebhook((run) => run.postgresCpuMs),
      redis: perWebhook((run) => run.redisCpuMs),
      client: perWebhook((run) => run.clientCpuMs),
      machine: perWebhook((run) => run.machineBusyMs)
    },
    serverLoopBusy: total((run) => run.serverLoopBusy) / runs.length,
    otherCores: total(otherCores) / runs.length
  }
  if (shape.kind === 'open') summary.sendLag = summarizeLatencies(runs.map((run) => run.sendLagMs))
  const p99 = (run: PhaseRun): number => summarizeLatencies([run.latenciesMs]).p99Ms
  const against = (reference: PhaseRun[]): Ratio => ratioOf(runs.map((run, i) => shape.kind === 'open'
    ? p99(run) / p99(reference[i]!)
    : run.okPerSecond / reference[i]!.okPerSecond))
  if (arm !== 'baseline') summary.ratio = against(baseline)
  if (isBridge(arm) && floor.length === runs.length) summary.ratioToFloor = against(floor)
  return summary
}

interface Target {
  name: string
  met: boolean
  detail: string
}

function evaluateTargets(summaries: ShapeSummary[]): Target[] {
  const targets: Target[] = []
  const find = (arm: ArmId, shape: ShapeId): ShapeSummary | undefined => summaries.find((s) => s.arm === arm && s.shape === shape)
  for (const arm of armIds.filter(isBridge)) {
    const saturation = find(arm, 'saturation')
    const rate = summaries.find((s) => s.arm === arm && s.shape === 'rate' && s.ratePerSecond === TARGETS.p99RatePerSecond)
    if (saturation !== undefined) {
      targets.push({
        name: `${arm}: intake ≥ ${fmtInt(TARGETS.webhooksPerSecond)}/s`, met: saturation.okPerSecond >= TARGETS.webhooksPerSecond,
        detail: `${fmtInt(saturation.okPerSecond)}/s at ${connections} connections (median of ${saturation.rounds} rounds)`
      })
    }
    if (rate !== undefined) {
      targets.push({
        name: `${arm}: p99 ≤ ${TARGETS.p99Ms} ms at ${fmtInt(TARGETS.p99RatePerSecond)}/s`, met: rate.latency.p99Ms <= TARGETS.p99Ms,
        detail: `p99 ${fmtMs(rate.latency.p99Ms)} ms over ${fmtInt(rate.latency.count)} requests`
      })
    }
  }
  return targets
}

// ---------------------------------------------------------------------------------------------------------------
// Report

interface Environment extends Machine {
  seed: number
  quick: boolean
  rounds: number
  redis: string
  worker: string
  workerDisabled: boolean
  serverNodeOptions: string[]
  loadAverage: { start: number, end: number }
  /** Cores used by processes outside the benchmark's accounting during the measured phases. */
  otherCpuCores: number
  /** Phases measured again because outside work disturbed them, as "arm shape (other cores)". */
  repeatedPhases: string[]
  /** Pending receipts in the bridge's table at the start of each phase (--backlog). */
  backlog: number
}

interface Memory {
  arm: ArmId
  rssAfterWarmupMb: number
  rssAtEndMb: number
  peakRssMb: number
  heapUsedAtEndMb: number
  heapTotalAtEndMb: number
  externalAtEndMb: number
}

interface Correctness {
  arm: ArmId
  ok: number
  receipts: number | undefined
  /** Receipts by status at the end (a worker that ran would have moved some). */
  statuses: Record<string, number>
  problems: string[]
}

const MB = 1024 ** 2

function renderSection(env: Environment, summaries: ShapeSummary[], targets: Target[], memory: Memory[], correctness: Correctness[], totalSeconds: number, notes: string): string {
  const lines: string[] = []
  const shapeOf = (id: ShapeId): Shape => SHAPES.find((shape) => shape.id === id)!
  const rateList = rates.length === 1 ? fmtInt(rates[0]!) : `${rates.slice(0, -1).map(fmtInt).join(', ')} and ${fmtInt(rates[rates.length - 1]!)}`
  lines.push(`## ${bench.docsTitle}`, '')
  lines.push(`Generated by \`bench/webhooks/run.ts\` on ${env.date.slice(0, 10)} (${env.quick ? 'quick' : 'full'} run, ` +
    `${totalSeconds.toFixed(0)} s, seed ${env.seed}). Raw data: \`${bench.resultsFile.pathname.slice(ROOT.pathname.length)}\`.`, '')
  lines.push('**Machine.**', '')
  lines.push(`- CPU: ${env.cpu.replace(/ \d+-Core Processor$/, '')}, ${env.cores} cores (load generator, servers, PostgreSQL and Redis share them; nothing pinned); RAM ${env.ramGb} GiB`)
  lines.push(`- Node ${env.node}; PostgreSQL ${env.postgres} on 127.0.0.1 (${Object.entries(env.postgresSettings).map(([k, v]) => `${k}=${v}`).join(', ')})`)
  lines.push(`- Redis ${env.redis} on 127.0.0.1 (bridge arm only); no Kafka (intake does not publish)`)
  lines.push(`- Bridge as deployed otherwise: DB_POOL_SIZE 10 (default), LOG_LEVEL=warn, MAX_RECEIPT_BACKLOG=${fmtInt(MAX_RECEIPT_BACKLOG)} ` +
    `(so intake never answers 503 during the run), ${env.worker}` +
    (env.serverNodeOptions.length > 0 ? `; server Node flags \`${env.serverNodeOptions.join(' ')}\`` : ''))
  lines.push(`- Other load: 1-min load average ${env.loadAverage.start.toFixed(2)} at start, ${env.loadAverage.end.toFixed(2)} at end; ` +
    `processes outside the benchmark (incl. PostgreSQL's WAL writer and checkpointer, kernel threads) used ${env.otherCpuCores.toFixed(2)} of ${env.cores} cores on average during the measured phases; ` +
    (env.repeatedPhases.length === 0 ? 'no phase had to be repeated' : `phases measured again because outside work disturbed them: ${env.repeatedPhases.join(', ')}`), '')
  lines.push('**Commands.**', '', '```sh')
  const command = provider === 'oura' ? 'npm run bench:webhooks' : `npm run bench:webhooks -- --provider ${provider}`
  const flag = provider === 'oura' ? '' : ` --provider ${provider}`
  const quickCommand = provider === 'oura' ? `${command} -- --quick` : `${command} --quick`
  // Comments aligned in a column at least 40 wide (as the Oura lines always were), past the longer command.
  const width = Math.max(40, quickCommand.length + 2)
  lines.push(`${command.padEnd(width)}# full run, ~13 min (five servers; longer while the machine is busy)`)
  lines.push(`${quickCommand.padEnd(width)}# ~2 min`)
  lines.push('# V8 CPU profile of the bridge servers during the measured rounds (results and docs are then not written), then')
  lines.push('# its top functions by self and inclusive time; below saturation, so that time in a syscall is CPU, not waiting for a core:')
  lines.push(`node_modules/.bin/node bench/webhooks/run.ts${flag} --cpu-prof --shapes rate --rate 2000 --rounds 2`)
  lines.push('node_modules/.bin/node bench/healthkit/cpuprofile-top.ts bench/results/profiles/<file>.cpuprofile')
  lines.push('# intake with 100,000 pending receipts in the table (the once-a-second backlog count):')
  lines.push(`node_modules/.bin/node bench/webhooks/run.ts${flag} --backlog 100000 --shapes rate --arms bridge-memory,baseline --rounds 2 --no-write`)
  lines.push('# other options: --rounds N --connections N --concurrency N --rate N (or --rates N,N) --seconds N --rate-seconds N --shapes saturation,rate,concurrency')
  lines.push('#   --arms bridge,bridge-memory,baseline --no-write --keep-db --server-node-options=\'<node flags>\'')
  lines.push('```', '')
  lines.push(`**Method.** ${armIds.length} servers, each its own child process, started once and measured side by side: *bridge* — the real app ` +
    `(\`createApp\`, ${bench.name} enabled, no other provider) on a scratch ` + 'PostgreSQL database with `REDIS_URL` set, so the dedup marker is read and set in Redis as on a ' +
    'node of a multi-node deployment; *bridge-memory* — the same on a second scratch database without `REDIS_URL` (in-process cache, one node); ' +
    '*baseline* — bare Fastify (`logger: false`, no hooks) with the bridge\'s raw-body content-type parser and the bridge\'s own ' +
    `${bench.functions}, answering \`{"status":"accepted"}\` with no I/O; *floor* — the baseline plus the ` +
    `bridge's own \`insertReceipt\` on its own scratch database (one autocommit INSERT per webhook, a pool of ${DB_POOL_SIZE}): the least a ` +
    'durable intake with a commit per webhook does, without the dedup cache, backlog check, metrics and hooks; *floor-batched* — the ' +
    'baseline plus group commit: the receipts of all requests parsed in one turn of the event loop (at most 256) go into one ' +
    '`INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING dedup_key`, and each request is answered once that statement ' +
    'committed (the bridge\'s intake batches too, through `src/lib/batcher.ts`; this arm is the same idea with nothing else around it). ' +
    'Every request is a new notification ' +
    `${bench.notifications}; the bytes are checked once per run against ${bench.simulator}, and each server must refuse a forged ` +
    'signature before the run starts. The load generator ' +
    '(`bench/lib/http-load.ts`, in the benchmark process) writes requests on raw keep-alive HTTP/1.1 sockets, one in flight per connection. ' +
    `Shapes: *saturation* — ${connections} connections, closed loop, ${closedSeconds} s; *fixed rate* — ${rateList} requests/s for ` +
    `${rateSeconds} s${rates.length > 1 ? ' each (one shape per rate)' : ''}, open loop on an absolute timeline (request i is due at start + i/rate, waits for a free connection if none is idle, ` +
    `${OPEN_LOOP_CONNECTIONS.initial} open at the start, up to ${OPEN_LOOP_CONNECTIONS.max}), latency measured from when the request was due, so a ` +
    `stall is not hidden by the sender waiting (no coordinated omission); *${concurrency} concurrent* — ${concurrency} connections, closed loop, ` +
    `${closedSeconds} s. After a warm-up (${WARMUP_SECONDS} s closed loop + 1 s at ${rates.length > 1 ? `${fmtInt(ratePerSecond)}/s` : 'the fixed rate'} per server), each of ${env.rounds} rounds runs ` +
    'the shapes in shuffled order and, within a shape, the servers in shuffled order. The machine is shared, so each phase starts only ' +
    `after a ${QUIET.windowMs / 1000} s window in which the whole machine was busy for less than ${QUIET.maxCores} cores, and a phase during which ` +
    `processes outside the accounting below used more than ${DISTURBED_OTHER_CORES} cores is measured again (up to ${MAX_ATTEMPTS} attempts; its ` +
    'requests still count for the receipt check). Requests/s is the median over rounds, the ratio the ' +
    'median of per-round ratios to the baseline or the batched floor (range in brackets; at the fixed rate, of p99s), latencies are pooled over all rounds. CPU per webhook: ' +
    'utime+stime of the server (`process.cpuUsage()` reported by the child), of the PostgreSQL backends connected to its database (WAL ' +
    'writer and checkpointer not included), of the Redis server, of the benchmark process (load generator) and of the whole machine. ' +
    '"Loop busy" is the server\'s event-loop utilization during the phase. After every phase the `webhook_receipts` rows of every arm with a ' +
    'database are counted by status: the count must equal the phase\'s 2xx answers, every 2xx must say `accepted`, and no answer may ' +
    'be non-2xx or missing. ' +
    'Then the table is emptied (`TRUNCATE`), so every phase starts from the same table' +
    (env.backlog > 0 ? ` — here holding ${fmtInt(env.backlog)} pending receipts (inserted and vacuumed before each phase)` : ' (empty)') +
    ' instead of inheriting every earlier phase\'s receipts, since nothing works them off: the intake counts the pending receipts once a ' +
    'second, and that count costs more the larger the backlog (see the notes).', '')

  const closedRows = summaries.filter((s) => s.shape !== 'rate')
  lines.push('**Throughput and latency under a closed loop** (latencies at saturation are indicative only):', '')
  lines.push('| Server | Shape | Requests/s (median) | Per round | p50 | p99 | max | Ratio to baseline (median [range]) | Ratio to batched floor | CPU µs/webhook: server / PG / Redis / load gen / machine | Loop busy |')
  lines.push('|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const s of closedRows) {
    lines.push(`| ${ARM_LABELS[s.arm]} | ${describeShape(shapeOf(s.shape))} | **${fmtInt(s.okPerSecond)}** | ${s.okPerSecondPerRound.map(fmtInt).join(', ')} | ` +
      `${fmtMs(s.latency.p50Ms)} ms | ${fmtMs(s.latency.p99Ms)} ms | ${fmtMs(s.latency.maxMs)} ms | ` +
      `${ratioCell(s.ratio)} | ${ratioCell(s.ratioToFloor)} | ${cpuCell(s)} | ${(100 * s.serverLoopBusy).toFixed(0)} % |`)
  }
  lines.push('')
  for (const rate of SHAPES.flatMap((shape) => (shape.kind === 'open' ? [shape.ratePerSecond] : []))) {
    const rateRows = summaries.filter((s) => s.shape === 'rate' && s.ratePerSecond === rate)
    lines.push(`**Latency at a fixed arrival rate of ${fmtInt(rate)} requests/s** (open loop; from when each request was due to its answer):`, '')
    lines.push('| Server | Requests | p50 | p90 | p99 | p99.9 | max | p99 per round | p99 / baseline p99 (median [range]) | p99 / batched floor p99 | Send lag p50 / p99 | Connections | CPU µs/webhook: server / PG / Redis / load gen / machine | Loop busy |')
    lines.push('|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|')
    for (const s of rateRows) {
      lines.push(`| ${ARM_LABELS[s.arm]} | ${fmtInt(s.latency.count)} | ${fmtMs(s.latency.p50Ms)} ms | ${fmtMs(s.latency.p90Ms)} ms | ` +
        `**${fmtMs(s.latency.p99Ms)} ms** | ${fmtMs(s.latency.p999Ms)} ms | ${fmtMs(s.latency.maxMs)} ms | ${s.p99PerRoundMs.map(fmtMs).join(', ')} | ` +
        `${ratioCell(s.ratio)} | ${ratioCell(s.ratioToFloor)} | ` +
        `${s.sendLag === undefined ? '—' : `${fmtMs(s.sendLag.p50Ms)} / ${fmtMs(s.sendLag.p99Ms)} ms`} | ${s.maxConnections} | ${cpuCell(s)} | ` +
        `${(100 * s.serverLoopBusy).toFixed(0)} % |`)
    }
    lines.push('')
  }
  lines.push('"Send lag" is how late the generator wrote a request after it was due (timer granularity, waiting for a connection); it is part of the latency.', '')
  lines.push('**Memory** (server process; peak = `ru_maxrss` since start, start-up included):', '')
  lines.push('| Server | RSS after warm-up | RSS at end | Peak RSS | Heap used at end |')
  lines.push('|---|---:|---:|---:|---:|')
  for (const m of memory) {
    lines.push(`| ${ARM_LABELS[m.arm]} | ${m.rssAfterWarmupMb.toFixed(0)} MiB | ${m.rssAtEndMb.toFixed(0)} MiB | ${m.peakRssMb.toFixed(0)} MiB | ${m.heapUsedAtEndMb.toFixed(0)} MiB |`)
  }
  lines.push('')
  lines.push('**Correctness.** ' + correctness.map((c) => {
    const stored = c.receipts === undefined ? '' : `, ${fmtInt(c.receipts)} receipts found by the checks after each phase (${Object.entries(c.statuses).map(([status, n]) => `${status} ${fmtInt(n)}`).join(', ')})`
    return `${c.arm}: ${fmtInt(c.ok)} answers 200 \`accepted\`${stored}; ${c.problems.length === 0 ? 'no non-2xx answer, none missing' : c.problems.join('; ')}`
  }).join('. ') + '.', '')
  lines.push('**Targets.**', '')
  for (const t of targets) lines.push(`- ${t.met ? '✅' : '❌'} ${t.name}: ${t.detail}`)
  for (const s of summaries.filter((summary) => isBridge(summary.arm) && summary.shape === 'concurrency')) {
    lines.push(`- Reference system: ${REFERENCE.webhooksPerSecond}/s per node, p99 ${REFERENCE.p99Ms} ms at ${REFERENCE.concurrency} concurrent. ` +
      `${s.arm} at ${concurrency} connections: ${fmtInt(s.okPerSecond)}/s (${(s.okPerSecond / REFERENCE.webhooksPerSecond).toFixed(0)}×), ` +
      `p99 ${fmtMs(s.latency.p99Ms)} ms (reference ${REFERENCE.p99Ms} ms)`)
  }
  const misses = targets.filter((t) => !t.met)
  lines.push('', `**Targets missed in this run:** ${misses.length === 0 ? 'none.' : misses.map((t) => `${t.name} (${t.detail})`).join('; ') + '.'}`, '')
  lines.push('**Caveats.** Load generator, servers, PostgreSQL and Redis share 2 cores, so absolute figures drift ±10–15 % between runs; ' +
    'the per-round ratio is the steadier number. The generator\'s own CPU (column "load gen") is taken from the same cores the server ' +
    'needs, more so at saturation. Keep-alive connections are reused; a provider that opened a connection per delivery would add the TCP ' +
    'handshake to every request. A phase\'s own receipts (up to a few tens of thousands) are its backlog; a node whose backlog is larger ' +
    'pays more for the once-a-second count (see the notes).', '')
  lines.push(notes)
  return lines.join('\n').trimEnd() + '\n'
}

function ratioCell(ratio: Ratio | undefined): string {
  return ratio === undefined ? '—' : `${ratio.median.toFixed(2)} [${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)}]`
}

function cpuCell(s: ShapeSummary): string {
  const c = s.cpuUsPerWebhook
  const pg = s.arm === 'baseline' ? '—' : c.postgres.toFixed(0)
  const redis = s.arm === 'bridge' ? c.redis.toFixed(0) : '—'
  return `${c.server.toFixed(0)} / ${pg} / ${redis} / ${c.client.toFixed(0)} / ${c.machine.toFixed(0)}`
}

// ---------------------------------------------------------------------------------------------------------------

async function redisInfo(): Promise<{ version: string, pid: number | undefined }> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const info = await client.info('server')
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
    // Its CPU is readable only when it runs on this machine.
    const local = ['127.0.0.1', 'localhost'].includes(new URL(REDIS_URL).hostname)
    return { version, pid: local && Number.isInteger(pid) ? pid : undefined }
  } finally {
    client.disconnect()
  }
}

const redisPrefix = `bb-bench-${randomBytes(4).toString('hex')}:`
const arms = new Map<ArmId, Arm>()

async function main(): Promise<void> {
  const runStarted = performance.now()
  const seed = Number.parseInt(randomBytes(4).toString('hex'), 16)
  const random = makeRandom(seed)
  const loadAtStart = loadAverage()
  if (loadAtStart > 1) log(`WARNING: load average ${loadAtStart} before the run: other work on this machine will skew the figures`)
  const machine = await describeMachine()
  const redis = armIds.includes('bridge') ? await redisInfo() : { version: 'not used', pid: undefined }
  const worker = workerSetting()
  const env: Environment = {
    ...machine, seed, quick, rounds, redis: redis.version, worker: worker.note, workerDisabled: worker.disabled, serverNodeOptions,
    loadAverage: { start: loadAtStart, end: Number.NaN }, otherCpuCores: Number.NaN, repeatedPhases: [], backlog
  }
  log(`${env.cpu}, ${env.cores} cores, Node ${env.node}, PostgreSQL ${env.postgres}, Redis ${env.redis}; ${rounds} rounds, ` +
    `arms ${armIds.join(', ')}; ${worker.note}${profiling ? '; PROFILING' : ''}`)

  const source = createNotificationSource(provider, SECRETS[bench.secretVariable], USERS)
  source.checkAgainstSimulator()
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  const accounting: Accounting = { admin, redisPid: redis.pid }
  try {
    for (const id of armIds) arms.set(id, await startArm(id, worker, redisPrefix))
    const quiet = await waitForQuietMachine(QUIET.maxCores, QUIET.windowMs, QUIET.timeoutMs)
    if (!quiet.quiet) log(`WARNING: the machine stayed busy (${quiet.busyCores.toFixed(2)} cores) for ${(quiet.waitedMs / 1000).toFixed(0)} s; starting anyway`)
    for (const arm of arms.values()) {
      await checkRefusesForgery(arm, source)
      log(`warm-up ${arm.id}`)
      await warmUp(arm, source)
      arm.usageAfterWarmup = await usageOf(arm)
    }

    if (profiling) {
      mkdirSync(PROFILE_DIR, { recursive: true })
      for (const arm of arms.values()) if (isBridge(arm.id)) await arm.server.request({ type: 'profile-start' }, 'profile-started')
    }
    const runs: PhaseRun[] = []
    const discarded: PhaseRun[] = []
    for (let round = 0; round < rounds; round++) {
      for (const shape of shuffled(SHAPES, random)) {
        const order = shuffled([...arms.values()], random)
        const got: PhaseRun[] = []
        for (const arm of order) got.push(await measureUndisturbed(round, arm, shape, source, accounting, discarded))
        runs.push(...got)
        log(`round ${round + 1}/${rounds} ${shapeKey(shape)}: ${got.map((run) => `${run.arm} ${fmtInt(run.okPerSecond)}/s p50 ` +
          `${fmtMs(summarizeLatencies([run.latenciesMs]).p50Ms)} p99 ${fmtMs(summarizeLatencies([run.latenciesMs]).p99Ms)} ms ` +
          `(other ${otherCores(run).toFixed(2)} cores)`).join(', ')}`)
      }
    }
    const profileFiles: string[] = []
    if (profiling) {
      for (const arm of arms.values()) {
        if (!isBridge(arm.id)) continue
        const file = new URL(`webhooks-${arm.id}-${Date.now()}.cpuprofile`, PROFILE_DIR).pathname
        await arm.server.request({ type: 'profile-stop', file }, 'profile-written')
        profileFiles.push(file)
      }
    }
    for (const arm of arms.values()) arm.usageAtEnd = await usageOf(arm)

    env.repeatedPhases = discarded.map((run) => `round ${run.round + 1} ${run.arm} ${run.shapeKey} (${otherCores(run).toFixed(2)} cores)`)
    const sum = (value: (run: PhaseRun) => number): number => runs.reduce((total, run) => total + value(run), 0)
    env.otherCpuCores = Math.max(0, sum((run) => run.machineBusyMs - run.clientCpuMs - run.serverCpuMs - run.postgresCpuMs - run.redisCpuMs)) /
      sum((run) => run.wallMs)
    log(`other processes used ${env.otherCpuCores.toFixed(2)} cores on average during the measured phases`)

    const summaries: ShapeSummary[] = []
    for (const shape of SHAPES) {
      const ofShape = (run: PhaseRun): boolean => run.shapeKey === shapeKey(shape)
      const baseline = runs.filter((run) => run.arm === 'baseline' && ofShape(run))
      const floor = runs.filter((run) => run.arm === 'floor-batched' && ofShape(run))
      for (const id of armIds) summaries.push(summarize(id, shape, runs.filter((run) => run.arm === id && ofShape(run)), baseline, floor))
    }
    const targets = evaluateTargets(summaries)
    const memory: Memory[] = [...arms.values()].map((arm) => ({
      arm: arm.id,
      rssAfterWarmupMb: arm.usageAfterWarmup!.rssBytes / MB,
      rssAtEndMb: arm.usageAtEnd!.rssBytes / MB,
      peakRssMb: arm.usageAtEnd!.maxRssKb / 1024,
      heapUsedAtEndMb: arm.usageAtEnd!.heapUsedBytes / MB,
      heapTotalAtEndMb: arm.usageAtEnd!.heapTotalBytes / MB,
      externalAtEndMb: arm.usageAtEnd!.externalBytes / MB
    }))
    const correctness: Correctness[] = []
    for (const arm of arms.values()) {
      const statuses = arm.receiptStatuses
      const receipts = arm.database === undefined ? undefined : Object.values(statuses).reduce((total, n) => total + n, 0)
      correctness.push({
        arm: arm.id, ok: arm.okTotal, receipts, statuses,
        problems: runs.filter((run) => run.arm === arm.id).flatMap((run) => run.problems.map((problem) => `round ${run.round + 1} ${run.shapeKey}: ${problem}`))
      })
    }

    env.loadAverage.end = loadAverage()
    const totalSeconds = (performance.now() - runStarted) / 1000
    for (const s of summaries) {
      const shown = s.ratePerSecond !== undefined && rates.length > 1 ? `rate ${s.ratePerSecond}` : s.shape
      log(`${s.arm.padEnd(13)} ${shown.padEnd(11)} ${fmtInt(s.okPerSecond).padStart(7)}/s p50 ${fmtMs(s.latency.p50Ms)} p99 ${fmtMs(s.latency.p99Ms)} ` +
        `p99.9 ${fmtMs(s.latency.p999Ms)} max ${fmtMs(s.latency.maxMs)} ms | CPU µs/webhook ${cpuCell(s)} (server sys ${s.cpuUsPerWebhook.serverSystem.toFixed(0)}) | ` +
        `loop ${(100 * s.serverLoopBusy).toFixed(0)} % | other ${s.otherCores.toFixed(2)} cores` +
        (s.ratio === undefined ? '' : ` | ratio ${s.ratio.median.toFixed(2)} [${s.ratio.min.toFixed(2)}–${s.ratio.max.toFixed(2)}]`))
    }
    for (const m of memory) log(`${m.arm}: RSS ${m.rssAfterWarmupMb.toFixed(0)} → ${m.rssAtEndMb.toFixed(0)} MiB, peak ${m.peakRssMb.toFixed(0)} MiB; at end heap ${m.heapUsedAtEndMb.toFixed(0)} of ${m.heapTotalAtEndMb.toFixed(0)} MiB, external ${m.externalAtEndMb.toFixed(0)} MiB`)
    for (const c of correctness) log(`${c.arm}: ${c.ok} × 200, receipts ${c.receipts ?? '—'} ${JSON.stringify(c.statuses)}`)
    for (const t of targets) log(`${t.met ? 'ok  ' : 'MISS'} ${t.name}: ${t.detail}`)

    const problems = correctness.flatMap((c) => c.problems.map((problem) => `${c.arm}: ${problem}`))
    for (const c of correctness) {
      if (c.receipts !== undefined && c.receipts !== c.ok) problems.push(`${c.arm}: ${c.receipts} receipts for ${c.ok} 2xx answers`)
    }
    if (problems.length > 0) throw new Error(`correctness check failed:\n${problems.join('\n')}`)

    if (profiling) {
      log(`server profiles of the measured rounds: ${profileFiles.join(', ')}; results and docs not written (profiling distorts timings)`)
      return
    }
    if (flags['no-write']) {
      log('--no-write: results and docs not written')
      return
    }
    mkdirSync(new URL('bench/results/', ROOT), { recursive: true })
    writeFileSync(bench.resultsFile, JSON.stringify({
      provider, environment: env, totalSeconds, reference: REFERENCE, targets: TARGETS,
      shapes: SHAPES, summaries, targetResults: targets, memory, correctness
    }, null, 2) + '\n')
    updateDocsSection(bench.docsTitle, bench.docsMarker, (notes) => renderSection(env, summaries, targets, memory, correctness, totalSeconds, notes))
    log(`wrote ${bench.resultsFile.pathname} and ${docsFile} in ${totalSeconds.toFixed(0)} s`)
  } finally {
    await admin.end()
  }
}

async function cleanUp(): Promise<void> {
  for (const arm of arms.values()) await arm.database?.client.end().catch(() => {})
  await stopChildServers()
  if (arms.has('bridge')) {
    const deleted = await deleteRedisKeys(redisPrefix).catch((error: unknown) => {
      log(`could not delete Redis keys ${redisPrefix}*: ${(error as Error).message}`)
      return 0
    })
    log(`deleted ${fmtInt(deleted)} Redis keys ${redisPrefix}*`)
  }
  await dropScratchDatabases(flags['keep-db'], log)
}

await runBenchmark(main, cleanUp, log)
