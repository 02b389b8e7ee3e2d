/**
 * HealthKit upload benchmark (`npm run bench:healthkit`).
 *
 * Drives the real app — a child process running createApp against a scratch PostgreSQL database — over real
 * HTTP (fetch, keep-alive), and runs a raw baseline in this process against a second scratch database: the same
 * rows written by one `INSERT … SELECT FROM unnest(…)` statement (events upsert + outbox insert, one
 * transaction), no HTTP. Arms and batch sizes are interleaved in shuffled order over several rounds; ratios are
 * taken per round. Then a 100,000-sample upload is streamed in one request to a fresh server process whose peak
 * RSS is read from /proc.
 *
 * Flags: --quick (~30 s), --rounds N, --concurrency N, --sizes 10,100,…, --skip-rss, --cpu-prof (profile the
 * server child during the measured rounds into bench/results/profiles; results and docs are then not written),
 * --keep-db, --no-write (print only), --server-node-options='<flags>' (Node flags of the server child).
 * Progress goes to stderr; results to bench/results/healthkit.json and the "HealthKit uploads" section of
 * docs/benchmarks.md.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { updateDocsSection, docsFile } from '../lib/docs.ts'
import { DEPLOYED_NODE_FLAGS } from '../lib/node-flags.ts'
import { runBenchmark } from '../lib/run.ts'
import { describeMachine, type Machine } from '../lib/environment.ts'
import { backendCpu, cpuDelta, cpuMs, loadAverage, machineBusyMs, ownCpuMs } from '../lib/proc.ts'
import { ADMIN_URL, createScratchDatabase, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, makeRandom, median, percentile, shuffled } from '../lib/stats.ts'
import { BASELINE_SQL, baselineParams, baselineRows, makeBatch, sample, freshUuidPrefix } from './workload.ts'

const ROOT = new URL('../../', import.meta.url)
const RESULTS_FILE = new URL('bench/results/healthkit.json', ROOT)
const PROFILE_DIR = new URL('bench/results/profiles/', ROOT)
const SERVER_SCRIPT = new URL('bench/healthkit/server.ts', ROOT)

const REFERENCE = { samplesPerSecond: 673, batch100Ms: 156 }
const TARGETS = { samplesPerSecond: 50_000, minRatio: 0.5, batch100P50Ms: 10, rssGrowthMb: 150 }
const USER_ID = 'bench-user'
const BIG_UPLOAD_SAMPLES = 100_000

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    concurrency: { type: 'string', default: '2' },
    sizes: { type: 'string', default: '10,50,100,500,1000,10000' },
    'skip-rss': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'keep-db': { type: 'boolean', default: false },
    'server-node-options': { type: 'string', default: '' },
    'no-write': { type: 'boolean', default: false }
  }
})
const quick = flags.quick
const rounds = Number(flags.rounds ?? (quick ? 3 : 7))
const concurrency = Number(flags.concurrency)
const sizes = flags.sizes.split(',').map(Number)
const profiling = flags['cpu-prof']
/**
 * Node flags for every server child (experiments), after the deployed ones (bin/node-flags); the default run
 * measures the app as `bin/bridge` starts it.
 */
const serverNodeOptions = flags['server-node-options'].split(' ').filter((flag) => flag !== '')
/**
 * The streamed upload runs once as deployed (bin/node-flags) and, in a full run, again with V8's own young
 * generation sizing (32 MiB semi-spaces on a 24 GiB host), to show what the deployed flags save.
 */
const RSS_VARIANTS: readonly string[][] = quick ? [[]] : [[], ['--max-semi-space-size=32']]
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(concurrency) || concurrency < 1 ||
  sizes.some((size) => !Number.isInteger(size) || size < 1)) {
  throw new Error('--rounds, --concurrency and --sizes must be positive integers')
}
/** Samples per arm per round, bounded in requests so small batches still give enough latencies. */
const SAMPLES_PER_ROUND = quick ? 10_000 : 40_000
const requestsPerRound = (size: number): number =>
  Math.max(quick ? 3 : 8, Math.min(quick ? 150 : 400, Math.round(SAMPLES_PER_ROUND / size)))

const log = (message: string): void => {
  process.stderr.write(`[bench:healthkit ${((performance.now()) / 1000).toFixed(1)}s] ${message}\n`)
}

// ---------------------------------------------------------------------------------------------------------------
// Scratch databases

// ---------------------------------------------------------------------------------------------------------------
// The server child

interface Server {
  child: ChildProcess
  pid: number
  baseUrl: string
  /** Sends a command and waits for the reply of the given type (profiling). */
  command(message: Record<string, unknown>, reply: string): Promise<void>
  stop(): Promise<void>
}

const SECRETS = {
  ADMIN_API_TOKEN: randomBytes(24).toString('hex'),
  LOG_PSEUDONYM_KEY: randomBytes(24).toString('hex'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`
}
const liveServers = new Set<Server>()

async function startServer(databaseUrl: string, nodeOptions: readonly string[] = serverNodeOptions): Promise<Server> {
  const child = fork(SERVER_SCRIPT, [], {
    execPath: process.execPath,
    execArgv: [...DEPLOYED_NODE_FLAGS, ...nodeOptions],
    env: {
      ...process.env,
      ...SECRETS,
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      HEALTHKIT_MAX_SAMPLES: String(BIG_UPLOAD_SAMPLES),
      BENCH_PROFILE: profiling ? '1' : '0'
    },
    // The app's warn lines (e.g. "KAFKA_BROKERS is not set") go to our stderr with the progress.
    stdio: ['ignore', 2, 2, 'ipc']
  })
  const baseUrl = await new Promise<string>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`server exited early with code ${code}`)))
    child.on('message', (message: { type?: string, address?: string }) => {
      if (message.type === 'listening' && message.address !== undefined) resolve(message.address)
    })
  })
  child.removeAllListeners('exit')
  const server: Server = {
    child,
    pid: child.pid!,
    baseUrl,
    async command(message, reply) {
      const answered = new Promise<void>((resolve) => {
        const listener = (answer: { type?: string }): void => {
          if (answer.type !== reply) return
          child.off('message', listener)
          resolve()
        }
        child.on('message', listener)
      })
      child.send(message)
      await answered
    },
    async stop() {
      liveServers.delete(server)
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send('stop')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  }
  liveServers.add(server)
  return server
}

async function issueDeviceToken(server: Server): Promise<string> {
  const response = await fetch(`${server.baseUrl}/v1/users/${USER_ID}/devices`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRETS.ADMIN_API_TOKEN}`, 'content-type': 'application/json' },
    body: '{"name":"bench"}'
  })
  if (response.status !== 201) throw new Error(`device creation failed: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { token: string }).token
}

// ---------------------------------------------------------------------------------------------------------------
// /proc readers

/** VmRSS and VmHWM of a process, in KiB. */
function memoryKb(pid: number): { rss: number, hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN)
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false when not permitted. */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement

interface ArmRun {
  samples: number
  requests: number
  wallMs: number
  latenciesMs: number[]
  /** The app process (ours only). */
  serverCpuMs?: number
  /** PostgreSQL backends of the arm's database. */
  postgresCpuMs: number
  /** Whole machine, and this benchmark process (load generator / baseline client). */
  machineBusyMs: number
  benchCpuMs: number
}

/** Closed loop: `concurrency` workers each send the next request as soon as their previous one completed. */
async function closedLoop(count: number, send: (index: number) => Promise<void>): Promise<{ wallMs: number, latenciesMs: number[] }> {
  const latenciesMs: number[] = new Array<number>(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++
      const started = performance.now()
      await send(index)
      latenciesMs[index] = performance.now() - started
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return { wallMs: performance.now() - started, latenciesMs }
}

interface Prepared {
  size: number
  bodies: Buffer[]
  params: unknown[][]
}

function prepare(size: number, requests: number): Prepared {
  const bodies: Buffer[] = []
  const params: unknown[][] = []
  for (let i = 0; i < requests; i++) {
    const batch = makeBatch(size)
    bodies.push(batch.body)
    params.push(baselineParams(baselineRows(USER_ID, batch.samples)))
  }
  return { size, bodies, params }
}

interface Arms {
  ours(prepared: Prepared): Promise<ArmRun>
  baseline(prepared: Prepared): Promise<ArmRun>
}

interface ArmTargets {
  server: Server
  token: string
  pool: pg.Pool
  admin: pg.Client
  appDatabase: string
  rawDatabase: string
}

type ArmMeasure = Omit<ArmRun, 'machineBusyMs' | 'benchCpuMs'>

/** Adds whole-machine and own CPU to an arm's figures, to show how much else ran on the box meanwhile. */
function accounted(arm: (prepared: Prepared) => Promise<ArmMeasure>): (prepared: Prepared) => Promise<ArmRun> {
  return async (prepared) => {
    const machineBefore = machineBusyMs()
    const benchBefore = ownCpuMs()
    const run = await arm(prepared)
    return { ...run, machineBusyMs: machineBusyMs() - machineBefore, benchCpuMs: ownCpuMs() - benchBefore }
  }
}

function makeArms(targets: ArmTargets, totals: { ours: number, baseline: number }): Arms {
  const { server, token, pool, admin } = targets
  const url = `${server.baseUrl}/v1/healthkit/batch`
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  return {
    ours: accounted(async (prepared) => {
      const pgBefore = await backendCpu(admin, targets.appDatabase)
      const cpuBefore = cpuMs(server.pid)
      const { wallMs, latenciesMs } = await closedLoop(prepared.bodies.length, async (index) => {
        const response = await fetch(url, { method: 'POST', headers, body: prepared.bodies[index]! })
        const result = (await response.json()) as { accepted?: number }
        if (response.status !== 200 || result.accepted !== prepared.size) {
          throw new Error(`upload failed: ${response.status} ${JSON.stringify(result).slice(0, 300)}`)
        }
      })
      const serverCpuMs = cpuMs(server.pid) - cpuBefore
      const postgresCpuMs = cpuDelta(pgBefore, await backendCpu(admin, targets.appDatabase))
      const samples = prepared.size * prepared.bodies.length
      totals.ours += samples
      return { samples, requests: prepared.bodies.length, wallMs, latenciesMs, serverCpuMs, postgresCpuMs }
    }),
    baseline: accounted(async (prepared) => {
      const pgBefore = await backendCpu(admin, targets.rawDatabase)
      const { wallMs, latenciesMs } = await closedLoop(prepared.params.length, async (index) => {
        const result = await pool.query(BASELINE_SQL, prepared.params[index])
        if (result.rowCount !== prepared.size) throw new Error(`baseline wrote ${result.rowCount} outbox rows, expected ${prepared.size}`)
      })
      const postgresCpuMs = cpuDelta(pgBefore, await backendCpu(admin, targets.rawDatabase))
      const samples = prepared.size * prepared.params.length
      totals.baseline += samples
      return { samples, requests: prepared.params.length, wallMs, latenciesMs, postgresCpuMs }
    })
  }
}

interface SizeResult {
  batchSize: number
  requestsPerRound: number
  rounds: number
  ours: {
    samplesPerSecond: number, roundSamplesPerSecond: number[], p50Ms: number, p99Ms: number, maxMs: number
    serverCpuUsPerSample: number, postgresCpuUsPerSample: number, clientCpuUsPerSample: number
  }
  baseline: {
    samplesPerSecond: number, roundSamplesPerSecond: number[], p50Ms: number, p99Ms: number, maxMs: number
    postgresCpuUsPerSample: number, clientCpuUsPerSample: number
  }
  ratio: { median: number, min: number, max: number, perRound: number[] }
  targets: { name: string, met: boolean }[]
}

function summarize(size: number, ours: ArmRun[], baseline: ArmRun[]): SizeResult {
  const rate = (run: ArmRun): number => run.samples / (run.wallMs / 1000)
  const latencies = (runs: ArmRun[]): number[] => runs.flatMap((run) => run.latenciesMs).sort((a, b) => a - b)
  const oursLatencies = latencies(ours)
  const baselineLatencies = latencies(baseline)
  const ratios = ours.map((run, i) => rate(run) / rate(baseline[i]!))
  const oursRate = median(ours.map(rate))
  const ratio = median(ratios)
  const perSample = (runs: ArmRun[], ms: (run: ArmRun) => number): number =>
    runs.reduce((sum, run) => sum + ms(run), 0) * 1000 / runs.reduce((sum, run) => sum + run.samples, 0)
  const p50 = percentile(oursLatencies, 50)
  const targets: SizeResult['targets'] = []
  if (size >= 500) {
    targets.push({ name: `≥ ${TARGETS.samplesPerSecond.toLocaleString('en-US')} samples/s`, met: oursRate >= TARGETS.samplesPerSecond })
    targets.push({ name: `≥ ${TARGETS.minRatio}× baseline`, met: ratio >= TARGETS.minRatio })
  }
  if (size === 100) targets.push({ name: `p50 ≤ ${TARGETS.batch100P50Ms} ms`, met: p50 <= TARGETS.batch100P50Ms })
  return {
    batchSize: size,
    requestsPerRound: ours[0]?.requests ?? 0,
    rounds: ours.length,
    ours: {
      samplesPerSecond: oursRate,
      roundSamplesPerSecond: ours.map(rate),
      p50Ms: p50,
      p99Ms: percentile(oursLatencies, 99),
      maxMs: oursLatencies.at(-1) ?? Number.NaN,
      serverCpuUsPerSample: perSample(ours, (run) => run.serverCpuMs ?? 0),
      postgresCpuUsPerSample: perSample(ours, (run) => run.postgresCpuMs),
      clientCpuUsPerSample: perSample(ours, (run) => run.benchCpuMs)
    },
    baseline: {
      samplesPerSecond: median(baseline.map(rate)),
      roundSamplesPerSecond: baseline.map(rate),
      p50Ms: percentile(baselineLatencies, 50),
      p99Ms: percentile(baselineLatencies, 99),
      maxMs: baselineLatencies.at(-1) ?? Number.NaN,
      postgresCpuUsPerSample: perSample(baseline, (run) => run.postgresCpuMs),
      clientCpuUsPerSample: perSample(baseline, (run) => run.benchCpuMs)
    },
    ratio: { median: ratio, min: Math.min(...ratios), max: Math.max(...ratios), perRound: ratios },
    targets
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 100,000 samples in one streamed request

interface RssResult {
  /** Node flags of the server process; empty as deployed. */
  nodeOptions: string[]
  samples: number
  bodyBytes: number
  seconds: number
  samplesPerSecond: number
  rssBeforeMb: number
  peakRssMb: number
  growthMb: number
  peakSource: 'VmHWM after reset' | 'VmRSS polling'
}

/** A request body produced piece by piece while it is sent: the client never holds the whole document. */
function streamedBody(samples: number, counter: { bytes: number }): ReadableStream<Uint8Array> {
  const prefix = freshUuidPrefix()
  const perChunk = 500
  let index = 0
  let started = false
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      let text = started ? '' : '{"samples":['
      started = true
      const end = Math.min(samples, index + perChunk)
      for (; index < end; index++) {
        text += (index === 0 ? '' : ',') + JSON.stringify(sample(`${prefix}${String(index).padStart(12, '0')}`, index))
      }
      if (index === samples) text += '],"deleted":[]}'
      const bytes = Buffer.from(text)
      counter.bytes += bytes.length
      controller.enqueue(bytes)
      if (index === samples) controller.close()
    }
  }, { highWaterMark: 2 })
}

async function bigUpload(server: Server, nodeOptions: readonly string[], token: string, totals: { ours: number }): Promise<RssResult> {
  const url = `${server.baseUrl}/v1/healthkit/batch`
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  // Settle the process first (JIT, pools, allocator) so the figure is the upload's own growth.
  for (let i = 0; i < 5; i++) {
    const response = await fetch(url, { method: 'POST', headers, body: makeBatch(1000).body })
    await response.arrayBuffer()
    totals.ours += 1000
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const before = memoryKb(server.pid)
  const reset = resetPeakRss(server.pid)
  let polledPeak = before.rss
  const poller = setInterval(() => {
    polledPeak = Math.max(polledPeak, memoryKb(server.pid).rss)
  }, 5)
  const counter = { bytes: 0 }
  const started = performance.now()
  const response = await fetch(url, {
    method: 'POST', headers, body: streamedBody(BIG_UPLOAD_SAMPLES, counter), duplex: 'half'
  })
  const result = (await response.json()) as { accepted?: number }
  const seconds = (performance.now() - started) / 1000
  clearInterval(poller)
  const after = memoryKb(server.pid)
  polledPeak = Math.max(polledPeak, after.rss)
  if (response.status !== 200 || result.accepted !== BIG_UPLOAD_SAMPLES) {
    throw new Error(`big upload failed: ${response.status} ${JSON.stringify(result).slice(0, 300)}`)
  }
  totals.ours += BIG_UPLOAD_SAMPLES
  const peakKb = reset ? Math.max(after.hwm, polledPeak) : polledPeak
  return {
    nodeOptions: [...nodeOptions],
    samples: BIG_UPLOAD_SAMPLES,
    bodyBytes: counter.bytes,
    seconds,
    samplesPerSecond: BIG_UPLOAD_SAMPLES / seconds,
    rssBeforeMb: before.rss / 1024,
    peakRssMb: peakKb / 1024,
    growthMb: (peakKb - before.rss) / 1024,
    peakSource: reset ? 'VmHWM after reset' : 'VmRSS polling'
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Environment, report

interface Environment extends Machine {
  concurrency: number
  rounds: number
  quick: boolean
  seed: number
  /** 1-minute load average when the run started and ended. */
  loadAverage: { start: number, end: number }
  /**
   * Cores' worth of CPU used during the measured rounds by processes other than this benchmark, its server
   * child and the PostgreSQL backends of its two databases (so including PostgreSQL's WAL writer and checkpointer).
   */
  otherCpuCores: number
}

async function describeEnvironment(seed: number): Promise<Omit<Environment, 'loadAverage' | 'otherCpuCores'>> {
  return { ...await describeMachine(), concurrency, rounds, quick, seed }
}

function renderSection(env: Environment, results: SizeResult[], rss: readonly RssResult[], totalSeconds: number, notes: string): string {
  const lines: string[] = []
  lines.push('## HealthKit uploads', '')
  lines.push(`Generated by \`bench/healthkit/run.ts\` on ${env.date.slice(0, 10)} (${env.quick ? 'quick run' : 'full run'}, ` +
    `${totalSeconds.toFixed(0)} s, seed ${env.seed}). Raw data: \`bench/results/healthkit.json\`.`, '')
  lines.push('**Machine.**', '')
  lines.push(`- CPU: ${env.cpu}, ${env.cores} cores (client, server and PostgreSQL share them; nothing pinned); RAM ${env.ramGb} GiB`)
  lines.push(`- Node ${env.node}; PostgreSQL ${env.postgres} on 127.0.0.1 (` +
    Object.entries(env.postgresSettings).map(([name, value]) => `${name}=${value}`).join(', ') + ')')
  lines.push('- Kafka: not configured (events stay in the outbox, as the app does without KAFKA_BROKERS); no Redis')
  lines.push(`- Other load: 1-min load average ${env.loadAverage.start.toFixed(2)} at start, ${env.loadAverage.end.toFixed(2)} at end; ` +
    `processes outside the benchmark (incl. PostgreSQL's WAL writer and checkpointer) used ${env.otherCpuCores.toFixed(2)} ` +
    `of ${env.cores} cores on average during the measured rounds`, '')
  lines.push('**Commands.**', '')
  lines.push('```sh')
  lines.push('npm run bench:healthkit                  # full run, ~3 min')
  lines.push('npm run bench:healthkit -- --quick       # ~30 s')
  lines.push('# CPU profile of the server child during the measured rounds only (V8 profiler via node:inspector), then')
  lines.push('# its top functions by self and inclusive time:')
  lines.push('node_modules/.bin/node bench/healthkit/run.ts --quick --cpu-prof --skip-rss --sizes 100,1000')
  lines.push('node_modules/.bin/node bench/healthkit/cpuprofile-top.ts bench/results/profiles/<file>.cpuprofile')
  lines.push('# other options: --rounds N --concurrency N --sizes … --no-write --keep-db --server-node-options=\'<node flags>\'')
  lines.push('```', '')
  lines.push('**Method.** One user, one device token. Ours: the real app (`createApp`, LOG_LEVEL=warn) in a child process, ' +
    `POST /v1/healthkit/batch over HTTP/1.1 keep-alive (Node fetch), ${env.concurrency} requests in flight (closed loop). ` +
    'Baseline: in the benchmark process, a `pg.Pool` against a second scratch database with the same schema, ' +
    `${env.concurrency} statements in flight; each batch is ONE autocommit statement, ` +
    '`WITH input AS (SELECT … FROM unnest($1::uuid[], …, $15::text[]) WITH ORDINALITY) , written AS (INSERT INTO events … ' +
    'ON CONFLICT (event_id) DO UPDATE … WHERE <same newer-revision rule> RETURNING event_id) INSERT INTO outbox … ORDER BY ord`: ' +
    'the same rows (computed ahead, untimed, with the bridge\'s own normalizer and event ids), the same index and outbox ' +
    'writes, one transaction per batch — without HTTP, parsing, validation or BEGIN/COMMIT round trips. ' +
    `Every sample has a fresh uuid, so every row is a real insert. Each of ${env.rounds} rounds runs every batch size, ` +
    'sizes and arms in shuffled order, after an untimed warm-up; samples/s is the median over rounds, the ratio is the ' +
    'median of per-round ours/baseline ratios (range in brackets), latencies are pooled over all rounds and measured ' +
    'by the client from request start to the parsed response. CPU per sample: utime+stime of the app process, of the PostgreSQL backends connected to each arm\'s database (WAL writer and checkpointer not included) and of the benchmark process itself (HTTP client for ours, pg client for the baseline). ' +
    'Row counts in both databases are checked at the end.', '')
  lines.push('| Batch | Requests × rounds | Ours samples/s | Ours p50 | Ours p99 | Baseline samples/s | Baseline p50 | Ratio (median [range]) | CPU µs/sample, ours: app / PG / client | CPU µs/sample, baseline: PG / client | Targets |')
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const r of results) {
    const targets = r.targets.length === 0 ? '—' : r.targets.map((t) => `${t.met ? '✅' : '❌'} ${t.name}`).join('<br>')
    lines.push(`| ${fmtInt(r.batchSize)} | ${r.requestsPerRound} × ${r.rounds} | ${fmtInt(r.ours.samplesPerSecond)} | ` +
      `${fmtMs(r.ours.p50Ms)} ms | ${fmtMs(r.ours.p99Ms)} ms | ${fmtInt(r.baseline.samplesPerSecond)} | ${fmtMs(r.baseline.p50Ms)} ms | ` +
      `${r.ratio.median.toFixed(2)} [${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}] | ` +
      `${r.ours.serverCpuUsPerSample.toFixed(1)} / ${r.ours.postgresCpuUsPerSample.toFixed(1)} / ${r.ours.clientCpuUsPerSample.toFixed(1)} | ` +
      `${r.baseline.postgresCpuUsPerSample.toFixed(1)} / ${r.baseline.clientCpuUsPerSample.toFixed(1)} | ${targets} |`)
  }
  lines.push('')
  const best = Math.max(...results.map((r) => r.ours.samplesPerSecond))
  const at100 = results.find((r) => r.batchSize === 100)
  lines.push(`Reference system: ${REFERENCE.samplesPerSecond} samples/s at best, 100 samples in ${REFERENCE.batch100Ms} ms. ` +
    `Here: best ${fmtInt(best)} samples/s (${(best / REFERENCE.samplesPerSecond).toFixed(0)}×)` +
    (at100 === undefined ? '.' : `, 100 samples at p50 ${fmtMs(at100.ours.p50Ms)} ms.`), '')
  if (rss.length > 0) {
    const first = rss[0]!
    lines.push(`**100,000 samples in one streamed request** (${(first.bodyBytes / 1024 ** 2).toFixed(1)} MiB, chunked ` +
      'transfer, generated while sent; each row a fresh server process after five 1,000-sample warm-up uploads; peak from ' +
      '/proc/<pid>/status VmHWM after resetting it through /proc/<pid>/clear_refs, cross-checked by 5 ms VmRSS polling):', '')
    lines.push('| Server Node flags | Time | Samples/s | RSS before | Peak RSS | Growth | Target < 150 MiB |')
    lines.push('|---|---:|---:|---:|---:|---:|---|')
    for (const run of rss) {
      lines.push(`| ${run.nodeOptions.length === 0 ? `as deployed: \`${DEPLOYED_NODE_FLAGS.join(' ')}\`` : `\`${run.nodeOptions.join(' ')}\` after those`} | ${run.seconds.toFixed(2)} s | ` +
        `${fmtInt(run.samplesPerSecond)} | ${run.rssBeforeMb.toFixed(0)} MiB | ${run.peakRssMb.toFixed(0)} MiB | ` +
        `**${run.growthMb.toFixed(0)} MiB** | ${run.growthMb < TARGETS.rssGrowthMb ? '✅' : '❌'} |`)
    }
    lines.push('')
  }
  const misses: string[] = []
  for (const r of results) {
    for (const t of r.targets) if (!t.met) misses.push(`batch ${fmtInt(r.batchSize)}: ${t.name} missed`)
  }
  const deployed = rss.find((run) => run.nodeOptions.length === 0)
  if (deployed !== undefined && deployed.growthMb >= TARGETS.rssGrowthMb) {
    misses.push(`100k upload RSS growth ${deployed.growthMb.toFixed(0)} MiB ≥ ${TARGETS.rssGrowthMb} MiB (deployed flags)`)
  }
  lines.push(`**Targets missed in this run:** ${misses.length === 0 ? 'none.' : misses.join('; ') + '.'}`, '')
  lines.push('**Caveats.** Closed-loop latencies at saturation: p99 is indicative only (coordinated omission), and for ' +
    'batches of 10,000 the p99 is close to the maximum of a few dozen requests. Client, server and PostgreSQL share ' +
    '2 cores, so absolute figures drift ±10–15 % between runs; the per-round ratio is the steadier number. Both ' +
    'databases grow during the run (every row is new); interleaving spreads that drift over all arms.', '')
  lines.push(notes)
  return lines.join('\n').trimEnd() + '\n'
}

// ---------------------------------------------------------------------------------------------------------------

async function countRows(url: string): Promise<{ events: number, outbox: number }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ events: number, outbox: number }>(
      'SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM outbox)::int AS outbox')
    return rows[0]!
  } finally {
    await client.end()
  }
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  const seed = Number.parseInt(randomBytes(4).toString('hex'), 16)
  const random = makeRandom(seed)
  const loadAtStart = loadAverage()
  const env: Environment = { ...await describeEnvironment(seed), loadAverage: { start: loadAtStart, end: Number.NaN }, otherCpuCores: Number.NaN }
  if (loadAtStart > 1) log(`WARNING: load average ${loadAtStart} before the run: other work on this machine will skew the figures`)
  log(`${env.cpu}, ${env.cores} cores, Node ${env.node}, PostgreSQL ${env.postgres}; ${rounds} rounds, concurrency ${concurrency}, sizes ${sizes.join(',')}${profiling ? ', PROFILING' : ''}`)

  const appUrl = await createScratchDatabase('app')
  const rawUrl = await createScratchDatabase('raw')
  // The baseline database gets the app's own schema (same tables, indexes and outbox).
  const rawDb = createPostgresDatabase({ url: rawUrl, poolSize: 1 })
  await migrate(rawDb)
  await rawDb.close()
  const pool = new pg.Pool({ connectionString: rawUrl, max: concurrency, idleTimeoutMillis: 0 })
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()

  const server = await startServer(appUrl)
  log(`server pid ${server.pid} at ${server.baseUrl}`)
  const token = await issueDeviceToken(server)
  const totals = { ours: 0, baseline: 0 }
  const arms = makeArms({
    server, token, pool, admin, appDatabase: new URL(appUrl).pathname.slice(1), rawDatabase: new URL(rawUrl).pathname.slice(1)
  }, totals)

  log('warm-up')
  for (const size of sizes) {
    const prepared = prepare(size, Math.max(2, Math.round(requestsPerRound(size) / 4)))
    await arms.ours(prepared)
    await arms.baseline(prepared)
  }

  if (profiling) {
    mkdirSync(PROFILE_DIR, { recursive: true })
    await server.command({ type: 'profile-start' }, 'profile-started')
  }
  const runs = new Map<number, { ours: ArmRun[], baseline: ArmRun[] }>(sizes.map((size) => [size, { ours: [], baseline: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const size of shuffled(sizes, random)) {
      // A fresh set of samples per round; the same rows go to both arms (each into its own database).
      const prepared = prepare(size, requestsPerRound(size))
      const entry = runs.get(size)!
      const order = shuffled(['ours', 'baseline'] as const, random)
      const got: Partial<Record<'ours' | 'baseline', ArmRun>> = {}
      for (const arm of order) got[arm] = await arms[arm](prepared)
      entry.ours.push(got.ours!)
      entry.baseline.push(got.baseline!)
      const rate = (run: ArmRun): string => fmtInt(run.samples / (run.wallMs / 1000))
      log(`round ${round + 1}/${rounds} batch ${size}: ours ${rate(got.ours!)}/s, baseline ${rate(got.baseline!)}/s (${order.join(' → ')})`)
    }
  }
  const results = sizes.map((size) => summarize(size, runs.get(size)!.ours, runs.get(size)!.baseline))
  const measured = [...runs.values()].flatMap((entry) => [...entry.ours, ...entry.baseline])
  const sum = (value: (run: ArmRun) => number): number => measured.reduce((total, run) => total + value(run), 0)
  env.otherCpuCores = Math.max(0, sum((run) => run.machineBusyMs - run.benchCpuMs - (run.serverCpuMs ?? 0) - run.postgresCpuMs)) /
    sum((run) => run.wallMs)
  log(`other processes used ${env.otherCpuCores.toFixed(2)} cores on average during the measured rounds`)
  let profileFile: string | undefined
  if (profiling) {
    profileFile = new URL(`healthkit-${sizes.join('-')}-${Date.now()}.cpuprofile`, PROFILE_DIR).pathname
    await server.command({ type: 'profile-stop', file: profileFile }, 'profile-written')
  }
  await server.stop()
  await pool.end()
  await admin.end()

  const rss: RssResult[] = []
  if (!flags['skip-rss']) {
    for (const variant of serverNodeOptions.length > 0 ? [serverNodeOptions] : RSS_VARIANTS) {
      const label = variant.length === 0 ? 'deployed flags' : variant.join(' ')
      log(`streaming ${BIG_UPLOAD_SAMPLES.toLocaleString('en-US')} samples in one request to a fresh server process (${label})`)
      const fresh = await startServer(appUrl, variant)
      try {
        const result = await bigUpload(fresh, variant, token, totals)
        rss.push(result)
        log(`big upload (${label}): ${result.seconds.toFixed(2)} s, RSS growth ${result.growthMb.toFixed(0)} MiB (${result.peakSource})`)
      } finally {
        await fresh.stop()
      }
    }
  }

  const [appRows, rawRows] = await Promise.all([countRows(appUrl), countRows(rawUrl)])
  const problems: string[] = []
  if (appRows.events !== totals.ours || appRows.outbox !== totals.ours) problems.push(`app db has ${JSON.stringify(appRows)}, expected ${totals.ours}`)
  if (rawRows.events !== totals.baseline || rawRows.outbox !== totals.baseline) problems.push(`baseline db has ${JSON.stringify(rawRows)}, expected ${totals.baseline}`)
  if (problems.length > 0) throw new Error(`row check failed: ${problems.join('; ')}`)
  log(`row check: app ${appRows.events} events/${appRows.outbox} outbox rows, baseline ${rawRows.events}/${rawRows.outbox} — as expected`)

  const totalSeconds = (performance.now() - runStarted) / 1000
  env.loadAverage.end = loadAverage()
  for (const r of results) {
    log(`batch ${String(r.batchSize).padStart(5)}: ours ${fmtInt(r.ours.samplesPerSecond).padStart(7)}/s p50 ${fmtMs(r.ours.p50Ms)} p99 ${fmtMs(r.ours.p99Ms)} ms | ` +
      `baseline ${fmtInt(r.baseline.samplesPerSecond).padStart(7)}/s p50 ${fmtMs(r.baseline.p50Ms)} ms | ratio ${r.ratio.median.toFixed(2)} | ` +
      `CPU µs/sample: app ${r.ours.serverCpuUsPerSample.toFixed(1)}, pg ${r.ours.postgresCpuUsPerSample.toFixed(1)} vs ${r.baseline.postgresCpuUsPerSample.toFixed(1)}, client ${r.ours.clientCpuUsPerSample.toFixed(1)} vs ${r.baseline.clientCpuUsPerSample.toFixed(1)} | ${r.targets.map((t) => `${t.met ? 'ok' : 'MISS'} ${t.name}`).join(', ')}`)
  }
  if (flags['no-write'] && !profiling) {
    log('--no-write: results and docs not written')
    return
  }
  if (profiling) {
    log(`server profile of the measured rounds: ${profileFile ?? '?'}; results and docs not written (profiling distorts timings)`)
    return
  }
  mkdirSync(new URL('bench/results/', ROOT), { recursive: true })
  writeFileSync(RESULTS_FILE, JSON.stringify({ environment: env, totalSeconds, reference: REFERENCE, targets: TARGETS, batches: results, bigUpload: rss }, null, 2) + '\n')
  updateDocsSection('HealthKit uploads', 'healthkit', (notes) => renderSection(env, results, rss, totalSeconds, notes))
  log(`wrote ${RESULTS_FILE.pathname} and ${docsFile} in ${totalSeconds.toFixed(0)} s`)
}

async function cleanUp(): Promise<void> {
  await Promise.all([...liveServers].map((server) => server.stop()))
  await dropScratchDatabases(flags['keep-db'], log)
}

await runBenchmark(main, cleanUp, log)
