/**
 * End to end: signed Oura notifications → durable receipts → the worker pool fetches each document from the
 * Oura simulator with the user's token → events + outbox rows committed with the receipt → (with --kafka) the
 * outbox relay publishes them and the broker acknowledges. Measures how many notifications per second the whole
 * path sustains on one node or several, the latency from receipt to stored events (and outbox row to published),
 * CPU per notification and each node's peak RSS, and checks accepted = done = stored = published, no duplicates.
 *
 *   node bench/webhooks/e2e.ts [--notifications N] [--users N] [--concurrency N] [--workers N] [--nodes N] [--redis]
 *                              [--kafka] [--brokers host:port,…] [--partitions N] [--no-write] [--keep-db] [--cpu-prof]
 *
 * --nodes N: N `bridge serve` processes on the same scratch database (and Redis with --redis), notifications sent
 * round-robin over them. --kafka: KAFKA_BROKERS set, a fresh topic pair per run; brokers from --brokers, else
 * BENCH_KAFKA_BROKERS, TEST_KAFKA_BROKERS or 127.0.0.1:9092 (`bash scripts/kafka.sh up`); --brokers alone implies
 * --kafka. Results: one file per variant in bench/results/ (see e2e-report.ts): webhooks-e2e.json (1 node, no
 * Kafka), webhooks-e2e-kafka.json, webhooks-e2e-3nodes-redis-kafka.json, … in general
 * webhooks-e2e[-<N>nodes][-redis][-kafka].json; the docs section shows every variant's latest file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { startOuraSimulator, type OuraNotificationInput, type OuraSimulator } from '../../src/simulators/oura/index.ts'
import type { OuraDataType } from '../../src/providers/oura/documents.ts'
import { DEPLOYED_NODE_FLAGS } from '../lib/node-flags.ts'
import { updateDocsSection } from '../lib/docs.ts'
import { describeMachine } from '../lib/environment.ts'
import { backendCpu, cpuDelta, cpuMs, ownCpuMs } from '../lib/proc.ts'
import { runBenchmark } from '../lib/run.ts'
import { createScratchDatabase, databaseName, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, percentile } from '../lib/stats.ts'
import { createBenchTopics, localBrokerPid, type BenchTopics } from './e2e-kafka.ts'
import { freePort } from '../lib/net.ts'
import {
  DOCS_MARKER, DOCS_TITLE, REFERENCE, RESULTS_DIR, TARGET_PER_SECOND, describeCorrectness, loadRows, renderSection, variantFile, variantLabel,
  type Correctness, type E2eResult, type LatencySummary, type Variant
} from './e2e-report.ts'

const { values: args } = parseArgs({
  options: {
    notifications: { type: 'string', default: '20000' },
    users: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '50' },
    workers: { type: 'string', default: '40' },
    nodes: { type: 'string', default: '1' },
    redis: { type: 'boolean', default: false },
    kafka: { type: 'boolean', default: false },
    brokers: { type: 'string' },
    /** Partitions of the run's topic; 16 as the relay has 16 lanes (the broker's default would be 3). */
    partitions: { type: 'string', default: '16' },
    'no-write': { type: 'boolean', default: false },
    'keep-db': { type: 'boolean', default: false },
    /** Writes a V8 CPU profile of each bridge to bench/results/profiles/ (summarize with bench/healthkit/cpuprofile-top.ts). */
    'cpu-prof': { type: 'boolean', default: false }
  }
})
const NOTIFICATIONS = Number(args.notifications)
const USERS = Number(args.users)
const CONCURRENCY = Number(args.concurrency)
const WORKERS = Number(args.workers)
const NODES = Number(args.nodes)
const PARTITIONS = Number(args.partitions)
if ([NOTIFICATIONS, USERS, CONCURRENCY, WORKERS, NODES, PARTITIONS].some((value) => !Number.isInteger(value) || value < 1)) {
  throw new Error('--notifications, --users, --concurrency, --workers, --nodes and --partitions must be positive integers')
}
const KAFKA = args.kafka || args.brokers !== undefined
const BROKERS = (args.brokers ?? process.env.BENCH_KAFKA_BROKERS ?? process.env.TEST_KAFKA_BROKERS ?? '127.0.0.1:9092')
  .split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
const VARIANT: Variant = { nodes: NODES, redis: args.redis, kafka: KAFKA }
const ADMIN_TOKEN = `bench_${randomBytes(24).toString('base64url')}`
/** Daily documents are one fetch each, a sleep three (the document and two heart-rate pages at most). */
const DATA_TYPES: readonly OuraDataType[] = (process.env.E2E_TYPES ?? 'daily_readiness,daily_activity,daily_sleep,daily_spo2,sleep').split(',') as OuraDataType[]
/** A wait that makes no progress for this long fails the run (a stuck worker or relay), in ms. */
const STALL_MS = 60_000
const log = (message: string): void => { process.stderr.write(`[webhooks-e2e ${(performance.now() / 1000).toFixed(1)}s] ${message}\n`) }

const bridges: ChildProcess[] = []
let sim: OuraSimulator | undefined
let topics: BenchTopics | undefined

/** Fails at once when a bridge process died (instead of waiting for a count that can no longer change). */
function assertBridgesAlive(): void {
  const dead = bridges.findIndex((bridge) => bridge.exitCode !== null || bridge.signalCode !== null)
  if (dead !== -1) throw new Error(`bridge node ${dead} exited (${bridges[dead]!.exitCode ?? bridges[dead]!.signalCode})`)
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    assertBridgesAlive()
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** Polls `remaining` every 50 ms until it is 0; fails when it did not move for STALL_MS. */
async function waitUntilZero(what: string, remaining: () => Promise<number>): Promise<void> {
  let last = -1
  let lastChangeMs = performance.now()
  for (;;) {
    const left = await remaining()
    if (left === 0) return
    assertBridgesAlive()
    if (left !== last) {
      last = left
      lastChangeMs = performance.now()
    } else if (performance.now() - lastChangeMs > STALL_MS) {
      throw new Error(`${what}: stuck at ${fmtInt(left)} for ${STALL_MS / 1000} s`)
    }
    await sleep(50)
  }
}

/** The connect flow as a user's app would drive it: admin call, the simulator's consent redirect, the callback. */
async function connect(baseUrl: string, userId: string, ouraUserId: string): Promise<void> {
  const start = await fetch(`${baseUrl}/v1/users/${userId}/connections/oura`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  const authorizeUrl = new URL((await start.json() as { authorize_url: string }).authorize_url)
  authorizeUrl.searchParams.set('sim_user_id', ouraUserId)
  const redirect = await fetch(authorizeUrl, { redirect: 'manual' })
  const location = new URL(redirect.headers.get('location')!)
  const callback = await fetch(`${baseUrl}${location.pathname}${location.search}`)
  if (callback.status !== 200) throw new Error(`connect failed: ${callback.status}`)
}

/** Peak resident set of a process so far (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? Number.NaN : Number(match[1]) / 1024
}

/** Sum of a counter's series (all label sets) in a Prometheus text exposition. */
function sumMetric(exposition: string, name: string): number {
  let total = 0
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue
    total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

/** What each node did, from its /metrics: notifications accepted, receipts worked, messages published. */
async function workPerNode(baseUrls: readonly string[]): Promise<E2eResult['perNode']> {
  return Promise.all(baseUrls.map(async (baseUrl) => {
    const exposition = await (await fetch(`${baseUrl}/metrics`)).text()
    return {
      accepted: sumMetric(exposition, 'webhook_events_total'),
      worked: sumMetric(exposition, 'webhook_process_duration_seconds_count'),
      published: sumMetric(exposition, 'kafka_messages_published_total')
    }
  }))
}

function summarize(sortedMs: readonly number[]): LatencySummary {
  return { p50: percentile(sortedMs, 50), p99: percentile(sortedMs, 99), max: sortedMs.at(-1) ?? 0 }
}

async function main(): Promise<void> {
  const machine = await describeMachine()
  if (NODES > 1 && !args.redis) log('note: several nodes without --redis: each keeps its own cache and dedup markers (production needs REDIS_URL)')
  if (KAFKA) {
    topics = await createBenchTopics(BROKERS, PARTITIONS)
    log(`Kafka ${BROKERS.join(',')}: topic ${topics.topic} (${PARTITIONS} partitions) and ${topics.dlqTopic}`)
  }
  const brokerPid = KAFKA ? localBrokerPid(BROKERS) : undefined
  if (KAFKA && brokerPid === undefined) log('note: the broker is not the one scripts/kafka.sh runs here; its CPU is not counted')
  const databaseUrl = await createScratchDatabase('webhooks_e2e')
  sim = await startOuraSimulator({ seed: 4242, clientId: 'bench-client', clientSecret: randomBytes(16).toString('hex') })
  const ouraUsers = Array.from({ length: USERS }, (_, i) => sim!.addUser({ userId: `oura-bench-${i}`, days: 14 }).personalInfo.id)
  const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()))
  const baseUrls = ports.map((port) => `http://127.0.0.1:${port}`)
  const sharedEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, HOST: '127.0.0.1',
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`, LOG_PSEUDONYM_KEY: randomBytes(32).toString('hex'),
    ADMIN_API_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
    OURA_CLIENT_ID: sim.clientId, OURA_CLIENT_SECRET: sim.clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: 'bench-vt',
    OURA_API_URL: sim.baseUrl, OURA_AUTHORIZE_URL: sim.authorizeUrl,
    // The simulator is the bottleneck we measure against, not Oura's real budget (16.7 requests/s per app).
    OURA_REQUESTS_PER_5_MIN: '1000000000',
    BACKFILL_DAYS: '0', RECONCILE_INTERVAL_MINUTES: '0', MAX_RECEIPT_BACKLOG: '10000000', MAX_CONCURRENT_WEBHOOKS: String(WORKERS),
    ...(args.redis ? { REDIS_URL: process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' } : {}),
    ...(topics === undefined ? {} : { KAFKA_BROKERS: BROKERS.join(','), KAFKA_TOPIC: topics.topic, KAFKA_DLQ_TOPIC: topics.dlqTopic })
  }
  const profile = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir=bench/results/profiles'] : []
  for (const [i, port] of ports.entries()) {
    bridges.push(spawn(process.execPath, [...DEPLOYED_NODE_FLAGS, ...profile, 'src/main.ts', 'serve'], {
      env: { ...sharedEnv, PORT: String(port), PUBLIC_BASE_URL: baseUrls[i]! }, stdio: ['ignore', 'ignore', 'inherit']
    }))
  }
  await Promise.all(baseUrls.map((baseUrl) =>
    waitUntil(`the bridge at ${baseUrl}`, async () => (await fetch(`${baseUrl}/healthz`).catch(() => undefined))?.ok === true, 60_000)))
  // Connections live in the database: connecting through node 0 serves every node.
  for (const [i, ouraUser] of ouraUsers.entries()) await connect(baseUrls[0]!, `bench-user-${i}`, ouraUser)
  log(`${variantLabel(VARIANT)}: ${NODES} bridge process${NODES === 1 ? '' : 'es'} up (${baseUrls.join(', ')}), ${USERS} users connected`)

  // Unique notifications: documents repeat, but each carries its own event_time (part of Oura's dedup key).
  const documents = ouraUsers.flatMap((user) => sim!.notificationsFor(user, 'update', DATA_TYPES))
  const baseMs = Date.now()
  const notifications: OuraNotificationInput[] = Array.from({ length: NOTIFICATIONS }, (_, i) => ({
    ...documents[i % documents.length]!, event_time: new Date(baseMs + i).toISOString()
  }))
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  const scalar = async (sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql)).rows[0]?.n ?? 0)

  log(`sending ${fmtInt(NOTIFICATIONS)} notifications at concurrency ${CONCURRENCY}, round-robin over ${NODES} node${NODES === 1 ? '' : 's'} (${documents.length} distinct documents)`)
  const pids = bridges.map((bridge) => bridge.pid!)
  const bridgeCpuBefore = pids.map(cpuMs)
  const pgCpuBefore = await backendCpu(admin, databaseName(databaseUrl))
  const brokerCpuBefore = brokerPid === undefined ? 0 : cpuMs(brokerPid)
  const ownCpuBefore = ownCpuMs()
  const startedMs = performance.now()
  const answers = { accepted: 0, notAccepted: 0, refused: 0 }
  const refusedSamples: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, NOTIFICATIONS) }, async () => {
    while (next < NOTIFICATIONS) {
      const index = next++
      const delivery = await sim!.sendNotification(notifications[index]!, { to: `${baseUrls[index % NODES]!}/webhooks/oura` })
      if (delivery.status !== 200) {
        answers.refused++
        if (refusedSamples.length < 5) refusedSamples.push(`${delivery.status} ${delivery.error ?? delivery.responseBody.slice(0, 200)}`)
      } else if ((JSON.parse(delivery.responseBody) as { status?: string }).status === 'accepted') {
        answers.accepted++
      } else {
        answers.notAccepted++
      }
    }
  }))
  const sentMs = performance.now() - startedMs
  if (refusedSamples.length > 0) log(`refused, e.g. ${refusedSamples.join(' | ')}`)
  await waitUntilZero('receipts to be worked off', () => scalar("SELECT count(*)::text AS n FROM webhook_receipts WHERE status = 'pending'"))
  const storedMs = performance.now() - startedMs
  let publishedMs: number | null = null
  if (KAFKA) {
    await waitUntilZero('the outbox to be published', () =>
      scalar('SELECT count(*)::text AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL'))
    publishedMs = performance.now() - startedMs
  }
  const bridgeCpu = pids.reduce((sum, pid, i) => sum + cpuMs(pid) - bridgeCpuBefore[i]!, 0)
  const pgCpu = cpuDelta(pgCpuBefore, await backendCpu(admin, databaseName(databaseUrl)))
  const brokerCpu = brokerPid === undefined ? null : cpuMs(brokerPid) - brokerCpuBefore
  const loadCpu = ownCpuMs() - ownCpuBefore
  const peakRss = pids.map(peakRssMiB)
  const perNode = await workPerNode(baseUrls)

  const { rows: receiptRows } = await db.query<{ status: string, n: string }>('SELECT status, count(*)::text AS n FROM webhook_receipts GROUP BY status')
  const receiptsDone = Number(receiptRows.find((row) => row.status === 'done')?.n ?? 0)
  const receiptsNotDone = receiptRows.filter((row) => row.status !== 'done').reduce((sum, row) => sum + Number(row.n), 0)
  const { rows: latencyRows } = await db.query<{ ms: number }>(
    "SELECT extract(epoch FROM finished_at - received_at) * 1000 AS ms FROM webhook_receipts WHERE status = 'done' ORDER BY 1")
  const latencyMs = summarize(latencyRows.map((row) => Number(row.ms)))
  const { rows: stored } = await db.query<{ records: string, events: string }>(
    "SELECT count(DISTINCT source_record_id) FILTER (WHERE context <> '')::text AS records, count(*)::text AS events FROM events")
  const storedRecords = Number(stored[0]?.records ?? 0)
  const events = Number(stored[0]?.events ?? 0)
  const distinctDocuments = new Set(notifications.map((n) => n.object_id)).size
  const outboxRows = await scalar('SELECT count(*)::text AS n FROM outbox')
  const eventsWithoutOutbox = await scalar('SELECT count(*)::text AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.event_id)')
  let publishLatencyMs: LatencySummary | null = null
  let outboxUnpublished: number | null = null
  let outboxDeadLettered: number | null = null
  let topicCheck: Correctness['topic'] = null
  let dlqRecords: number | null = null
  if (topics !== undefined) {
    outboxUnpublished = await scalar('SELECT count(*)::text AS n FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL')
    outboxDeadLettered = await scalar('SELECT count(*)::text AS n FROM outbox WHERE dead_lettered_at IS NOT NULL')
    const { rows: publishRows } = await db.query<{ ms: number }>(
      'SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms FROM outbox WHERE published_at IS NOT NULL ORDER BY 1')
    publishLatencyMs = summarize(publishRows.map((row) => Number(row.ms)))
    const { rows: idRows } = await db.query<{ event_id: string }>('SELECT event_id::text AS event_id FROM outbox WHERE dead_lettered_at IS NULL')
    log(`reading ${topics.topic} back`)
    topicCheck = await topics.check(idRows.map((row) => row.event_id))
    dlqRecords = await topics.dlqRecords()
  }
  await db.end()
  await admin.end()

  const correctness: Correctness = {
    passed: false, ...answers, receiptsDone, receiptsNotDone, storedRecords, distinctDocuments, events, outboxRows, eventsWithoutOutbox,
    outboxUnpublished, outboxDeadLettered, topic: topicCheck, dlqRecords
  }
  correctness.passed = answers.refused === 0 && answers.notAccepted === 0 && answers.accepted === NOTIFICATIONS &&
    receiptsDone === NOTIFICATIONS && receiptsNotDone === 0 && storedRecords === distinctDocuments && eventsWithoutOutbox === 0 &&
    (topicCheck === null || (outboxUnpublished === 0 && outboxDeadLettered === 0 && dlqRecords === 0 && topicCheck.read === topicCheck.records &&
      topicCheck.missing === 0 && topicCheck.duplicates === 0 && topicCheck.unexpected === 0 && topicCheck.distinctEventIds === events))

  const endMs = publishedMs ?? storedMs
  const endToEndPerSecond = receiptsDone / (endMs / 1000)
  const eventsPerNotification = events / NOTIFICATIONS
  const result: E2eResult = {
    machine, file: variantFile(VARIANT), variant: VARIANT, notifications: NOTIFICATIONS, users: USERS, concurrency: CONCURRENCY, workers: WORKERS,
    kafka: KAFKA ? { brokers: BROKERS, partitions: PARTITIONS, brokerCpuMeasured: brokerPid !== undefined } : null,
    intakePerSecond: NOTIFICATIONS / (sentMs / 1000),
    storedPerSecond: receiptsDone / (storedMs / 1000),
    endToEndPerSecond,
    endToEndPerMinute: endToEndPerSecond * 60,
    endToEndPerSecondPerCore: endToEndPerSecond / os.availableParallelism(),
    eventsPerNotification,
    eventsPerSecond: events / (endMs / 1000),
    eventsPerDay: eventsPerNotification * endToEndPerSecond * 86_400,
    notificationsPerDay: endToEndPerSecond * 86_400,
    sentMs, storedMs, publishedMs, latencyMs, publishLatencyMs,
    cpuUsPerNotification: {
      bridge: bridgeCpu * 1000 / NOTIFICATIONS, postgres: pgCpu * 1000 / NOTIFICATIONS, simulatorAndSender: loadCpu * 1000 / NOTIFICATIONS,
      broker: brokerCpu === null ? null : brokerCpu * 1000 / NOTIFICATIONS
    },
    peakRssMiB: peakRss,
    perNode,
    simulatorRequests: sim.requestCount(),
    correctness
  }
  report(result)
  if (!correctness.passed) throw new Error(`correctness: ${describeCorrectness(correctness, KAFKA)}`)
  if (args['no-write']) return
  writeFileSync(new URL(result.file, RESULTS_DIR), `${JSON.stringify(result, null, 2)}\n`)
  updateDocsSection(DOCS_TITLE, DOCS_MARKER, (notes) => renderSection(loadRows(), result, notes))
  log(`wrote bench/results/${result.file} and the "${DOCS_TITLE}" section of docs/benchmarks.md`)
}

function report(r: E2eResult): void {
  const cpu = r.cpuUsPerNotification
  const reference = r.variant.nodes === 1 ? REFERENCE.perMinuteOneNode : r.variant.nodes === 3 ? REFERENCE.perMinuteThreeNodes : undefined
  log(`${variantLabel(r.variant)}, ${fmtInt(r.notifications)} notifications:`)
  log(`  intake ${fmtInt(r.intakePerSecond)}/s; stored ${fmtInt(r.storedPerSecond)}/s (${(r.storedMs / 1000).toFixed(1)} s)` +
    (r.publishedMs === null ? '' : `; published ${fmtInt(r.endToEndPerSecond)}/s (${(r.publishedMs / 1000).toFixed(1)} s)`))
  log(`  end to end ${fmtInt(r.endToEndPerSecond)}/s = ${fmtInt(r.endToEndPerMinute)}/min (target ≥ ${fmtInt(TARGET_PER_SECOND)}/s ${r.endToEndPerSecond >= TARGET_PER_SECOND ? 'met' : 'missed'}` +
    `${reference === undefined ? '' : `; reference ${fmtInt(reference)}/min → ×${(r.endToEndPerMinute / reference).toFixed(1)}`}), ` +
    `${fmtInt(r.endToEndPerSecondPerCore)}/s per core (${os.availableParallelism()} cores shared by everything)`)
  log(`  events ${fmtInt(r.eventsPerSecond)}/s (${r.eventsPerNotification.toFixed(2)} per notification) → ${(r.eventsPerDay / 1e6).toFixed(1)} M events/day, ` +
    `${(r.notificationsPerDay / 1e6).toFixed(1)} M webhooks/day${r.variant.nodes === 3 ? ` (reference 9.7 M events/day at ~1 event per webhook)` : ''}`)
  log(`  receipt→stored p50 ${fmtMs(r.latencyMs.p50)} ms p99 ${fmtMs(r.latencyMs.p99)} ms` +
    (r.publishLatencyMs === null ? '' : `; outbox write→published p50 ${fmtMs(r.publishLatencyMs.p50)} ms p99 ${fmtMs(r.publishLatencyMs.p99)} ms`))
  log(`  CPU per notification: bridge ${fmtInt(cpu.bridge)} µs, PostgreSQL ${fmtInt(cpu.postgres)} µs, simulator + sender ${fmtInt(cpu.simulatorAndSender)} µs` +
    (cpu.broker === null ? '' : `, broker ${fmtInt(cpu.broker)} µs`))
  log(`  peak RSS per node: ${r.peakRssMiB.map((mib) => `${fmtInt(mib)} MiB`).join(', ')}; simulator requests ${fmtInt(r.simulatorRequests)}`)
  log(`  per node, accepted / receipts worked / published: ${r.perNode.map((node) => `${fmtInt(node.accepted)} / ${fmtInt(node.worked)} / ${fmtInt(node.published)}`).join(' · ')}`)
  log(`  correctness: ${describeCorrectness(r.correctness, r.variant.kafka)}` +
    (r.correctness.topic === null ? '' : ` (topic: ${fmtInt(r.correctness.topic.records)} records, ${fmtInt(r.correctness.topic.read)} read)`))
}

await runBenchmark(main, async () => {
  await Promise.all(bridges.map(async (bridge) => {
    if (bridge.exitCode !== null || bridge.signalCode !== null) return
    const exited = new Promise((resolve) => bridge.once('exit', resolve))
    bridge.kill('SIGTERM')
    await exited
  }))
  await sim?.close()
  await topics?.close()
  await dropScratchDatabases(args['keep-db'], log)
}, log)
