/**
 * Results of the end-to-end webhook benchmark (bench/webhooks/e2e.ts): one JSON file per variant in bench/results/,
 * and the "Webhooks end to end (Oura)" section of docs/benchmarks.md, which shows every variant's latest run.
 *
 * File names (bench/results/): `webhooks-e2e[-<N>nodes][-redis][-kafka].json`, e.g.
 *   webhooks-e2e.json                      1 node, in-process cache, no Kafka (the default run)
 *   webhooks-e2e-kafka.json                1 node, Kafka on
 *   webhooks-e2e-3nodes-redis-kafka.json   3 nodes, Redis, Kafka on
 * Files written before the variants existed (no `nodes`/`kafka` fields) read as 1 node without Kafka.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { Machine } from '../lib/environment.ts'
import { fmtInt, fmtMs } from '../lib/stats.ts'
import type { TopicCheck } from './e2e-kafka.ts'

export const RESULTS_DIR = new URL('../results/', import.meta.url)
export const DOCS_TITLE = 'Webhooks end to end (Oura)'
export const DOCS_MARKER = 'webhooks-e2e'

/** The reference system's figures, printed next to ours. */
export const REFERENCE = {
  perMinuteOneNode: 2400,
  perMinuteThreeNodes: 6800,
  eventsPerDayThreeNodes: 9_700_000
}
/** Issue #6: end to end, in notifications per second. */
export const TARGET_PER_SECOND = 3000

export interface Variant {
  nodes: number
  redis: boolean
  kafka: boolean
}

export interface LatencySummary {
  p50: number
  p99: number
  max: number
}

export interface Correctness {
  /** Every check below held. */
  passed: boolean
  /** Notifications answered 200 `{"status":"accepted"}`. */
  accepted: number
  /** Answered anything but 200 (or not at all). */
  refused: number
  /** Answered 200 but not `accepted` (`duplicate`, `ignored`): none expected, every notification is new. */
  notAccepted: number
  receiptsDone: number
  /** Receipts in any other state at the end (pending, dead, …). */
  receiptsNotDone: number
  storedRecords: number
  distinctDocuments: number
  /** Rows in `events`. */
  events: number
  outboxRows: number
  /** Events without an outbox row (every stored event must be announced). */
  eventsWithoutOutbox: number
  /** Kafka only: outbox rows not yet published, dead-lettered rows, and the topic read back. */
  outboxUnpublished: number | null
  outboxDeadLettered: number | null
  topic: TopicCheck | null
  dlqRecords: number | null
}

export interface E2eResult {
  machine: Machine
  file: string
  variant: Variant
  notifications: number
  users: number
  concurrency: number
  /** MAX_CONCURRENT_WEBHOOKS per node. */
  workers: number
  kafka: { brokers: string[], partitions: number, brokerCpuMeasured: boolean } | null
  intakePerSecond: number
  /** Notifications per second until the last receipt was done (events and outbox rows committed). */
  storedPerSecond: number
  /** Until published with Kafka on, else until stored: the headline figure. */
  endToEndPerSecond: number
  endToEndPerMinute: number
  /** endToEndPerSecond / the machine's cores (os.availableParallelism()); the nodes share them. */
  endToEndPerSecondPerCore: number
  /** Events stored per notification, as measured in this run. */
  eventsPerNotification: number
  eventsPerSecond: number
  /** eventsPerNotification × endToEndPerSecond × 86,400. */
  eventsPerDay: number
  /** endToEndPerSecond × 86,400: the reference counts one event per webhook. */
  notificationsPerDay: number
  sentMs: number
  storedMs: number
  publishedMs: number | null
  /** Receipt `finished_at − received_at`. */
  latencyMs: LatencySummary
  /** Outbox `published_at − created_at` (the commit's transaction start), Kafka only. */
  publishLatencyMs: LatencySummary | null
  cpuUsPerNotification: { bridge: number, postgres: number, simulatorAndSender: number, broker: number | null }
  /** VmHWM of each bridge process at the end of the run, MiB. */
  peakRssMiB: number[]
  /** From each node's /metrics: notifications accepted, receipts worked, messages published (Kafka). */
  perNode: Array<{ accepted: number, worked: number, published: number }>
  simulatorRequests: number
  correctness: Correctness
}

export function variantFile(variant: Variant): string {
  return `webhooks-e2e${variant.nodes > 1 ? `-${variant.nodes}nodes` : ''}${variant.redis ? '-redis' : ''}${variant.kafka ? '-kafka' : ''}.json`
}

export function variantLabel(variant: Variant): string {
  return [
    variant.nodes === 1 ? '1 node' : `${variant.nodes} nodes`,
    variant.redis ? 'Redis' : 'in-process cache',
    variant.kafka ? 'Kafka' : 'no Kafka'
  ].join(', ')
}

/** A results file as rendered; fields an older file lacks are derived or left undefined. */
interface Row {
  file: string
  date: string
  variant: Variant
  notifications: number
  cores: number
  intakePerSecond: number
  endToEndPerSecond: number
  eventsPerNotification: number
  latencyMs: LatencySummary
  publishLatencyMs: LatencySummary | null
  cpu: { bridge: number, postgres: number, simulatorAndSender: number, broker: number | null }
  peakRssMiB: number[]
  perNode: E2eResult['perNode']
  correctness: string
}

/** Reads every variant's results file (the one just written included) for the docs table. */
export function loadRows(): Row[] {
  const files = readdirSync(RESULTS_DIR).filter((name) => /^webhooks-e2e(-[a-z0-9]+)*\.json$/.test(name))
  const rows = files.map((file) => toRow(file, JSON.parse(readFileSync(new URL(file, RESULTS_DIR), 'utf8')) as Record<string, unknown>))
  const key = (row: Row): number => row.variant.nodes * 4 + (row.variant.redis ? 2 : 0) + (row.variant.kafka ? 1 : 0)
  return rows.sort((a, b) => key(a) - key(b))
}

function toRow(file: string, raw: Record<string, unknown>): Row {
  if ('variant' in raw) {
    const r = raw as unknown as E2eResult
    return {
      file, date: r.machine.date, variant: r.variant, notifications: r.notifications, cores: r.machine.cores,
      intakePerSecond: r.intakePerSecond, endToEndPerSecond: r.endToEndPerSecond, eventsPerNotification: r.eventsPerNotification,
      latencyMs: r.latencyMs, publishLatencyMs: r.publishLatencyMs, cpu: r.cpuUsPerNotification, peakRssMiB: r.peakRssMiB, perNode: r.perNode,
      correctness: describeCorrectness(r.correctness, r.variant.kafka)
    }
  }
  // The single-variant format (1 node, no Kafka) of the first version of this benchmark.
  const old = raw as {
    machine: Machine, notifications: number, redis: boolean, intakePerSecond: number, endToEndPerSecond: number, refused: number, done: number,
    latencyMs: LatencySummary, cpuUsPerNotification: { bridge: number, postgres: number, simulatorAndSender: number },
    storedRecords: number, distinctDocuments: number, events: number, outboxRows: number
  }
  const passed = old.refused === 0 && old.done === old.notifications && old.storedRecords === old.distinctDocuments
  return {
    file, date: old.machine.date, variant: { nodes: 1, redis: old.redis, kafka: false }, notifications: old.notifications, cores: old.machine.cores,
    intakePerSecond: old.intakePerSecond, endToEndPerSecond: old.endToEndPerSecond, eventsPerNotification: old.events / old.notifications,
    latencyMs: old.latencyMs, publishLatencyMs: null, cpu: { ...old.cpuUsPerNotification, broker: null }, peakRssMiB: [], perNode: [],
    correctness: `${passed ? '✅' : '❌'} ${fmtInt(old.done)}/${fmtInt(old.notifications)} done; ${fmtInt(old.storedRecords)}/${fmtInt(old.distinctDocuments)} documents; ${fmtInt(old.events)} events = ${fmtInt(old.outboxRows)} outbox rows`
  }
}

export function describeCorrectness(c: Correctness, kafka: boolean): string {
  const parts = [
    `${fmtInt(c.accepted)} accepted = ${fmtInt(c.receiptsDone)} done`,
    `${fmtInt(c.storedRecords)}/${fmtInt(c.distinctDocuments)} documents`,
    kafka && c.topic !== null
      ? `${fmtInt(c.events)} events = ${fmtInt(c.outboxRows)} outbox rows = ${fmtInt(c.topic.distinctEventIds)} published, ${fmtInt(c.topic.duplicates)} duplicates`
      : `${fmtInt(c.events)} events = ${fmtInt(c.outboxRows)} outbox rows`
  ]
  const problems = [
    c.refused > 0 ? `${fmtInt(c.refused)} refused` : '',
    c.notAccepted > 0 ? `${fmtInt(c.notAccepted)} answered 200 but not accepted` : '',
    c.receiptsNotDone > 0 ? `${fmtInt(c.receiptsNotDone)} receipts not done` : '',
    c.eventsWithoutOutbox > 0 ? `${fmtInt(c.eventsWithoutOutbox)} events without outbox row` : '',
    (c.outboxUnpublished ?? 0) > 0 ? `${fmtInt(c.outboxUnpublished ?? 0)} unpublished` : '',
    (c.outboxDeadLettered ?? 0) > 0 ? `${fmtInt(c.outboxDeadLettered ?? 0)} dead-lettered` : '',
    (c.topic?.missing ?? 0) > 0 ? `${fmtInt(c.topic?.missing ?? 0)} missing from the topic` : '',
    (c.topic?.unexpected ?? 0) > 0 ? `${fmtInt(c.topic?.unexpected ?? 0)} unknown records in the topic` : '',
    (c.dlqRecords ?? 0) > 0 ? `${fmtInt(c.dlqRecords ?? 0)} in the DLQ topic` : ''
  ].filter((problem) => problem !== '')
  return `${c.passed ? '✅' : '❌'} ${[...parts, ...problems].join('; ')}`
}

const fmtMillions = (value: number): string => `${(value / 1e6).toFixed(1)} M`
const fmtLatency = (l: LatencySummary): string => `${fmtMs(l.p50)} / ${fmtMs(l.p99)}`

function referenceCell(row: Row): string {
  const perMinute = row.endToEndPerSecond * 60
  if (row.variant.nodes === 1) return `2,400/min → ×${(perMinute / REFERENCE.perMinuteOneNode).toFixed(1)}`
  if (row.variant.nodes === 3) {
    const eventsPerDay = row.eventsPerNotification * row.endToEndPerSecond * 86_400
    const webhooksPerDay = row.endToEndPerSecond * 86_400
    // The reference's 9.7 M/day is its webhook rate × 1,440 min: webhooks per day is the like-for-like figure.
    return `6,800/min → ×${(perMinute / REFERENCE.perMinuteThreeNodes).toFixed(1)}; 9.7 M/day → ×${(webhooksPerDay / REFERENCE.eventsPerDayThreeNodes).toFixed(1)} in webhooks, ×${(eventsPerDay / REFERENCE.eventsPerDayThreeNodes).toFixed(1)} in events`
  }
  return '—'
}

/** The whole docs section; `notes` is the hand-written block, kept as it is. */
export function renderSection(rows: readonly Row[], latest: E2eResult, notes: string): string {
  const m = latest.machine
  const throughput = rows.map((row) => {
    const perSecond = row.endToEndPerSecond
    const target = perSecond >= TARGET_PER_SECOND ? '✅' : '❌'
    return `| ${variantLabel(row.variant)} | ${row.date.slice(0, 10)}, ${fmtInt(row.notifications)} | **${fmtInt(perSecond)}** ${target} | ${fmtInt(perSecond * 60)} | ${fmtInt(perSecond / row.cores)} | ${fmtInt(row.intakePerSecond)} | ${fmtInt(perSecond * row.eventsPerNotification)} (${row.eventsPerNotification.toFixed(1)}/notification) | ${fmtMillions(perSecond * row.eventsPerNotification * 86_400)} (${fmtMillions(perSecond * 86_400)} webhooks) | ${referenceCell(row)} |`
  })
  const cost = rows.map((row) => {
    const cpu = row.cpu
    const cpuCell = `${fmtInt(cpu.bridge)} / ${fmtInt(cpu.postgres)} / ${fmtInt(cpu.simulatorAndSender)} / ${cpu.broker === null ? '—' : fmtInt(cpu.broker)}`
    const rss = row.peakRssMiB.length === 0 ? '—' : row.peakRssMiB.map((mib) => fmtInt(mib)).join(' / ')
    const work = row.perNode.length === 0 ? '—' : row.perNode.map((node) =>
      `${fmtInt(node.accepted)} / ${fmtInt(node.worked)}${row.variant.kafka ? ` / ${fmtInt(node.published)}` : ''}`).join(' · ')
    return `| ${variantLabel(row.variant)} | ${fmtLatency(row.latencyMs)} | ${row.publishLatencyMs === null ? '—' : fmtLatency(row.publishLatencyMs)} | ${cpuCell} | ${rss} | ${work} | ${row.correctness} |`
  })
  return `## ${DOCS_TITLE}

Generated by \`bench/webhooks/e2e.ts\`, one row per variant (its latest run; the date is in the row). Last run on ${m.date.slice(0, 10)}: ${m.cpu}, ${m.cores} cores, ${m.ramGb} GiB, Node ${m.node}, PostgreSQL ${m.postgres} (${Object.entries(m.postgresSettings).map(([name, value]) => `${name}=${value}`).join(', ')}). Raw data: ${rows.map((row) => `\`bench/results/${row.file}\``).join(', ')}.

\`\`\`sh
npm run bench:webhooks:e2e                                      # 1 node, no Kafka             → webhooks-e2e.json
node bench/webhooks/e2e.ts --kafka                              # 1 node, Kafka on              → webhooks-e2e-kafka.json
node bench/webhooks/e2e.ts --nodes 3 --redis --kafka            # 3 nodes, Redis, Kafka on      → webhooks-e2e-3nodes-redis-kafka.json
node bench/webhooks/e2e.ts --notifications 2000 --no-write      # quick check (nothing written)
# --kafka uses BENCH_KAFKA_BROKERS, TEST_KAFKA_BROKERS or 127.0.0.1:9092 (bash scripts/kafka.sh up); --brokers host:port overrides
# other options (defaults): --notifications N (20,000) --users N (50) --concurrency N (50) --workers N (40) --partitions N (16) --keep-db --cpu-prof
\`\`\`

**Method.** N \`bridge serve\` processes on one scratch PostgreSQL database (with \`--redis\` on the local Redis, else each with its in-process cache), ${latest.workers} workers each (\`MAX_CONCURRENT_WEBHOOKS\`), the Oura request budget lifted (\`OURA_REQUESTS_PER_5_MIN\`; Oura's real 5,000 per 5 minutes would cap one app at 16.7 fetches/s). The Oura simulator runs in the benchmark process with ${latest.users} users connected through the real OAuth flow; it signs and sends \`update\` notifications (daily readiness, activity, sleep, SpO₂ and sleep periods; a sleep also fetches its heart-rate rows) at ${latest.concurrency} in flight, round-robin over the nodes, and serves every fetch. Without Kafka, end to end runs from the first send until the last receipt is done (its events and outbox rows committed, durably: \`synchronous_commit\` as listed above). With Kafka (\`KAFKA_BROKERS\` set, a fresh topic and DLQ topic of 16 partitions per run, the bridge's own outbox relay publishing with acks=all to the single local broker of \`scripts/kafka.sh\`), it runs until the last outbox row is marked published, i.e. acknowledged by the broker; the topic is then read back and compared with the outbox by \`event_id\`.

**All of it shares the machine's ${m.cores} cores**: simulator, sender, every bridge node, PostgreSQL, and with Kafka the broker. Three nodes here are three processes on the same ${m.cores} cores, not three machines: they show that nodes cooperate correctly (receipts claimed with SKIP LOCKED, outbox lanes leased) and what the coordination costs, not how throughput scales with hardware. "Per core" divides by the machine's cores (\`os.availableParallelism()\`), not by nodes. Events/day is derived: events stored per notification in this run × end-to-end notifications/s × 86,400; the reference's 9.7 M/day is 6,800 webhooks/minute × 1,440, i.e. one event per webhook, so the webhooks/day figure in brackets is the like-for-like comparison. Events per notification falls as a run grows: the simulator's documents do not change, so a repeated \`update\` of a document already stored re-fetches it and writes no new events.

| Variant | Run (date, notifications) | **End to end**/s (target ≥ ${fmtInt(TARGET_PER_SECOND)}) | per minute | per core/s | Intake/s | Events/s | Events/day (derived) | Reference |
|---|---|---:|---:|---:|---:|---:|---:|---|
${throughput.join('\n')}

| Variant | Receipt → stored p50 / p99 ms | Outbox write → published p50 / p99 ms | CPU µs per notification: bridge / PostgreSQL / simulator + sender / broker | Peak RSS per node (MiB) | Per node: accepted / worked / published | Correctness |
|---|---:|---:|---:|---:|---|---|
${cost.join('\n')}

Intake is notifications per second while the sender runs (the worker pool and relay run alongside). CPU is per notification over the whole run: all bridge processes together, the PostgreSQL backends of the scratch database, this process (simulator and sender), and the broker JVM when it is the one \`scripts/kafka.sh\` started; Redis's CPU is not counted (a shared server). Peak RSS is each bridge's VmHWM at the end. The per-node split comes from each node's \`/metrics\` (\`webhook_events_total\`, \`webhook_process_duration_seconds_count\`, \`kafka_messages_published_total\`). The latencies are queueing figures: the sender offers notifications faster than the workers finish them, so receipts wait in the table; under a rate below the end-to-end throughput they are the processing time alone.

${notes}
`
}
