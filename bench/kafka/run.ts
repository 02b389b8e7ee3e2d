/**
 * Kafka publishing benchmark (`npm run bench:kafka`).
 *
 * Throughput: a template database's outbox is filled (untimed) with N realistic events of many users through the
 * bridge's own bulk write. Each round, in shuffled order:
 * - relay: a copy of that database, a fresh topic, and a child process running the real outbox relay with the
 *   real Kafka publisher (bench/kafka/node.ts, wired as src/app.ts wires it); timed from `start` until the topic
 *   holds N messages and no outbox row is pending (rows are marked only after the broker's ack);
 * - raw: a fresh topic with the same partition count and a child process with a bare idempotent acks=all
 *   @platformatic/kafka producer sending the same messages (same keys, values, headers), in batches of the relay's
 *   size, one concurrent sender per relay lane, no database; timed until every send was acknowledged.
 * Every topic is then read back: no event may be missing, duplicates are counted, per-user order is checked.
 *
 * Latency: fixed arrival rates, scheduled by absolute time. The relay child commits uploads through
 * upsertEventsWithOutbox on its own pool while the relay runs (with relay.notify() after each commit as the HTTP
 * route does, and without it — the poll path of a commit on another node); a consumer in this process reads the
 * topic. Commit time is taken in the child when the statement's COMMIT returned, receive time here, both on
 * CLOCK_MONOTONIC. A raw-producer arm at the same rate measures the floor (send start → consumer).
 *
 * Flags: --quick (~1 min), --rounds N, --events N, --users N, --partitions N, --latency-seconds N,
 * --skip-throughput, --skip-latency, --cpu-prof (profile the relay child of every relay arm into
 * bench/results/profiles; results and docs are then not written), --keep-db, --no-write,
 * --node-options='<flags>' (Node flags of the node children) and --idle-poll-ms N (the relay's idle poll instead of the
 * app's default), both for experiments.
 * Progress goes to stderr; results to bench/results/kafka.json and the "Kafka publishing" section of
 * docs/benchmarks.md.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Admin, Consumer, stringDeserializers } from '@platformatic/kafka'
import pg from 'pg'
import { DEFAULT_RELAY_OPTIONS } from '../../src/pipeline/outbox-relay.ts'
import { OUTBOX_LANES } from '../../src/storage/outbox-repository.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { docsFile, updateDocsSection } from '../lib/docs.ts'
import { DEPLOYED_NODE_FLAGS } from '../lib/node-flags.ts'
import { runBenchmark } from '../lib/run.ts'
import { describeMachine, type Machine } from '../lib/environment.ts'
import { CLOCK_TICKS, backendCpu, cpuDelta, cpuMs, loadAverage, machineBusyMs, ownCpuMs } from '../lib/proc.ts'
import { ADMIN_URL, createScratchDatabase, databaseName, dropScratchDatabase, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, makeRandom, median, percentile, shuffled } from '../lib/stats.ts'
import { clockMs, type Command, type LoadReport } from './protocol.ts'
import { prefillOutbox } from './workload.ts'

const ROOT = new URL('../../', import.meta.url)
const RESULTS_FILE = new URL('bench/results/kafka.json', ROOT)
const PROFILE_DIR = new URL('bench/results/profiles/', ROOT)
const NODE_SCRIPT = new URL('bench/kafka/node.ts', ROOT)

const REFERENCE = { eventsPerSecond: 2341 }
const TARGETS = { eventsPerSecond: 50_000, minRatio: 0.5, p99Ms: 100, p99Rate: 5000 }

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    events: { type: 'string' },
    users: { type: 'string' },
    partitions: { type: 'string', default: '16' },
    'latency-seconds': { type: 'string' },
    'skip-throughput': { type: 'boolean', default: false },
    'skip-latency': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'keep-db': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'node-options': { type: 'string', default: '' },
    'idle-poll-ms': { type: 'string' }
  }
})
const quick = flags.quick
const rounds = Number(flags.rounds ?? (quick ? 2 : 5))
const totalEvents = Number(flags.events ?? (quick ? 50_000 : 200_000))
const users = Number(flags.users ?? (quick ? 500 : 2000))
const partitions = Number(flags.partitions)
const latencySeconds = Number(flags['latency-seconds'] ?? (quick ? 5 : 20))
const profiling = flags['cpu-prof']
/** Node flags for the node children (experiments); the default run measures them as `bin/bridge` starts Node. */
const nodeOptions = flags['node-options'].split(' ').filter((flag) => flag !== '')
if ([rounds, totalEvents, users, partitions, latencySeconds].some((value) => !Number.isInteger(value) || value < 1) || totalEvents % users !== 0) {
  throw new Error('--rounds, --events, --users, --partitions and --latency-seconds must be positive integers, --events a multiple of --users')
}
const BROKERS = (process.env.BENCH_KAFKA_BROKERS ?? process.env.TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((entry) => entry.trim())
const SECRETS = {
  LOG_PSEUDONYM_KEY: randomBytes(24).toString('hex'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`
}

/** Latency arms: fixed arrival rate in ticks of `perTick` events every `intervalMs`. */
interface LatencyArm {
  name: string
  kind: 'relay' | 'raw'
  notify: boolean
  ratePerSecond: number
  perTick: number
  intervalMs: number
}
const LATENCY_ARMS: LatencyArm[] = [
  { name: 'relay, notify after commit (same node)', kind: 'relay', notify: true, ratePerSecond: 5000, perTick: 50, intervalMs: 10 },
  { name: 'relay, no notify (poll path: commit on another node)', kind: 'relay', notify: false, ratePerSecond: 5000, perTick: 50, intervalMs: 10 },
  { name: 'raw producer (floor: send start → consumer)', kind: 'raw', notify: false, ratePerSecond: 5000, perTick: 50, intervalMs: 10 },
  ...quick ? [] : [{ name: 'relay, notify after commit (same node)', kind: 'relay' as const, notify: true, ratePerSecond: 1000, perTick: 10, intervalMs: 10 }]
]
const LATENCY_USERS = 1000
const WARMUP_SECONDS = 2

const log = (message: string): void => {
  process.stderr.write(`[bench:kafka ${(performance.now() / 1000).toFixed(1)}s] ${message}\n`)
}

// ---------------------------------------------------------------------------------------------------------------
// Broker

interface BrokerInfo {
  version: string
  pid: number | undefined
}

/** The broker of scripts/kafka.sh (its pid gives its CPU time); another broker is used without CPU accounting. */
function brokerInfo(): BrokerInfo {
  const status = spawnSync('bash', [new URL('scripts/kafka.sh', ROOT).pathname, 'status'], { encoding: 'utf8' }).stderr
  const match = /pid (\d+), Kafka ([\d.]+), ([^\s]+)/.exec(status)
  if (match === null || match[3] !== BROKERS[0]) return { version: 'unknown', pid: undefined }
  const pid = Number(match[1])
  // A freshly started JVM is still compiling: its first minute is slower and costs more CPU.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const startedTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  const upSeconds = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - startedTicks / CLOCK_TICKS
  if (upSeconds < 60) log(`WARNING: the broker started ${upSeconds.toFixed(0)} s ago; its JIT is still cold`)
  return { version: match[2]!, pid }
}

const admin = new Admin({ clientId: 'bb-bench-admin', bootstrapBrokers: BROKERS })
const createdTopics: string[] = []

async function createTopic(prefix: string): Promise<string> {
  const name = `bb-bench-${prefix}-${randomBytes(4).toString('hex')}`
  await admin.createTopics({ topics: [name], partitions, replicas: 1 })
  createdTopics.push(name)
  return name
}

async function deleteTopics(names: readonly string[]): Promise<void> {
  if (names.length === 0) return
  await admin.deleteTopics({ topics: [...names] }).catch((error: unknown) => log(`could not delete topics: ${(error as Error).message}`))
  for (const name of names) createdTopics.splice(createdTopics.indexOf(name), 1)
}

/** Sum of the topic's end offsets: how many records it holds. */
async function endOffsets(topic: string): Promise<number> {
  const listed = await admin.listOffsets({
    topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }]
  })
  return listed.flatMap((entry) => entry.partitions).reduce((sum, partition) => sum + Number(partition.offset), 0)
}

interface Received {
  key: string
  eventId: string
  atMs: number
}

/**
 * Reads a topic from the beginning and calls `onMessage` for each record, until `done()` says so or nothing
 * arrived for `idleMs`. Returns a stop function too, for readers that run alongside a load.
 */
function readTopic(topic: string, onMessage: (message: Received) => void, done: () => boolean, idleMs = 15_000): { finished: Promise<void>, stop: () => void } {
  const consumer = new Consumer({
    groupId: `bb-bench-${randomBytes(5).toString('hex')}`, clientId: 'bb-bench-consumer', bootstrapBrokers: BROKERS,
    deserializers: stringDeserializers
  })
  let stream: Awaited<ReturnType<typeof consumer.consume>> | undefined
  let stopped = false
  const stop = (): void => {
    stopped = true
    void stream?.close()
  }
  const finished = (async () => {
    try {
      stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 500, minBytes: 1 })
      if (stopped) return
      let idle = setTimeout(stop, idleMs)
      for await (const message of stream) {
        const atMs = clockMs()
        onMessage({ key: message.key, eventId: String(message.headers.get('event_id')), atMs })
        clearTimeout(idle)
        if (done()) break
        idle = setTimeout(stop, idleMs)
      }
      clearTimeout(idle)
    } finally {
      await stream?.close().catch(() => {})
      await consumer.close(true).catch(() => {})
    }
  })()
  return { finished, stop }
}

// ---------------------------------------------------------------------------------------------------------------
// Node children

interface Node {
  pid: number
  send(command: Command): void
  /** The next reply of the given type (an `error` reply or an exit rejects). */
  next<T = Record<string, unknown>>(type: string): Promise<T>
  stop(): Promise<void>
}

const liveNodes = new Set<Node>()

async function startNode(mode: 'relay' | 'raw', env: Record<string, string>): Promise<Node> {
  const child: ChildProcess = fork(NODE_SCRIPT, [], {
    execPath: process.execPath,
    execArgv: [...DEPLOYED_NODE_FLAGS, ...nodeOptions],
    env: {
      ...process.env, ...SECRETS, ...env,
      BENCH_MODE: mode, KAFKA_BROKERS: BROKERS.join(','), LOG_LEVEL: 'warn', LOG_FORMAT: 'json', BENCH_PROFILE: profiling ? '1' : '0',
      ...flags['idle-poll-ms'] === undefined ? {} : { BENCH_IDLE_POLL_MS: flags['idle-poll-ms'] }
    },
    stdio: ['ignore', 2, 2, 'ipc']
  })
  const waiting = new Map<string, { resolve: (value: never) => void, reject: (error: Error) => void }>()
  const failAll = (error: Error): void => {
    for (const entry of waiting.values()) entry.reject(error)
    waiting.clear()
  }
  child.on('message', (message: { type: string, message?: string }) => {
    if (message.type === 'error') return failAll(new Error(`${mode} node failed: ${message.message}`))
    const entry = waiting.get(message.type)
    waiting.delete(message.type)
    entry?.resolve(message as never)
  })
  child.on('exit', (code) => failAll(new Error(`${mode} node exited with code ${code}`)))
  const node: Node = {
    pid: child.pid!,
    send(command) {
      child.send(command)
    },
    next<T>(type: string) {
      return new Promise<T>((resolve, reject) => waiting.set(type, { resolve, reject }))
    },
    async stop() {
      liveNodes.delete(node)
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ type: 'stop' } satisfies Command)
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }
  }
  const ready = node.next('ready')
  liveNodes.add(node)
  await ready
  return node
}

async function profiled<T>(node: Node, name: string, work: () => Promise<T>): Promise<{ result: T, file?: string }> {
  if (!profiling) return { result: await work() }
  mkdirSync(PROFILE_DIR, { recursive: true })
  const started = node.next('profile-started')
  node.send({ type: 'profile-start' })
  await started
  const result = await work()
  const file = new URL(`kafka-${name}-${Date.now()}.cpuprofile`, PROFILE_DIR).pathname
  const written = node.next('profile-written')
  node.send({ type: 'profile-stop', file })
  await written
  log(`profile of the relay node: ${file}`)
  return { result, file }
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting

interface CpuSnapshot {
  node: number
  postgres: Map<number, number>
  broker: number
  machine: number
  bench: number
}

interface CpuUse {
  /** Milliseconds of CPU in the node child, the PostgreSQL backends of the arm's database, the broker JVM, the whole machine and this process. */
  nodeMs: number
  postgresMs: number
  brokerMs: number
  machineMs: number
  benchMs: number
}

async function cpuSnapshot(pgAdmin: pg.Client, node: Node, database: string | undefined, broker: BrokerInfo): Promise<CpuSnapshot> {
  return {
    node: cpuMs(node.pid),
    postgres: database === undefined ? new Map<number, number>() : await backendCpu(pgAdmin, database),
    broker: broker.pid === undefined ? Number.NaN : cpuMs(broker.pid),
    machine: machineBusyMs(),
    bench: ownCpuMs()
  }
}

async function cpuSince(before: CpuSnapshot, pgAdmin: pg.Client, node: Node, database: string | undefined, broker: BrokerInfo): Promise<CpuUse> {
  // The broker is shared with whoever else uses scripts/kafka.sh on this machine; a restart mid-arm (cold JVM,
  // lost CPU account) invalidates the arm.
  if (broker.pid !== undefined && !existsSync(`/proc/${broker.pid}`)) {
    throw new Error(`the broker (pid ${broker.pid}) was restarted during the run; rerun the benchmark`)
  }
  const after = await cpuSnapshot(pgAdmin, node, database, broker)
  return {
    nodeMs: after.node - before.node,
    postgresMs: cpuDelta(before.postgres, after.postgres),
    brokerMs: after.broker - before.broker,
    machineMs: after.machine - before.machine,
    benchMs: after.bench - before.bench
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Throughput

interface Verification {
  /** Records in the topic (end offsets). */
  records: number
  distinct: number
  duplicates: number
  missing: number
  /** Users whose events (first occurrences) are not in commit order. */
  usersOutOfOrder: number
}

interface ThroughputRun {
  arm: 'relay' | 'raw'
  round: number
  events: number
  wallMs: number
  cpu: CpuUse
  verification: Verification
  profile?: string
}

/** The expected topic content: every user's event ids in commit (outbox id) order. */
type Expected = Map<string, string[]>

async function expectedOrder(url: string): Promise<Expected> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ user_id: string, event_id: string }>('SELECT user_id, event_id::text AS event_id FROM outbox ORDER BY id')
    const order: Expected = new Map()
    for (const row of rows) {
      const list = order.get(row.user_id)
      if (list === undefined) order.set(row.user_id, [row.event_id])
      else list.push(row.event_id)
    }
    return order
  } finally {
    await client.end()
  }
}

async function verifyTopic(topic: string, expected: Expected): Promise<Verification> {
  const records = await endOffsets(topic)
  const seen = new Set<string>()
  const firstByUser = new Map<string, string[]>()
  let read = 0
  const reader = readTopic(topic, (message) => {
    read++
    if (seen.has(message.eventId)) return
    seen.add(message.eventId)
    const list = firstByUser.get(message.key)
    if (list === undefined) firstByUser.set(message.key, [message.eventId])
    else list.push(message.eventId)
  }, () => read >= records)
  await reader.finished
  let missing = 0
  let usersOutOfOrder = 0
  for (const [user, ids] of expected) {
    const got = firstByUser.get(user) ?? []
    for (const id of ids) if (!seen.has(id)) missing++
    if (got.length !== ids.length || got.some((id, index) => id !== ids[index])) usersOutOfOrder++
  }
  return { records, distinct: seen.size, duplicates: read - seen.size, missing, usersOutOfOrder }
}

async function relayThroughput(round: number, template: string, expected: Expected, pgAdmin: pg.Client, broker: BrokerInfo, warmTopic: string): Promise<ThroughputRun> {
  const url = await createScratchDatabase('relay', template)
  const database = databaseName(url)
  const topic = await createTopic('relay')
  const dlqTopic = await createTopic('relay-dlq')
  const node = await startNode('relay', { DATABASE_URL: url, KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: dlqTopic, BENCH_WARM_TOPIC: warmTopic })
  const probe = new pg.Client({ connectionString: url })
  await probe.connect()
  try {
    const pending = async (): Promise<number> =>
      Number((await probe.query<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL')).rows[0]!.n)
    if (await pending() !== totalEvents) throw new Error('the copied outbox does not hold the expected rows')
    const before = await cpuSnapshot(pgAdmin, node, database, broker)
    const startedMs = clockMs()
    const { result: wallMs, file } = await profiled(node, `throughput-${round}`, async () => {
      const started = node.next('relay-started')
      node.send({ type: 'start-relay' })
      await started
      // Cheap for the broker and the database while it runs: end offsets until the topic holds every event, then
      // the outbox until no row is pending (each is marked right after its batch's ack).
      let lastProgress = clockMs()
      let lastCount = -1
      for (;;) {
        const count = await endOffsets(topic)
        if (count >= totalEvents) break
        if (count !== lastCount) {
          lastCount = count
          lastProgress = clockMs()
        } else if (clockMs() - lastProgress > 60_000) {
          throw new Error(`relay stalled at ${count} of ${totalEvents} messages`)
        }
        await sleep(10)
      }
      while (await pending() > 0) await sleep(5)
      return clockMs() - startedMs
    })
    const cpu = await cpuSince(before, pgAdmin, node, database, broker)
    await node.stop()
    await probe.end()
    const verification = await verifyTopic(topic, expected)
    return { arm: 'relay', round, events: totalEvents, wallMs, cpu, verification, ...file === undefined ? {} : { profile: file } }
  } finally {
    await node.stop()
    await probe.end().catch(() => {})
    await dropScratchDatabase(url)
    await deleteTopics([topic, dlqTopic])
  }
}

async function rawThroughput(round: number, templateUrl: string, expected: Expected, pgAdmin: pg.Client, broker: BrokerInfo, warmTopic: string): Promise<ThroughputRun> {
  const topic = await createTopic('raw')
  const node = await startNode('raw', { KAFKA_TOPIC: topic, BENCH_WARM_TOPIC: warmTopic })
  try {
    const prepared = node.next<{ messages: number }>('prepared')
    node.send({ type: 'prepare', databaseUrl: templateUrl })
    if ((await prepared).messages !== totalEvents) throw new Error('raw node prepared the wrong number of messages')
    const before = await cpuSnapshot(pgAdmin, node, undefined, broker)
    const startedMs = clockMs()
    const done = node.next<{ ms: number }>('done')
    node.send({ type: 'go' })
    await done
    const wallMs = clockMs() - startedMs
    const cpu = await cpuSince(before, pgAdmin, node, undefined, broker)
    await node.stop()
    const verification = await verifyTopic(topic, expected)
    return { arm: 'raw', round, events: totalEvents, wallMs, cpu, verification }
  } finally {
    await node.stop()
    await deleteTopics([topic])
  }
}

interface ThroughputArmSummary {
  eventsPerSecond: number
  roundEventsPerSecond: number[]
  cpuUsPerEvent: { node: number, postgres: number, broker: number, bench: number, machine: number }
  /** Cores' worth of CPU used meanwhile by everything else on the machine (other processes, PostgreSQL's WAL writer…). */
  otherCores: number
  duplicates: number
  missing: number
  usersOutOfOrder: number
}

/** CPU the machine spent outside the arm's processes (node child, its PostgreSQL backends, the broker, this process). */
const otherMs = (cpu: CpuUse): number => cpu.machineMs - cpu.nodeMs - cpu.postgresMs - (Number.isNaN(cpu.brokerMs) ? 0 : cpu.brokerMs) - cpu.benchMs

function summarizeThroughput(runs: ThroughputRun[]): ThroughputArmSummary {
  const rate = (run: ThroughputRun): number => run.events / (run.wallMs / 1000)
  const events = runs.reduce((sum, run) => sum + run.events, 0)
  const perEvent = (ms: (cpu: CpuUse) => number): number => runs.reduce((sum, run) => sum + ms(run.cpu), 0) * 1000 / events
  return {
    eventsPerSecond: median(runs.map(rate)),
    roundEventsPerSecond: runs.map(rate),
    cpuUsPerEvent: {
      node: perEvent((cpu) => cpu.nodeMs),
      postgres: perEvent((cpu) => cpu.postgresMs),
      broker: perEvent((cpu) => cpu.brokerMs),
      bench: perEvent((cpu) => cpu.benchMs),
      machine: perEvent((cpu) => cpu.machineMs)
    },
    otherCores: Math.max(0, runs.reduce((sum, run) => sum + otherMs(run.cpu), 0)) / runs.reduce((sum, run) => sum + run.wallMs, 0),
    duplicates: runs.reduce((sum, run) => sum + run.verification.duplicates, 0),
    missing: runs.reduce((sum, run) => sum + run.verification.missing, 0),
    usersOutOfOrder: runs.reduce((sum, run) => sum + run.verification.usersOutOfOrder, 0)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Latency

interface Distribution {
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

function distribution(values: number[]): Distribution {
  const sorted = values.sort((a, b) => a - b)
  return {
    p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9),
    max: sorted.at(-1) ?? Number.NaN
  }
}

interface LatencyResult {
  arm: LatencyArm
  seconds: number
  measuredEvents: number
  /** Commit (or send start) → consumer: the headline. */
  toTopicMs: Distribution
  /** Scheduled arrival → consumer: includes the commit itself and any queueing before it. */
  fromArrivalMs: Distribution
  /** The commit statement (or the acknowledged send) alone. */
  writeMs: Distribution
  lost: number
  duplicates: number
  maxStartLagMs: number
  ticksStartedOver5MsLate: number
  maxConcurrentTicks: number
  cpuUsPerEvent: { node: number, postgres: number, broker: number }
  /** The same CPU as cores' worth over the load (warm-up and measurement) and the drain after it. */
  cpuCores: { node: number, postgres: number, broker: number, other: number }
  consumerReadyBeforeMeasuring: boolean
  profile?: string
}

async function latencyRun(arm: LatencyArm, pgAdmin: pg.Client, broker: BrokerInfo, warmTopic: string): Promise<LatencyResult> {
  const topic = await createTopic('latency')
  const dlqTopic = await createTopic('latency-dlq')
  let url: string | undefined
  let node: Node | undefined
  try {
    if (arm.kind === 'relay') {
      url = await createScratchDatabase('latency')
      const db = createPostgresDatabase({ url, poolSize: 1 })
      await migrate(db)
      await db.close()
      node = await startNode('relay', { DATABASE_URL: url, KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: dlqTopic, BENCH_WARM_TOPIC: warmTopic })
      const started = node.next('relay-started')
      node.send({ type: 'start-relay' })
      await started
    } else {
      node = await startNode('raw', { KAFKA_TOPIC: topic, BENCH_WARM_TOPIC: warmTopic })
    }
    const received = new Map<string, number>()
    let duplicates = 0
    let expectedIds: Set<string> | undefined
    let outstanding = Number.POSITIVE_INFINITY
    let firstReceiveMs = Number.POSITIVE_INFINITY
    const reader = readTopic(topic, (message) => {
      firstReceiveMs = Math.min(firstReceiveMs, message.atMs)
      if (received.has(message.eventId)) {
        duplicates++
        return
      }
      received.set(message.eventId, message.atMs)
      if (expectedIds?.has(message.eventId) === true) outstanding--
    }, () => outstanding <= 0, 30_000)
    const database = url === undefined ? undefined : databaseName(url)
    const warmupTicks = Math.round(WARMUP_SECONDS * 1000 / arm.intervalMs)
    const ticks = Math.round(latencySeconds * 1000 / arm.intervalMs)
    const loadPrepared = node.next('load-prepared')
    node.send({ type: 'prepare-load', intervalMs: arm.intervalMs, perTick: arm.perTick, warmupTicks, ticks, users: LATENCY_USERS, notify: arm.notify })
    await loadPrepared
    const before = await cpuSnapshot(pgAdmin, node, database, broker)
    const windowStartMs = clockMs()
    const loadNode = node
    const { result: report, file } = await profiled(node, `latency-${arm.kind}-${arm.notify ? 'notify' : 'poll'}-${arm.ratePerSecond}`, async () => {
      const done = loadNode.next<LoadReport>('load-done')
      loadNode.send({ type: 'run-load' })
      const loadReport = await done
      expectedIds = new Set(loadReport.records.flatMap((record) => record.ids))
      outstanding = [...expectedIds].filter((id) => !received.has(id)).length
      if (outstanding <= 0) reader.stop()
      const deadline = setTimeout(() => reader.stop(), 30_000)
      await reader.finished
      clearTimeout(deadline)
      return loadReport
    })
    const cpu = await cpuSince(before, pgAdmin, node, database, broker)
    const windowMs = clockMs() - windowStartMs
    const toTopic: number[] = []
    const fromArrival: number[] = []
    const write: number[] = []
    let lost = 0
    for (const record of report.records) {
      write.push(record.doneMs - record.startMs)
      for (const id of record.ids) {
        const atMs = received.get(id)
        if (atMs === undefined) {
          lost++
          continue
        }
        toTopic.push(atMs - (arm.kind === 'relay' ? record.doneMs : record.startMs))
        fromArrival.push(atMs - record.scheduledMs)
      }
    }
    const allEvents = (warmupTicks + ticks) * arm.perTick
    const firstMeasuredMs = report.records.reduce((min, record) => Math.min(min, record.scheduledMs), Number.POSITIVE_INFINITY)
    return {
      arm,
      seconds: latencySeconds,
      measuredEvents: report.records.length * arm.perTick,
      toTopicMs: distribution(toTopic),
      fromArrivalMs: distribution(fromArrival),
      writeMs: distribution(write),
      lost,
      duplicates,
      maxStartLagMs: report.maxStartLagMs,
      ticksStartedOver5MsLate: report.ticksStartedOver5MsLate,
      maxConcurrentTicks: report.maxConcurrentTicks,
      cpuUsPerEvent: { node: cpu.nodeMs * 1000 / allEvents, postgres: cpu.postgresMs * 1000 / allEvents, broker: cpu.brokerMs * 1000 / allEvents },
      cpuCores: { node: cpu.nodeMs / windowMs, postgres: cpu.postgresMs / windowMs, broker: cpu.brokerMs / windowMs, other: Math.max(0, otherMs(cpu)) / windowMs },
      consumerReadyBeforeMeasuring: firstReceiveMs < firstMeasuredMs,
      ...file === undefined ? {} : { profile: file }
    }
  } finally {
    await node?.stop()
    if (url !== undefined) await dropScratchDatabase(url)
    await deleteTopics([topic, dlqTopic])
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report

interface Environment extends Machine {
  kafka: string
  kafkaClient: string
  partitions: number
  events: number
  users: number
  rounds: number
  latencySeconds: number
  quick: boolean
  seed: number
  loadAverage: { start: number, end: number }
}

interface Results {
  environment: Environment
  totalSeconds: number
  reference: typeof REFERENCE
  targets: typeof TARGETS
  throughput?: {
    relay: ThroughputArmSummary
    raw: ThroughputArmSummary
    ratio: { median: number, min: number, max: number, perRound: number[] }
    runs: ThroughputRun[]
  }
  latency: LatencyResult[]
  verdicts: { name: string, met: boolean, detail: string }[]
}

function verdicts(results: Omit<Results, 'verdicts'>): Results['verdicts'] {
  const list: Results['verdicts'] = []
  const t = results.throughput
  if (t !== undefined) {
    list.push({ name: `≥ ${fmtInt(TARGETS.eventsPerSecond)} events/s`, met: t.relay.eventsPerSecond >= TARGETS.eventsPerSecond, detail: `${fmtInt(t.relay.eventsPerSecond)} events/s (median of ${t.relay.roundEventsPerSecond.length} rounds)` })
    list.push({ name: `≥ ${TARGETS.minRatio}× raw baseline`, met: t.ratio.median >= TARGETS.minRatio, detail: `${t.ratio.median.toFixed(2)}× (median of per-round ratios)` })
    const clean = t.relay.missing === 0 && t.raw.missing === 0 && t.relay.usersOutOfOrder === 0 && t.raw.usersOutOfOrder === 0
    list.push({ name: 'no loss, per-user order', met: clean, detail: `missing ${t.relay.missing}/${t.raw.missing}, users out of order ${t.relay.usersOutOfOrder}/${t.raw.usersOutOfOrder}, duplicates ${t.relay.duplicates}/${t.raw.duplicates} (relay/raw, all rounds)` })
  }
  const headline = results.latency.find((r) => r.arm.kind === 'relay' && r.arm.notify && r.arm.ratePerSecond === TARGETS.p99Rate)
  if (headline !== undefined) {
    list.push({ name: `commit→topic p99 ≤ ${TARGETS.p99Ms} ms at ${fmtInt(TARGETS.p99Rate)} events/s`, met: headline.toTopicMs.p99 <= TARGETS.p99Ms && headline.lost === 0, detail: `p99 ${fmtMs(headline.toTopicMs.p99)} ms with notify (same node)` })
  }
  const poll = results.latency.find((r) => r.arm.kind === 'relay' && !r.arm.notify && r.arm.ratePerSecond === TARGETS.p99Rate)
  if (poll !== undefined) {
    list.push({ name: `same, poll path (commit on another node)`, met: poll.toTopicMs.p99 <= TARGETS.p99Ms && poll.lost === 0, detail: `p99 ${fmtMs(poll.toTopicMs.p99)} ms without notify` })
  }
  return list
}

function renderSection(results: Results, notes: string): string {
  const env = results.environment
  const t = results.throughput
  const lines: string[] = []
  lines.push('## Kafka publishing', '')
  lines.push(`Generated by \`bench/kafka/run.ts\` on ${env.date.slice(0, 10)} (${env.quick ? 'quick run' : 'full run'}, ` +
    `${results.totalSeconds.toFixed(0)} s, seed ${env.seed}). Raw data: \`bench/results/kafka.json\`.`, '')
  lines.push('**Machine.**', '')
  lines.push(`- CPU: ${env.cpu}, ${env.cores} cores (relay, baseline producer, broker, PostgreSQL and the benchmark share them; nothing pinned); RAM ${env.ramGb} GiB`)
  lines.push(`- Node ${env.node}; PostgreSQL ${env.postgres} on 127.0.0.1 (` +
    Object.entries(env.postgresSettings).map(([name, value]) => `${name}=${value}`).join(', ') + ')')
  lines.push(`- Kafka ${env.kafka}: one KRaft node from \`scripts/kafka.sh\` on 127.0.0.1 (JVM -Xmx512m, SerialGC, 2 network and 2 I/O threads); ` +
    `client @platformatic/kafka ${env.kafkaClient}; every topic ${env.partitions} partitions, replication factor 1, no compression; both producers idempotent with \`acks=all\``)
  lines.push(`- Relay as deployed: ${OUTBOX_LANES} lanes, batches of ${DEFAULT_RELAY_OPTIONS.batchSize}, idle poll ${DEFAULT_RELAY_OPTIONS.idlePollMs} ms, DB_POOL_SIZE 10 (the default); no HTTP, no Redis`)
  const other = t === undefined ? '' : `; processes outside the benchmark used ${t.relay.otherCores.toFixed(2)} (relay arm) and ${t.raw.otherCores.toFixed(2)} (raw arm) of ${env.cores} cores on average during the throughput rounds (this includes PostgreSQL's WAL writer and checkpointer)`
  lines.push(`- Other load: 1-min load average ${env.loadAverage.start.toFixed(2)} at start, ${env.loadAverage.end.toFixed(2)} at end${other}`, '')
  lines.push('**Commands.**', '')
  lines.push('```sh')
  lines.push('bash scripts/kafka.sh up                 # the broker, once')
  lines.push('npm run bench:kafka                      # full run, ~3–4 min')
  lines.push('npm run bench:kafka -- --quick           # ~1 min')
  lines.push('# V8 CPU profile of the relay process of every relay arm (results and docs are then not written), then its top functions:')
  lines.push('node_modules/.bin/node bench/kafka/run.ts --rounds 2 --skip-latency --cpu-prof')
  lines.push('node_modules/.bin/node bench/healthkit/cpuprofile-top.ts bench/results/profiles/kafka-throughput-1-<time>.cpuprofile')
  lines.push("# other options: --rounds N --events N --users N --partitions N --latency-seconds N --skip-throughput --skip-latency --no-write --keep-db --node-options='<flags>' --idle-poll-ms N")
  lines.push('```', '')
  if (t !== undefined) {
    lines.push('**Throughput: draining a backlog.** ' +
      `${fmtInt(env.events)} events of ${fmtInt(env.users)} users (the HealthKit benchmark's sample mix, ${fmtInt(env.events / env.users)} events per user, so all ` +
      `${OUTBOX_LANES} lanes have work) are written to the outbox of a template database with the bridge's own \`upsertEventsWithOutbox\` (untimed). ` +
      'Each round copies that database (`CREATE DATABASE … TEMPLATE`) and runs both arms in shuffled order, each against a fresh topic. ' +
      '*Relay*: a child process running the real relay — `createOutboxRelay` with `createKafkaPublisher`, the app\'s config and pool, wired as ' +
      '`src/app.ts` wires them — warm (pool connections open, producer id obtained), timed from `start()` until the topic\'s end offsets reach N and ' +
      'no outbox row is pending (a row is marked only after its batch\'s ack). *Raw*: a child process with a bare `@platformatic/kafka` Producer ' +
      '(idempotent, acks=all, `stringSerializers`, the publisher\'s timeouts) sending the same messages — the same keys, values and headers, built ' +
      `by the bridge's \`eventMessage\` from the same outbox rows before the clock starts — in batches of ${DEFAULT_RELAY_OPTIONS.batchSize} per lane in id order, ` +
      `${OUTBOX_LANES} lanes sending concurrently, no database; timed until every send was acknowledged. One untimed raw run warms the broker first. ` +
      'Afterwards every topic is read back: missing events, duplicates and per-user order (first occurrences against commit order) are checked. ' +
      'CPU per event: utime+stime of the child, of the PostgreSQL backends of the arm\'s database, of the broker JVM and of the whole machine.', '')
    lines.push('| Arm | Events/s (median) | Per round | CPU µs/event: node / PG / broker / whole machine | Missing | Duplicates | Users out of order |')
    lines.push('|---|---:|---|---:|---:|---:|---:|')
    for (const [name, arm] of [['Relay: outbox → topic', t.relay], ['Raw producer, no outbox', t.raw]] as const) {
      const c = arm.cpuUsPerEvent
      lines.push(`| ${name} | **${fmtInt(arm.eventsPerSecond)}** | ${arm.roundEventsPerSecond.map(fmtInt).join(', ')} | ` +
        `${c.node.toFixed(1)} / ${c.postgres.toFixed(1)} / ${c.broker.toFixed(1)} / ${c.machine.toFixed(1)} | ${arm.missing} | ${arm.duplicates} | ${arm.usersOutOfOrder} |`)
    }
    lines.push('')
    lines.push(`Relay / raw: **${t.ratio.median.toFixed(2)}×** (median of per-round ratios; range ${t.ratio.min.toFixed(2)}–${t.ratio.max.toFixed(2)}). ` +
      `The reference system reported ${fmtInt(REFERENCE.eventsPerSecond)} msg/s; the relay here does ${(t.relay.eventsPerSecond / REFERENCE.eventsPerSecond).toFixed(0)}× that.`, '')
  }
  if (results.latency.length > 0) {
    lines.push('**Latency: commit → topic at a fixed arrival rate.** Open loop: a tick every 10 ms, scheduled by absolute time, never waiting ' +
      'for earlier ticks. A tick is one upload of one user (users rotate over 1,000), committed with `upsertEventsWithOutbox` (one autocommit ' +
      'statement: events upsert and outbox rows, what the HealthKit route does for an upload that fits one flush) on the relay process\'s own pool ' +
      'while the relay runs. With *notify* the committer calls `relay.notify()` after the commit, as the route does on the node that took the upload; ' +
      `without it the relay finds the rows only by its idle poll (${DEFAULT_RELAY_OPTIONS.idlePollMs} ms), as for an upload committed on another node. A consumer in ` +
      'the benchmark process reads the topic (fetch min 1 byte, long poll). Latency per event = receive time at the consumer − the moment the commit ' +
      'returned in the relay process, both CLOCK_MONOTONIC on this host, so it includes the consumer\'s fetch; *arrival → topic* also includes the commit ' +
      'itself. The raw arm is the floor of that measurement: the same rate of the same kind of messages sent by a bare producer, send start → consumer. ' +
      `${WARMUP_SECONDS} s warm-up (not counted), then ${env.latencySeconds} s measured. CPU over warm-up, measurement and drain, as cores and per event.`, '')
    lines.push('| Arm | Rate | Events | p50 | p90 | p99 | p99.9 | max | Arrival → topic p99 | Commit p50 / p99 | Lost / dup | CPU cores: node / PG / broker (µs/event) | Tick start lag max |')
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of results.latency) {
      const d = r.toTopicMs
      const cores = `${r.cpuCores.node.toFixed(2)} / ${r.cpuCores.postgres.toFixed(2)} / ${r.cpuCores.broker.toFixed(2)} ` +
        `(${fmtInt(r.cpuUsPerEvent.node)} / ${fmtInt(r.cpuUsPerEvent.postgres)} / ${fmtInt(r.cpuUsPerEvent.broker)})`
      lines.push(`| ${r.arm.name} | ${fmtInt(r.arm.ratePerSecond)}/s (${r.arm.perTick} per ${r.arm.intervalMs} ms) | ${fmtInt(r.measuredEvents)} | ` +
        `${fmtMs(d.p50)} ms | ${fmtMs(d.p90)} ms | **${fmtMs(d.p99)} ms** | ${fmtMs(d.p999)} ms | ${fmtMs(d.max)} ms | ${fmtMs(r.fromArrivalMs.p99)} ms | ` +
        `${r.arm.kind === 'raw' ? '— (send ' + fmtMs(r.writeMs.p50) + ' / ' + fmtMs(r.writeMs.p99) + ' ms)' : `${fmtMs(r.writeMs.p50)} / ${fmtMs(r.writeMs.p99)} ms`} | ` +
        `${r.lost} / ${r.duplicates} | ${cores} | ${fmtMs(r.maxStartLagMs)} ms |`)
    }
    lines.push('')
    const late = results.latency.filter((r) => !r.consumerReadyBeforeMeasuring)
    if (late.length > 0) lines.push(`Warning: the consumer had received nothing before the measured phase of: ${late.map((r) => r.arm.name).join('; ')}.`, '')
  }
  lines.push('**Targets.**', '')
  for (const v of results.verdicts) lines.push(`- ${v.met ? '✅' : '❌'} ${v.name}: ${v.detail}`)
  lines.push('')
  lines.push('**Caveats.** Relay, broker, PostgreSQL and load share 2 cores, so absolute figures drift ±10–15 % between runs (single rounds ' +
    'more); the per-round ratio is the steadier number. The broker has one replica, so `acks=all` waits for the leader\'s append only; with ' +
    'replication factor 3 each batch also waits for the followers. Throughput is the drain of a prepared backlog (full batches: the relay\'s best ' +
    'case), not a steady state with concurrent writers; the latency arms are that steady state, at rates far below the drain rate.', '')
  lines.push(notes)
  return lines.join('\n').trimEnd() + '\n'
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const runStarted = performance.now()
  const seed = Number.parseInt(randomBytes(4).toString('hex'), 16)
  const random = makeRandom(seed)
  const broker = brokerInfo()
  const kafkaClient = (JSON.parse(readFileSync(new URL('node_modules/@platformatic/kafka/package.json', ROOT), 'utf8')) as { version: string }).version
  const env: Environment = {
    ...await describeMachine(), kafka: broker.version, kafkaClient, partitions, events: totalEvents, users, rounds, latencySeconds, quick, seed,
    loadAverage: { start: loadAverage(), end: Number.NaN }
  }
  if (env.loadAverage.start > 1) log(`WARNING: load average ${env.loadAverage.start} before the run: other work on this machine will skew the figures`)
  log(`${env.cpu}, ${env.cores} cores, Node ${env.node}, PostgreSQL ${env.postgres}, Kafka ${env.kafka} (broker pid ${broker.pid ?? 'unknown'}) at ${BROKERS.join(',')}; ` +
    `${totalEvents} events, ${users} users, ${rounds} rounds, ${partitions} partitions${profiling ? ', PROFILING' : ''}`)
  await admin.metadata({ topics: [] })
  const warmTopic = await createTopic('warm-up')
  const pgAdmin = new pg.Client({ connectionString: ADMIN_URL })
  await pgAdmin.connect()
  const results: Omit<Results, 'verdicts'> = { environment: env, totalSeconds: 0, reference: REFERENCE, targets: TARGETS, latency: [] }
  try {
    if (!flags['skip-throughput']) {
      const templateUrl = await createScratchDatabase('template')
      const db = createPostgresDatabase({ url: templateUrl, poolSize: 2 })
      const prefillStarted = performance.now()
      try {
        await migrate(db)
        await prefillOutbox(db, users, totalEvents / users)
        await db.query('VACUUM ANALYZE outbox')
        await db.query('CHECKPOINT')
      } finally {
        await db.close()
      }
      log(`template outbox filled with ${totalEvents} events in ${((performance.now() - prefillStarted) / 1000).toFixed(1)} s`)
      const expected = await expectedOrder(templateUrl)
      const template = databaseName(templateUrl)
      // Untimed: warms the broker (JIT, page cache, log segments) before the first measured round.
      log('warm-up: one raw arm, not counted')
      await rawThroughput(0, templateUrl, expected, pgAdmin, broker, warmTopic)
      const runs: ThroughputRun[] = []
      for (let round = 1; round <= rounds; round++) {
        const order = shuffled(['relay', 'raw'] as const, random)
        const got: Partial<Record<'relay' | 'raw', ThroughputRun>> = {}
        for (const arm of order) {
          got[arm] = arm === 'relay'
            ? await relayThroughput(round, template, expected, pgAdmin, broker, warmTopic)
            : await rawThroughput(round, templateUrl, expected, pgAdmin, broker, warmTopic)
          runs.push(got[arm])
        }
        const rate = (run: ThroughputRun): string => fmtInt(run.events / (run.wallMs / 1000))
        const perEvent = (ms: number): string => (ms * 1000 / totalEvents).toFixed(1)
        const cpuLine = (run: ThroughputRun): string =>
          `node ${perEvent(run.cpu.nodeMs)}, pg ${perEvent(run.cpu.postgresMs)}, broker ${perEvent(run.cpu.brokerMs)}, machine ${perEvent(run.cpu.machineMs)}`
        const check = (run: ThroughputRun): string => `missing ${run.verification.missing}, dup ${run.verification.duplicates}, out of order ${run.verification.usersOutOfOrder}`
        log(`round ${round}/${rounds}: relay ${rate(got.relay!)}/s (${check(got.relay!)}), raw ${rate(got.raw!)}/s (${check(got.raw!)}) (${order.join(' → ')}); ` +
          `CPU µs/event relay: ${cpuLine(got.relay!)}; raw: ${cpuLine(got.raw!)}`)
      }
      const relayRuns = runs.filter((run) => run.arm === 'relay')
      const rawRuns = runs.filter((run) => run.arm === 'raw')
      const ratios = relayRuns.map((run) => {
        const raw = rawRuns.find((other) => other.round === run.round)!
        return raw.wallMs / run.wallMs
      })
      results.throughput = {
        relay: summarizeThroughput(relayRuns),
        raw: summarizeThroughput(rawRuns),
        ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), perRound: ratios },
        runs
      }
      await dropScratchDatabase(templateUrl)
    }
    if (!flags['skip-latency']) {
      for (const arm of shuffled(LATENCY_ARMS, random)) {
        log(`latency: ${arm.name} at ${arm.ratePerSecond}/s for ${latencySeconds} s`)
        const result = await latencyRun(arm, pgAdmin, broker, warmTopic)
        results.latency.push(result)
        log(`  → commit→topic p50 ${fmtMs(result.toTopicMs.p50)} p99 ${fmtMs(result.toTopicMs.p99)} max ${fmtMs(result.toTopicMs.max)} ms; ` +
          `commit p99 ${fmtMs(result.writeMs.p99)} ms; lost ${result.lost}, dup ${result.duplicates}; start lag max ${fmtMs(result.maxStartLagMs)} ms; ` +
          `CPU µs/event node ${result.cpuUsPerEvent.node.toFixed(1)}, pg ${result.cpuUsPerEvent.postgres.toFixed(1)}, broker ${result.cpuUsPerEvent.broker.toFixed(1)}`)
      }
      // Table order: as declared, not as run.
      results.latency.sort((a, b) => LATENCY_ARMS.indexOf(a.arm) - LATENCY_ARMS.indexOf(b.arm))
    }
  } finally {
    await pgAdmin.end()
  }
  results.totalSeconds = (performance.now() - runStarted) / 1000
  env.loadAverage.end = loadAverage()
  const final: Results = { ...results, verdicts: verdicts(results) }
  for (const v of final.verdicts) log(`${v.met ? 'ok  ' : 'MISS'} ${v.name}: ${v.detail}`)
  if (profiling) {
    log('profiles written; results and docs not written (profiling distorts timings)')
    return
  }
  if (flags['no-write'] || nodeOptions.length > 0 || flags['idle-poll-ms'] !== undefined) {
    log('--no-write or an experiment flag: results and docs not written')
    return
  }
  mkdirSync(new URL('bench/results/', ROOT), { recursive: true })
  writeFileSync(RESULTS_FILE, JSON.stringify(final, null, 2) + '\n')
  updateDocsSection('Kafka publishing', 'kafka', (notes) => renderSection(final, notes))
  log(`wrote ${RESULTS_FILE.pathname} and ${docsFile} in ${final.totalSeconds.toFixed(0)} s`)
}

async function cleanUp(): Promise<void> {
  await Promise.all([...liveNodes].map((node) => node.stop()))
  await deleteTopics([...createdTopics])
  await admin.close().catch(() => {})
  await dropScratchDatabases(flags['keep-db'], log)
}

await runBenchmark(main, cleanUp, log)
