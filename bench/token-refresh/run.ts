/**
 * Token refresh benchmark (`npm run bench:token-refresh`): WHOOP's rotating refresh tokens under concurrent
 * refresh attempts from several processes.
 *
 * The WHOOP simulator runs in this process; 3 child processes ("nodes", bench/token-refresh/node.ts) each have
 * their own PostgreSQL pool on one scratch database and their own token manager per arm. An expiry: a connection's
 * access token expired a minute ago, every node has read the connection, and at one wall-clock instant the nodes
 * start --attempts (25) `fresh()` calls on it, spread over them (9/8/8, the node with 9 rotating by connection).
 * Each attempt is timed from call to resolution (hrtime): the lock wait. Per round, each arm's --connections
 * connections (its own, reused every round) expire in two shapes: `one-at-a-time` (expiry after expiry, 25
 * attempts in flight: the reference's condition) and `all-at-once` (every connection at the same instant,
 * connections × 25 attempts in flight: a burst, e.g. after an outage). Then, per connection: the simulator must have seen exactly one refresh call
 * and no revoked family, every attempt must have resolved with the same access token, and that token must be the
 * one committed in the database at version + 1. Any violation fails the run (exit code 1) before anything is
 * written. Arms (node.ts): `redis`, `postgres-only` (Redis unreachable: the row lease alone), `single-process`
 * (in-process locks, all attempts in one node: the lower bound). After one untimed warm-up round per arm, each
 * round runs every (arm, shape) in shuffled order.
 *
 * Flags: --quick, --rounds N, --connections N, --attempts N, --arms redis,postgres-only,single-process,
 * --token-delay-ms N (added before every token request, for a provider slower than the simulator), --keep-db,
 * --no-write. Progress goes to stderr; results to bench/results/token-refresh.json and the "Token refresh (WHOOP
 * rotating tokens)" section of docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { refreshWhoopToken } from '../../src/providers/whoop/oauth.ts'
import { startWhoopSimulator, type WhoopSimulator } from '../../src/simulators/whoop/server.ts'
import { loadConnectionById, saveConnection } from '../../src/storage/connections-repository.ts'
import type { Database } from '../../src/storage/database.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { startChildServer, stopChildServers, type ChildServer } from '../lib/child.ts'
import { docsFile, updateDocsSection } from '../lib/docs.ts'
import { describeMachine, type Machine } from '../lib/environment.ts'
import { loadAverage, waitForQuietMachine } from '../lib/proc.ts'
import { runBenchmark } from '../lib/run.ts'
import { createScratchDatabase, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtMs, makeRandom, median, shuffled, summarizeLatencies, type LatencySummary } from '../lib/stats.ts'
import { ARM_IDS, UNREACHABLE_REDIS_URL, type ArmId, type FireReply, type LockCounts } from './protocol.ts'

const ROOT = new URL('../../', import.meta.url)
const RESULTS_FILE = new URL('bench/results/token-refresh.json', ROOT)
const NODE_SCRIPT = new URL('bench/token-refresh/node.ts', ROOT)
const TITLE = 'Token refresh (WHOOP rotating tokens)'

/** The system we replace: 25 concurrent refresh attempts, lock waits p50 52 ms and p99 1.8 s. */
const REFERENCE = { attempts: 25, p50Ms: 52, p99Ms: 1800 }
const NODES = 3
/** The token manager's default first poll of a waiter (then ×1.5 per poll, up to 25 ms; src/pipeline/token-manager.ts). */
const POLL_MS = 4
/**
 * A round starts after a window in which the whole machine was busy for less than `maxCores` (others share it),
 * or after `timeoutMs` anyway; how busy it was is recorded with the round.
 */
const QUIET = { maxCores: 0.5, windowMs: 250, timeoutMs: 5000 }
const SHAPES = ['one-at-a-time', 'all-at-once'] as const
type ShapeId = (typeof SHAPES)[number]
const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ARM_LABELS: Record<ArmId, string> = {
  redis: 'Redis lock + row lease, 3 nodes',
  'postgres-only': 'row lease only (Redis unreachable), 3 nodes',
  'single-process': 'in-process lock, 1 node (lower bound)'
}

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    attempts: { type: 'string', default: String(REFERENCE.attempts) },
    arms: { type: 'string', default: ARM_IDS.join(',') },
    'token-delay-ms': { type: 'string', default: '0' },
    'keep-db': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false }
  }
})
const quick = flags.quick
const rounds = Number(flags.rounds ?? (quick ? 2 : 10))
const connections = Number(flags.connections ?? (quick ? 10 : 20))
const attempts = Number(flags.attempts)
const tokenDelayMs = Number(flags['token-delay-ms'])
const armIds = flags.arms.split(',').map((arm) => arm.trim()) as ArmId[]
if ([rounds, connections, attempts].some((value) => !Number.isInteger(value) || value < 1) || !Number.isInteger(tokenDelayMs) || tokenDelayMs < 0) {
  throw new Error('--rounds, --connections and --attempts must be positive integers, --token-delay-ms a whole number')
}
if (armIds.length === 0 || armIds.some((arm) => !ARM_IDS.includes(arm))) throw new Error(`--arms takes some of ${ARM_IDS.join(', ')}`)
armIds.sort((a, b) => ARM_IDS.indexOf(a) - ARM_IDS.indexOf(b))

const log = (message: string): void => {
  process.stderr.write(`[bench:token-refresh ${(performance.now() / 1000).toFixed(1)}s] ${message}\n`)
}

interface BenchConnection { id: string, whoopUserId: string }

interface RoundRun {
  arm: ArmId
  shape: ShapeId
  round: number
  waitsMs: number[]
  /** Attempts in the node that spent the refresh token, and in the others (which poll the row). */
  refresherWaitsMs: number[]
  otherWaitsMs: number[]
  refreshCallsMs: number[]
  refreshCalls: number
  familiesRevoked: number
  lock: LockCounts
  statementsMs: number[]
  lockCallsMs: number[]
  maxStartLagMs: number
  /** Cores the whole machine was busy in the window before the round (over QUIET.maxCores: started anyway). */
  busyCoresBefore: number
}

/** Attempts node `nodeIndex` makes on connection `connectionIndex`: 25 over 3 is 9/8/8, the 9 rotating. */
const attemptsOf = (nodeIndex: number, connectionIndex: number, nodeCount: number): number =>
  Math.floor(attempts / nodeCount) + ((nodeIndex - connectionIndex % nodeCount + nodeCount) % nodeCount < attempts % nodeCount ? 1 : 0)

let sim: WhoopSimulator | undefined
let db: Database | undefined
const tokenKey = randomBytes(32)
const cipher = createTokenCipher([{ kid: 'bench', key: tokenKey }])
const redisPrefix = `bb-bench-token-${randomBytes(4).toString('hex')}:`
let nextWhoopUser = 1_000_000

async function addConnections(arm: ArmId): Promise<BenchConnection[]> {
  const created: BenchConnection[] = []
  for (let i = 0; i < connections; i++) {
    const whoopUserId = String(nextWhoopUser++)
    sim!.addUser({ userId: whoopUserId, days: 1 })
    const issued = sim!.issueTokens(whoopUserId)
    const id = await saveConnection(db!, cipher, {
      userId: `bench-${arm}-${i}`, provider: 'whoop', providerUserId: whoopUserId, scopes: issued.scope.split(' '),
      tokens: { accessToken: issued.access_token, refreshToken: issued.refresh_token ?? null, accessExpiresAt: new Date(Date.now() + issued.expires_in * 1000) }
    })
    created.push({ id, whoopUserId })
  }
  return created
}

/**
 * One simultaneous expiry of the connections in `pool`, checked; throws on any correctness violation. `first` is
 * the index of pool[0] among the arm's connections (which node makes the larger share of the attempts).
 */
async function runExpiries(arm: ArmId, shape: ShapeId, round: number, pool: readonly BenchConnection[], first: number, nodes: readonly ChildServer[]): Promise<RoundRun> {
  const ids = pool.map((connection) => connection.id)
  const before = await Promise.all(pool.map(async (connection) => ({
    version: (await loadConnectionById(db!, cipher, connection.id))!.tokenVersion, stats: sim!.tokenStats(connection.whoopUserId)
  })))
  await db!.query("UPDATE connections SET access_expires_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])", [ids])
  sim!.expireAccessTokens()
  const participants = arm === 'single-process' ? nodes.slice(0, 1) : nodes
  await Promise.all(participants.map((node) => node.request({ type: 'load', ids }, 'loaded')))
  // A shared wall-clock start, far enough ahead for the command to reach every node.
  const atMs = Date.now() + 30
  const replies = await Promise.all(participants.map((node, n) => node.request<FireReply>({
    type: 'fire', arm, atMs, attempts: ids.map((_, i) => attemptsOf(n, first + i, participants.length))
  }, 'fired')))

  const problems: string[] = []
  const run: RoundRun = {
    arm, shape, round, waitsMs: [], refresherWaitsMs: [], otherWaitsMs: [], refreshCallsMs: replies.flatMap((r) => r.refreshCallsMs),
    statementsMs: replies.flatMap((r) => r.statementsMs), lockCallsMs: replies.flatMap((r) => r.lockCallsMs),
    refreshCalls: 0, familiesRevoked: 0, lock: { taken: 0, busy: 0, down: 0 }, maxStartLagMs: Math.max(...replies.map((r) => r.startLagMs)),
    busyCoresBefore: Number.NaN
  }
  for (const reply of replies) for (const key of ['taken', 'busy', 'down'] as const) run.lock[key] += reply.lock[key]
  for (const [i, connection] of pool.entries()) {
    const outcomes = replies.map((reply) => reply.outcomes[i]!)
    const where = `${arm} round ${round} connection ${connection.id}`
    const stats = sim!.tokenStats(connection.whoopUserId)
    const calls = stats.refreshCalls - before[i]!.stats.refreshCalls
    run.refreshCalls += calls
    run.familiesRevoked += stats.familiesRevoked
    if (calls !== 1) problems.push(`${where}: ${calls} refresh calls at WHOOP (must be 1)`)
    if (stats.familiesRevoked !== 0 || stats.refreshReuses !== 0) problems.push(`${where}: ${stats.familiesRevoked} families revoked, ${stats.refreshReuses} reuses`)
    const errors = outcomes.flatMap((outcome) => outcome.errors)
    if (errors.length > 0) problems.push(`${where}: ${errors.length} attempts failed: ${[...new Set(errors)].join('; ')}`)
    const tokens = new Set(outcomes.flatMap((outcome) => outcome.tokens))
    const count = outcomes.reduce((sum, outcome) => sum + outcome.tokens.length, 0)
    if (count !== attempts) problems.push(`${where}: ${count} attempts answered, ${attempts} made`)
    const stored = await loadConnectionById(db!, cipher, connection.id)
    const [token] = tokens
    if (tokens.size !== 1 || token === undefined) problems.push(`${where}: attempts resolved with ${tokens.size} different tokens`)
    else if (stored?.accessToken !== token) problems.push(`${where}: the token the attempts use is not the one committed`)
    if (stored?.tokenVersion !== before[i]!.version + 1 || stored.status !== 'active') {
      problems.push(`${where}: stored version ${stored?.tokenVersion} (${stored?.status}), expected ${before[i]!.version + 1} (active)`)
    }
    const refreshers = outcomes.filter((outcome) => outcome.refreshedHere).length
    if (refreshers !== 1) problems.push(`${where}: ${refreshers} nodes called the token endpoint`)
    for (const outcome of outcomes) {
      run.waitsMs.push(...outcome.waitsMs)
      ;(outcome.refreshedHere ? run.refresherWaitsMs : run.otherWaitsMs).push(...outcome.waitsMs)
    }
  }
  if (problems.length > 0) throw new Error(`correctness violated:\n${problems.join('\n')}`)
  return run
}

/** One round of `arm` in `shape`, started on a quiet machine if there is one within QUIET.timeoutMs. */
async function runRound(arm: ArmId, shape: ShapeId, round: number, pool: readonly BenchConnection[], nodes: readonly ChildServer[]): Promise<RoundRun> {
  const quiet = await waitForQuietMachine(QUIET.maxCores, QUIET.windowMs, QUIET.timeoutMs)
  const parts: RoundRun[] = []
  if (shape === 'all-at-once') parts.push(await runExpiries(arm, shape, round, pool, 0, nodes))
  else for (const [i, connection] of pool.entries()) parts.push(await runExpiries(arm, shape, round, [connection], i, nodes))
  const merged = parts.reduce((into, part) => ({
    ...into,
    waitsMs: [...into.waitsMs, ...part.waitsMs], refresherWaitsMs: [...into.refresherWaitsMs, ...part.refresherWaitsMs],
    otherWaitsMs: [...into.otherWaitsMs, ...part.otherWaitsMs], refreshCallsMs: [...into.refreshCallsMs, ...part.refreshCallsMs],
    statementsMs: [...into.statementsMs, ...part.statementsMs], lockCallsMs: [...into.lockCallsMs, ...part.lockCallsMs],
    refreshCalls: into.refreshCalls + part.refreshCalls, familiesRevoked: into.familiesRevoked + part.familiesRevoked,
    lock: { taken: into.lock.taken + part.lock.taken, busy: into.lock.busy + part.lock.busy, down: into.lock.down + part.lock.down },
    maxStartLagMs: Math.max(into.maxStartLagMs, part.maxStartLagMs)
  }))
  return { ...merged, busyCoresBefore: quiet.busyCores }
}

/** Sequential refreshes of one connection from this process, nothing else running: the endpoint alone. */
async function idleTokenCallsMs(count: number): Promise<number[]> {
  const whoopUserId = String(nextWhoopUser++)
  sim!.addUser({ userId: whoopUserId, days: 1 })
  let refreshToken = sim!.issueTokens(whoopUserId).refresh_token!
  const whoop = { clientId: sim!.clientId, clientSecrets: [sim!.clientSecret], apiUrl: sim!.baseUrl, requestsPerMinute: 1, requestsPerDay: 1 }
  const timesMs: number[] = []
  for (let i = 0; i < count; i++) {
    const startedNs = process.hrtime.bigint()
    refreshToken = (await refreshWhoopToken(whoop, refreshToken, Date.now())).refreshToken!
    timesMs.push(Number(process.hrtime.bigint() - startedNs) / 1e6)
  }
  return timesMs.slice(Math.min(5, count - 1))
}

interface ArmSummary {
  arm: ArmId
  shape: ShapeId
  expiries: number
  attempts: number
  wait: LatencySummary
  refresherWait: LatencySummary
  otherWait: LatencySummary
  /** Median over rounds of each round's p50 / p99. */
  roundP50Ms: number
  roundP99Ms: number
  /** Share of the other nodes' attempts that waited at least one poll interval. */
  otherAtLeastOnePoll: number
  tokenCall: LatencySummary
  refreshesPerExpiry: number
  familiesRevoked: number
  lockPerExpiry: LockCounts
  lockCall: LatencySummary
  statementsPerExpiry: number
  statement: LatencySummary
  ratioP50: number
  ratioP99: number
}

function summarize(arm: ArmId, shape: ShapeId, runs: readonly RoundRun[]): ArmSummary {
  const expiries = runs.length * connections
  const sum = (value: (run: RoundRun) => number): number => runs.reduce((total, run) => total + value(run), 0)
  const pooled = (values: (run: RoundRun) => number[]): LatencySummary => summarizeLatencies(runs.map((run) => Float64Array.from(values(run))))
  const wait = pooled((run) => run.waitsMs)
  const others = runs.flatMap((run) => run.otherWaitsMs)
  return {
    arm, shape, expiries, attempts: wait.count, wait,
    refresherWait: pooled((run) => run.refresherWaitsMs),
    otherWait: pooled((run) => run.otherWaitsMs),
    roundP50Ms: median(runs.map((run) => summarizeLatencies([Float64Array.from(run.waitsMs)]).p50Ms)),
    roundP99Ms: median(runs.map((run) => summarizeLatencies([Float64Array.from(run.waitsMs)]).p99Ms)),
    otherAtLeastOnePoll: others.length === 0 ? Number.NaN : others.filter((ms) => ms >= POLL_MS).length / others.length,
    tokenCall: pooled((run) => run.refreshCallsMs),
    refreshesPerExpiry: sum((run) => run.refreshCalls) / expiries,
    familiesRevoked: sum((run) => run.familiesRevoked),
    lockPerExpiry: { taken: sum((run) => run.lock.taken) / expiries, busy: sum((run) => run.lock.busy) / expiries, down: sum((run) => run.lock.down) / expiries },
    lockCall: pooled((run) => run.lockCallsMs),
    statementsPerExpiry: sum((run) => run.statementsMs.length) / expiries,
    statement: pooled((run) => run.statementsMs),
    ratioP50: wait.p50Ms / REFERENCE.p50Ms,
    ratioP99: wait.p99Ms / REFERENCE.p99Ms
  }
}

interface Environment extends Machine {
  seed: number
  quick: boolean
  rounds: number
  connections: number
  attempts: number
  tokenDelayMs: number
  redis: string
  loadAverage: { start: number, end: number }
  /** Measured rounds that started on a machine busier than QUIET.maxCores (after waiting QUIET.timeoutMs). */
  busyRounds: number
}

/** A round as the results file keeps it: percentiles instead of every sample. */
function compactRun(run: RoundRun): Record<string, unknown> {
  const { waitsMs, refresherWaitsMs, otherWaitsMs, refreshCallsMs, statementsMs, lockCallsMs, ...rest } = run
  const brief = (values: number[]): Pick<LatencySummary, 'count' | 'p50Ms' | 'p99Ms' | 'maxMs'> => {
    const { count, p50Ms, p99Ms, maxMs } = summarizeLatencies([Float64Array.from(values)])
    return { count, p50Ms, p99Ms, maxMs }
  }
  return {
    ...rest, wait: brief(waitsMs), refresherWait: brief(refresherWaitsMs), otherWait: brief(otherWaitsMs),
    tokenCall: brief(refreshCallsMs), statement: brief(statementsMs), lockCall: brief(lockCallsMs)
  }
}

const ratio = (value: number): string => `${value.toFixed(2)}×`

const SHAPE_LABELS: Record<ShapeId, string> = {
  'one-at-a-time': 'one expiry at a time (25 in flight)',
  'all-at-once': 'all connections at once'
}

function renderSection(env: Environment, summaries: readonly ArmSummary[], idle: LatencySummary, totalSeconds: number, notes: string): string {
  const lines: string[] = []
  const shapeOf = (s: ArmSummary): string => s.shape === 'all-at-once' ? `all ${env.connections} at once (${env.connections * env.attempts} in flight)` : SHAPE_LABELS[s.shape]
  lines.push(`## ${TITLE}`, '')
  lines.push(`Generated by \`bench/token-refresh/run.ts\` on ${env.date.slice(0, 10)} (${env.quick ? 'quick' : 'full'} run, ${totalSeconds.toFixed(0)} s, seed ${env.seed}). Raw data: \`bench/results/token-refresh.json\`.`, '')
  lines.push('**Machine.**', '')
  lines.push(`- CPU: ${env.cpu}, ${env.cores} cores (the simulator and the benchmark, ${NODES} node processes, PostgreSQL and Redis share them; nothing pinned); RAM ${env.ramGb} GiB`)
  lines.push(`- Node ${env.node}; PostgreSQL ${env.postgres} on 127.0.0.1 (${Object.entries(env.postgresSettings).map(([name, value]) => `${name}=${value}`).join(', ')}); Redis ${env.redis} on 127.0.0.1`)
  lines.push(`- Other load: 1-min load average ${env.loadAverage.start} at start, ${env.loadAverage.end} at end; every round waited up to ${QUIET.timeoutMs / 1000} s for a ${QUIET.windowMs} ms window with the whole machine busy below ${QUIET.maxCores} cores; ` +
    `${env.busyRounds} of ${summaries.length * env.rounds} measured rounds started without one`, '')
  lines.push('**Commands.**', '', '```sh')
  lines.push('npm run bench:token-refresh                  # full run, ~1 min (longer while the machine is busy)')
  lines.push('npm run bench:token-refresh -- --quick       # ~15 s')
  lines.push('# a token endpoint 150 ms slower than the simulator\'s (real providers answer in tens to hundreds of ms):')
  lines.push('npm run bench:token-refresh -- --token-delay-ms 150 --no-write')
  lines.push('# other options: --rounds N --connections N --attempts N --arms redis,postgres-only,single-process --keep-db')
  lines.push('```', '')
  lines.push(`**Method.** The WHOOP simulator (rotating single-use refresh tokens; presenting a spent one revokes the whole family) runs in the benchmark process; ${NODES} child processes ("nodes") each open their own PostgreSQL pool (10 connections, the default DB_POOL_SIZE) on one scratch database and build the token manager as the app does (\`createTokenManager\` with its defaults: lease 30 s, polls from ${POLL_MS} ms growing ×1.5 to 25 ms, wait limit 15 s; \`refreshWhoopToken\` against the simulator). ` +
    `Arms: *redis* — \`createRedisCoordination\` on the local Redis (a key prefix per run) in front of the row lease; *postgres-only* — \`createRedisCoordination\` on \`${UNREACHABLE_REDIS_URL}\`, where nothing listens, so every \`tryLock\` throws at once and the row lease alone decides (the fallback path while Redis is down); *single-process* — \`createMemoryCoordination\` with all attempts in one node, where the in-process single flight leaves one caller to do the work (the lower bound). ` +
    `An expiry: the connection's \`access_expires_at\` is set a minute in the past, every node reads the connection (the copy its attempts start from), and at one wall-clock instant the nodes start ${env.attempts} concurrent \`fresh()\` calls on it (${NODES} nodes: ${attemptsOf(0, 0, NODES)}/${attemptsOf(1, 0, NODES)}/${attemptsOf(2, 0, NODES)}, the larger share rotating). The lock wait of an attempt is the time from the call to its resolution (hrtime, in the node). ` +
    `Each arm has ${env.connections} WHOOP connections of its own, and each round expires them in two shapes: *one at a time* — expiry after expiry, ${env.attempts} attempts in flight (the reference's condition); *all at once* — all ${env.connections} at the same instant, ${env.connections * env.attempts} attempts in flight (a burst, as after an outage or a restart). ` +
    `After every expiry each connection is checked: exactly one refresh call at the simulator, no reused refresh token and no revoked family, every attempt resolved with the same access token, and that token is the one committed in the database at version + 1; any violation fails the run. After one untimed warm-up round per arm and shape, ${env.rounds} rounds run every arm and shape in shuffled order. Percentiles are pooled over all attempts of all rounds ("per round": median over rounds of each round's figure). ` +
    `The token endpoint idle (the same call, sequentially, nothing else running): p50 ${fmtMs(idle.p50Ms)} ms, p99 ${fmtMs(idle.p99Ms)} ms${env.tokenDelayMs > 0 ? `; in this run every token request was delayed by a further ${env.tokenDelayMs} ms` : ''}.`, '')
  lines.push('| Arm | Expiries | Attempts | Lock wait p50 | p90 | p99 | max | Per round p50 / p99 | p50 / reference 52 ms | p99 / reference 1.8 s | Refreshes per expiry | Revoked families |')
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const s of summaries) {
    lines.push(`| ${ARM_LABELS[s.arm]} | ${shapeOf(s)} | ${s.attempts} | **${fmtMs(s.wait.p50Ms)} ms** | ${fmtMs(s.wait.p90Ms)} ms | **${fmtMs(s.wait.p99Ms)} ms** | ${fmtMs(s.wait.maxMs)} ms | ` +
      `${fmtMs(s.roundP50Ms)} / ${fmtMs(s.roundP99Ms)} ms | ${ratio(s.ratioP50)} | ${ratio(s.ratioP99)} | ${s.refreshesPerExpiry.toFixed(2)} | ${s.familiesRevoked} |`)
  }
  lines.push('', '**What the wait consists of** (all timed in the nodes during the rounds: the token call around `refreshWhoopToken`, tryLock around the lock port, a DB statement around each query, waiting for one of the pool\'s 10 connections included):', '')
  lines.push('| Arm | Expiries | Refreshing node\'s attempts p50 / p99 | Other nodes\' attempts p50 / p99 | Other nodes\' attempts waiting ≥ 1 poll | Token call p50 / p99 | tryLock per expiry: taken / held / threw | tryLock call p50 | DB statements per expiry | DB statement p50 / p99 |')
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const s of summaries) {
    const other = s.otherWait.count === 0 ? '—' : `${fmtMs(s.otherWait.p50Ms)} / ${fmtMs(s.otherWait.p99Ms)} ms`
    const polled = Number.isNaN(s.otherAtLeastOnePoll) ? '—' : `${(100 * s.otherAtLeastOnePoll).toFixed(0)} %`
    lines.push(`| ${ARM_LABELS[s.arm]} | ${SHAPE_LABELS[s.shape].replace(/ \(.*\)$/, '')} | ${fmtMs(s.refresherWait.p50Ms)} / ${fmtMs(s.refresherWait.p99Ms)} ms | ${other} | ${polled} | ` +
      `${fmtMs(s.tokenCall.p50Ms)} / ${fmtMs(s.tokenCall.p99Ms)} ms | ${s.lockPerExpiry.taken.toFixed(1)} / ${s.lockPerExpiry.busy.toFixed(1)} / ${s.lockPerExpiry.down.toFixed(1)} | ` +
      `${fmtMs(s.lockCall.p50Ms)} ms | ${s.statementsPerExpiry.toFixed(1)} | ${fmtMs(s.statement.p50Ms)} / ${fmtMs(s.statement.p99Ms)} ms |`)
  }
  lines.push('', '**Reading.**', '')
  const expiries = summaries.reduce((total, s) => total + s.expiries, 0)
  lines.push(`- Correctness held in every round: ${expiries} expiries × ${env.attempts} attempts, exactly one refresh call per expiry (refreshes per expiry ${[...new Set(summaries.map((s) => s.refreshesPerExpiry.toFixed(2)))].join(', ')}), no reused refresh token, no revoked family, every attempt on the committed token.`)
  const misses = summaries.filter((s) => s.ratioP50 > 1 || s.ratioP99 > 1)
  lines.push(`- Against the reference (p50 52 ms, p99 1.8 s at 25 concurrent attempts): ${summaries.filter((s) => s.shape === 'one-at-a-time').map((s) => `${s.arm} ${ratio(s.ratioP50)} / ${ratio(s.ratioP99)}`).join(', ')} one expiry at a time; ` +
    `${summaries.filter((s) => s.shape === 'all-at-once').map((s) => `${s.arm} ${ratio(s.ratioP50)} / ${ratio(s.ratioP99)}`).join(', ')} with all ${env.connections} at once (p50 / p99 ratios). ` +
    `Missed: ${misses.length === 0 ? 'none' : misses.map((s) => `${s.arm} ${s.shape} (p50 ${fmtMs(s.wait.p50Ms)} ms, p99 ${fmtMs(s.wait.p99Ms)} ms)`).join('; ')}.`)
  for (const s of summaries.filter((summary) => summary.otherWait.count > 0)) {
    const extraMs = s.otherWait.p50Ms - s.refresherWait.p50Ms
    // The poll sets the median when the other nodes' extra wait (about one poll) is most of what they wait.
    const pollBound = extraMs >= POLL_MS / 2 && extraMs >= s.otherWait.p50Ms / 2
    lines.push(`- ${s.arm}, ${SHAPE_LABELS[s.shape].replace(/ \(.*\)$/, '')}: the refreshing node's attempts resolve after p50 ${fmtMs(s.refresherWait.p50Ms)} ms (its token call: p50 ${fmtMs(s.tokenCall.p50Ms)} ms), ` +
      `the other nodes' (about two thirds of the attempts) ${fmtMs(extraMs)} ms later at p50 ${fmtMs(s.otherWait.p50Ms)} ms; ${(100 * s.otherAtLeastOnePoll).toFixed(0)} % of those waited at least the first poll interval (${POLL_MS} ms). ` +
      (pollBound
        ? 'A node that loses the race learns of the new token only when it next reads the row, so the poll interval, not the lock or the token endpoint, sets the median.'
        : `The poll adds its share, but most of the wait is the refreshing node's own, queued behind the other refreshes (token call p50 ${fmtMs(s.tokenCall.p50Ms)} ms, DB statement p50 ${fmtMs(s.statement.p50Ms)} ms).`))
  }
  lines.push(`- The simulator's token endpoint answers in ${fmtMs(idle.p50Ms)} ms idle; a real provider's tens to hundreds of ms come once into every wait (the refreshing node's call), and the other nodes add up to one poll interval on top, which grows with the wait (\`--token-delay-ms\` measures that); a notification instead of polling would remove it.`)
  lines.push(`- Redis "unreachable" here means connection refused, which fails a lock call at once; a Redis that accepts connections and then stops answering costs up to its command timeout (500 ms) per lock call before the row lease decides. The row lease alone costs about ${summaries.filter((s) => s.arm === 'postgres-only').map((s) => s.statementsPerExpiry.toFixed(1)).join(' / ')} statements per expiry against ${summaries.filter((s) => s.arm === 'redis').map((s) => s.statementsPerExpiry.toFixed(1)).join(' / ')} with Redis in front.`)
  lines.push(`- All at once, ${NODES} nodes run ${env.connections} refreshes each through pools of 10 on ${env.cores} cores shared with PostgreSQL, Redis and the simulator; the token call and the statements then queue (compare their p50 between the shapes), which is what lifts those rows.`, '')
  lines.push(notes)
  return lines.join('\n').trimEnd() + '\n'
}

async function redisVersion(): Promise<string> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    return /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown'
  } finally {
    client.disconnect()
  }
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  const seed = Number.parseInt(randomBytes(4).toString('hex'), 16)
  const random = makeRandom(seed)
  const env: Environment = {
    ...await describeMachine(), seed, quick, rounds, connections, attempts, tokenDelayMs, redis: await redisVersion(),
    loadAverage: { start: loadAverage(), end: Number.NaN }, busyRounds: 0
  }
  log(`${env.cpu}, ${env.cores} cores, Node ${env.node}, PostgreSQL ${env.postgres}, Redis ${env.redis}; ${rounds} rounds × ${connections} connections × ${attempts} attempts, arms ${armIds.join(', ')}`)
  sim = await startWhoopSimulator()
  const url = await createScratchDatabase('token_refresh')
  db = createPostgresDatabase({ url, poolSize: 4 })
  await migrate(db)
  const pools = new Map<ArmId, BenchConnection[]>()
  for (const arm of armIds) pools.set(arm, await addConnections(arm))
  const nodes: ChildServer[] = []
  for (let n = 0; n < NODES; n++) {
    nodes.push(await startChildServer(NODE_SCRIPT, {
      env: {
        ...process.env, BENCH_NODE: `node-${n + 1}`, DATABASE_URL: url, REDIS_URL, BENCH_REDIS_PREFIX: redisPrefix,
        BENCH_TOKEN_KEY: tokenKey.toString('base64'), BENCH_TOKEN_DELAY_MS: String(tokenDelayMs),
        WHOOP_API_URL: sim.baseUrl, WHOOP_CLIENT_ID: sim.clientId, WHOOP_CLIENT_SECRET: sim.clientSecret
      }
    }))
    log(`node-${n + 1}: pid ${nodes[n]!.pid}`)
  }
  const idle = summarizeLatencies([Float64Array.from(await idleTokenCallsMs(quick ? 25 : 105))])
  log(`token endpoint idle: p50 ${fmtMs(idle.p50Ms)} ms, p99 ${fmtMs(idle.p99Ms)} ms`)
  const cases = armIds.flatMap((arm) => SHAPES.map((shape) => ({ arm, shape })))
  for (const { arm, shape } of cases) {
    const run = await runRound(arm, shape, 0, pools.get(arm)!, nodes)
    log(`warm-up ${arm} ${shape}: p50 ${fmtMs(summarizeLatencies([Float64Array.from(run.waitsMs)]).p50Ms)} ms, checks passed`)
  }

  const runs: RoundRun[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const { arm, shape } of shuffled(cases, random)) {
      const run = await runRound(arm, shape, round, pools.get(arm)!, nodes)
      runs.push(run)
      const wait = summarizeLatencies([Float64Array.from(run.waitsMs)])
      log(`round ${round}/${rounds} ${arm} ${shape}: p50 ${fmtMs(wait.p50Ms)} p99 ${fmtMs(wait.p99Ms)} max ${fmtMs(wait.maxMs)} ms, ` +
        `${run.refreshCalls} refreshes for ${connections} expiries, start lag ≤ ${fmtMs(run.maxStartLagMs)} ms, machine busy ${run.busyCoresBefore.toFixed(2)} cores before`)
    }
  }
  env.loadAverage.end = loadAverage()
  env.busyRounds = runs.filter((run) => run.busyCoresBefore >= QUIET.maxCores).length
  const summaries = cases.map(({ arm, shape }) => summarize(arm, shape, runs.filter((run) => run.arm === arm && run.shape === shape)))
  for (const s of summaries) {
    log(`${s.arm.padEnd(14)} ${s.shape.padEnd(13)} p50 ${fmtMs(s.wait.p50Ms)} p90 ${fmtMs(s.wait.p90Ms)} p99 ${fmtMs(s.wait.p99Ms)} max ${fmtMs(s.wait.maxMs)} ms ` +
      `(ratios ${ratio(s.ratioP50)} / ${ratio(s.ratioP99)}) | refresher p50 ${fmtMs(s.refresherWait.p50Ms)}, others p50 ${fmtMs(s.otherWait.p50Ms)} ms | ` +
      `token call p50 ${fmtMs(s.tokenCall.p50Ms)}, tryLock p50 ${fmtMs(s.lockCall.p50Ms)}, statement p50 ${fmtMs(s.statement.p50Ms)} p99 ${fmtMs(s.statement.p99Ms)} ms | refreshes/expiry ${s.refreshesPerExpiry.toFixed(2)}, revoked ${s.familiesRevoked}`)
  }
  const totalSeconds = (performance.now() - runStarted) / 1000
  if (flags['no-write']) {
    log('--no-write: results and docs not written')
    return
  }
  mkdirSync(new URL('bench/results/', ROOT), { recursive: true })
  writeFileSync(RESULTS_FILE, JSON.stringify({
    environment: env, totalSeconds, reference: REFERENCE, pollMs: POLL_MS, idleTokenCall: idle, summaries, rounds: runs.map(compactRun)
  }, null, 2) + '\n')
  updateDocsSection(TITLE, 'token-refresh', (notes) => renderSection(env, summaries, idle, totalSeconds, notes))
  log(`wrote ${RESULTS_FILE.pathname} and ${docsFile} in ${totalSeconds.toFixed(0)} s`)
}

async function cleanUp(): Promise<void> {
  await stopChildServers()
  await db?.close().catch(() => {})
  await sim?.close().catch(() => {})
  // Lock keys are deleted on unlock and expire after the 30 s lease otherwise: nothing of the run stays in Redis.
  await dropScratchDatabases(flags['keep-db'], log)
}

await runBenchmark(main, cleanUp, log)
