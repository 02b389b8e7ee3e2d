/**
 * End to end: signed Oura notifications → durable receipts → the worker pool fetches each document from the
 * Oura simulator with the user's token → events + outbox rows committed with the receipt. Measures how many
 * notifications per second the whole path sustains on one node, and the latency from receipt to stored events.
 *
 *   node bench/webhooks/e2e.ts [--notifications N] [--users N] [--concurrency N] [--redis] [--no-write]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { startOuraSimulator, type OuraNotificationInput, type OuraSimulator } from '../../src/simulators/oura/index.ts'
import type { OuraDataType } from '../../src/providers/oura/documents.ts'
import { updateDocsSection } from '../lib/docs.ts'
import { describeMachine } from '../lib/environment.ts'
import { backendCpu, cpuDelta, cpuMs, ownCpuMs } from '../lib/proc.ts'
import { runBenchmark } from '../lib/run.ts'
import { createScratchDatabase, databaseName, dropScratchDatabases } from '../lib/scratch-db.ts'
import { fmtInt, fmtMs, percentile } from '../lib/stats.ts'

const { values: args } = parseArgs({
  options: {
    notifications: { type: 'string', default: '20000' },
    users: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '50' },
    workers: { type: 'string', default: '40' },
    redis: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'keep-db': { type: 'boolean', default: false },
    /** Writes a V8 CPU profile of the bridge to bench/results/profiles/ (summarize with bench/healthkit/cpuprofile-top.ts). */
    'cpu-prof': { type: 'boolean', default: false }
  }
})
const NOTIFICATIONS = Number(args.notifications)
const USERS = Number(args.users)
const CONCURRENCY = Number(args.concurrency)
const WORKERS = Number(args.workers)
const ADMIN_TOKEN = `bench_${randomBytes(24).toString('base64url')}`
/** Daily documents are one fetch each, a sleep three (the document and two heart-rate pages at most). */
const DATA_TYPES: readonly OuraDataType[] = (process.env.E2E_TYPES ?? 'daily_readiness,daily_activity,daily_sleep,daily_spo2,sleep').split(',') as OuraDataType[]
const log = (message: string): void => { process.stderr.write(`[webhooks-e2e] ${message}\n`) }

let bridge: ChildProcess | undefined
let sim: OuraSimulator | undefined

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
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

async function main(): Promise<void> {
  const machine = await describeMachine()
  const databaseUrl = await createScratchDatabase('webhooks_e2e')
  sim = await startOuraSimulator({ seed: 4242, clientId: 'bench-client', clientSecret: randomBytes(16).toString('hex') })
  const ouraUsers = Array.from({ length: USERS }, (_, i) => sim!.addUser({ userId: `oura-bench-${i}`, days: 14 }).personalInfo.id)
  const port = await freePort()
  const baseUrl = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), PUBLIC_BASE_URL: baseUrl,
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`, LOG_PSEUDONYM_KEY: randomBytes(32).toString('hex'),
    ADMIN_API_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
    OURA_CLIENT_ID: sim.clientId, OURA_CLIENT_SECRET: sim.clientSecret, OURA_WEBHOOK_VERIFICATION_TOKEN: 'bench-vt',
    OURA_API_URL: sim.baseUrl, OURA_AUTHORIZE_URL: sim.authorizeUrl,
    // The simulator is the bottleneck we measure against, not Oura's real budget (16.7 requests/s per app).
    OURA_REQUESTS_PER_5_MIN: '1000000000',
    BACKFILL_DAYS: '0', RECONCILE_INTERVAL_MINUTES: '0', MAX_RECEIPT_BACKLOG: '10000000', MAX_CONCURRENT_WEBHOOKS: String(WORKERS),
    ...(args.redis ? { REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' } : {})
  }
  const profile = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir=bench/results/profiles'] : []
  bridge = spawn(process.execPath, [...profile, 'src/main.ts', 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  await waitUntil('the bridge', async () => (await fetch(`${baseUrl}/healthz`).catch(() => undefined))?.ok === true, 60_000)
  for (const [i, ouraUser] of ouraUsers.entries()) await connect(baseUrl, `bench-user-${i}`, ouraUser)
  log(`bridge up (${baseUrl}), ${USERS} users connected`)

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
  const count = async (where: string): Promise<number> =>
    Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM webhook_receipts WHERE ${where}`)).rows[0]?.n ?? 0)

  log(`sending ${fmtInt(NOTIFICATIONS)} notifications at concurrency ${CONCURRENCY} (${documents.length} distinct documents)`)
  const bridgeCpuBefore = cpuMs(bridge.pid!)
  const pgCpuBefore = await backendCpu(admin, databaseName(databaseUrl))
  const ownCpuBefore = ownCpuMs()
  const startedMs = performance.now()
  const deliveries = await sim.emit(notifications, { to: `${baseUrl}/webhooks/oura`, concurrency: CONCURRENCY })
  const sentMs = performance.now() - startedMs
  const refused = deliveries.filter((delivery) => delivery.status !== 200).length
  await waitUntil('the receipts to be worked off', async () => await count("status = 'pending'") === 0, 600_000)
  const doneMs = performance.now() - startedMs
  const bridgeCpu = cpuMs(bridge.pid!) - bridgeCpuBefore
  const pgCpu = cpuDelta(pgCpuBefore, await backendCpu(admin, databaseName(databaseUrl)))
  const loadCpu = ownCpuMs() - ownCpuBefore

  const done = await count("status = 'done'")
  const { rows: latencyRows } = await db.query<{ ms: number }>(
    "SELECT extract(epoch FROM finished_at - received_at) * 1000 AS ms FROM webhook_receipts WHERE status = 'done' ORDER BY 1")
  const latencies = latencyRows.map((row) => Number(row.ms))
  const { rows: stored } = await db.query<{ records: string, events: string }>(
    "SELECT count(DISTINCT source_record_id) FILTER (WHERE context <> '')::text AS records, count(*)::text AS events FROM events")
  const distinctDocuments = new Set(notifications.map((n) => n.object_id)).size
  const { rows: outbox } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM outbox')
  await db.end()
  await admin.end()

  const result = {
    machine, notifications: NOTIFICATIONS, users: USERS, concurrency: CONCURRENCY, workers: WORKERS, redis: args.redis,
    intakePerSecond: NOTIFICATIONS / (sentMs / 1000),
    endToEndPerSecond: done / (doneMs / 1000),
    sentMs, doneMs, refused, done,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) ?? 0 },
    cpuUsPerNotification: { bridge: bridgeCpu * 1000 / NOTIFICATIONS, postgres: pgCpu * 1000 / NOTIFICATIONS, simulatorAndSender: loadCpu * 1000 / NOTIFICATIONS },
    simulatorRequests: sim.requestCount(),
    storedRecords: Number(stored[0]?.records ?? 0), distinctDocuments, events: Number(stored[0]?.events ?? 0), outboxRows: Number(outbox[0]?.n ?? 0)
  }
  log(`intake ${fmtInt(result.intakePerSecond)}/s, end to end ${fmtInt(result.endToEndPerSecond)}/s, receipt→stored p50 ${fmtMs(result.latencyMs.p50)} ms p99 ${fmtMs(result.latencyMs.p99)} ms`)
  log(`CPU per notification: bridge ${fmtInt(result.cpuUsPerNotification.bridge)} µs, PostgreSQL ${fmtInt(result.cpuUsPerNotification.postgres)} µs, simulator + sender ${fmtInt(result.cpuUsPerNotification.simulatorAndSender)} µs`)
  if (refused > 0 || done !== NOTIFICATIONS || result.storedRecords !== distinctDocuments) {
    throw new Error(`correctness: ${refused} refused, ${done}/${NOTIFICATIONS} done, ${result.storedRecords}/${distinctDocuments} documents stored`)
  }
  if (args['no-write']) return
  writeFileSync(new URL('../results/webhooks-e2e.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`)
  updateDocsSection('Webhooks end to end (Oura)', 'webhooks-e2e', (notes) => render(result, notes))
}

function render(r: {
  machine: Awaited<ReturnType<typeof describeMachine>>, notifications: number, users: number, concurrency: number, workers: number, redis: boolean,
  intakePerSecond: number, endToEndPerSecond: number, doneMs: number, latencyMs: { p50: number, p99: number, max: number },
  cpuUsPerNotification: { bridge: number, postgres: number, simulatorAndSender: number }, simulatorRequests: number,
  storedRecords: number, distinctDocuments: number, events: number, outboxRows: number
}, notes: string): string {
  const target = r.endToEndPerSecond >= 3000 ? '✅' : '❌'
  return `## Webhooks end to end (Oura)

Generated by \`bench/webhooks/e2e.ts\` on ${r.machine.date.slice(0, 10)}: ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, PostgreSQL ${r.machine.postgres}. Raw data: \`bench/results/webhooks-e2e.json\`.

\`\`\`sh
npm run bench:webhooks:e2e                       # ${fmtInt(r.notifications)} notifications, ${r.users} users, concurrency ${r.concurrency}
node bench/webhooks/e2e.ts --notifications 5000 --no-write    # quick check
\`\`\`

**Method.** One \`bridge serve\` process on a scratch PostgreSQL database (${r.redis ? 'with Redis' : 'in-process cache'}, no Kafka: events stay in the outbox), ${r.workers} workers (\`MAX_CONCURRENT_WEBHOOKS\`), the Oura request budget lifted (\`OURA_REQUESTS_PER_5_MIN\`; Oura's real 5,000 per 5 minutes would cap one app at 16.7 fetches/s). The Oura simulator runs in the benchmark process with ${r.users} users connected through the real OAuth flow; it signs and sends ${fmtInt(r.notifications)} \`update\` notifications (daily readiness, activity, sleep, SpO₂ and sleep periods; a sleep also fetches its heart-rate rows) at ${r.concurrency} in flight, and serves every fetch. End to end is notifications per second from the first send until the last receipt is done (its events and outbox rows committed); latency is \`finished_at − received_at\` of each receipt. All of it shares 2 cores: simulator, sender, bridge and PostgreSQL.

| Measure | Result |
|---|---:|
| Intake while the worker pool runs | ${fmtInt(r.intakePerSecond)} notifications/s |
| **End to end** (target ≥ 3,000/s ${target}) | **${fmtInt(r.endToEndPerSecond)} notifications/s** (${fmtInt(r.notifications)} in ${(r.doneMs / 1000).toFixed(1)} s) |
| Receipt → events stored, p50 / p99 / max | ${fmtMs(r.latencyMs.p50)} / ${fmtMs(r.latencyMs.p99)} / ${fmtMs(r.latencyMs.max)} ms |
| CPU per notification: bridge / PostgreSQL / simulator + sender | ${fmtInt(r.cpuUsPerNotification.bridge)} / ${fmtInt(r.cpuUsPerNotification.postgres)} / ${fmtInt(r.cpuUsPerNotification.simulatorAndSender)} µs |
| Requests served by the simulator | ${fmtInt(r.simulatorRequests)} |
| Correctness | every notification answered 200 and its receipt \`done\`; ${fmtInt(r.storedRecords)} of ${fmtInt(r.distinctDocuments)} documents stored (${fmtInt(r.events)} events, ${fmtInt(r.outboxRows)} outbox rows) |

The latency is a queueing figure: the sender offers notifications faster than the workers finish them, so receipts wait in the table; under a rate below the end-to-end throughput it is the processing time alone.

${notes}
`
}

await runBenchmark(main, async () => {
  if (bridge !== undefined && bridge.exitCode === null) {
    const exited = new Promise((resolve) => bridge!.once('exit', resolve))
    bridge.kill('SIGTERM')
    await exited
  }
  await sim?.close()
  await dropScratchDatabases(args['keep-db'], log)
}, log)
