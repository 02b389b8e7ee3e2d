/**
 * The suite summary: the reference report's figures, row by row, next to ours, as table rows (summary.json),
 * a Markdown section (top of docs/benchmarks.md) and a chart (summary.svg). Pure: results objects in, rows,
 * Markdown and SVG out, so fixtures can test it; bench/suite/render.ts does the reading and writing.
 *
 * Conventions: a figure the results do not hold is "not measured", with the reason; ratios are "how many times
 * better" (ours ÷ reference for rates, reference ÷ ours for times), so below 1 is worse; MB is 10^6 bytes (the
 * benchmarks record MiB, converted here).
 */
import { renderBarChart, type BarChart, type PlotGroup } from '../lib/svg-plot.ts'
import { fmtInt, fmtMs } from '../lib/stats.ts'
import { SOAK_WARMUP, STEPS } from './steps.ts'
import type { E2eResults, Environment, SoakResults, SuiteResults, SuiteRunEntry, WebhookResults, WebhookSummary } from './results.ts'

/** The report of the system we replace (../shared/reference/reference-system-report.md). */
export const REFERENCE = {
  webhooksPerMinuteOneNode: 2400,
  webhooksPerMinuteThreeNodes: 6800,
  /** p99 at 50 concurrent webhooks (closed loop, rate not stated). */
  p99MsAt50: { oura: 87, whoop: 93 },
  concurrency: 50,
  /** Its batch table: processing time per batch (statistic not stated) and samples/s. */
  healthkitBatches: [
    { samples: 10, ms: 23, perSecond: 434 },
    { samples: 50, ms: 89, perSecond: 561 },
    { samples: 100, ms: 156, perSecond: 641 },
    { samples: 500, ms: 743, perSecond: 673 },
    { samples: 1000, ms: 1532, perSecond: 652 }
  ],
  healthkitMaxBatch: 1000,
  kafkaMessagesPerSecond: 2341,
  eventsPerDayThreeNodes: 9.7e6,
  tokenRefresh: { attempts: 25, p50Ms: 52, p99Ms: 1821 }
} as const

/** Issue #6's targets. */
export const TARGETS = {
  intakePerSecond: 10_000,
  endToEndPerSecond: 3000,
  p99Ms: 10,
  p99AtRatePerSecond: 1000,
  healthkitSamplesPerSecond: 50_000,
  healthkitMinRatio: 0.5,
  /** "Large batches": the sizes the HealthKit benchmark applies its throughput targets to. */
  healthkitLargeBatch: 500,
  kafkaEventsPerSecond: 50_000,
  cpuUsPerWebhook: 100,
  rssMb: 300
} as const

/** The fixed rates the issue asks p50/p99 for, requests/s. */
export const FIXED_RATES = [1000, 5000] as const

const SECONDS_PER_DAY = 86_400
const MIB_IN_MB = 1.048576

export interface RowSource {
  /** The docs/benchmarks.md section, when there is one to link. */
  section: string | null
  file: string
  /** Day of the measurement (YYYY-MM-DD). */
  date: string | null
  quick: boolean | null
  /** Size of the run where it says more than "quick", e.g. "3,000 notifications". */
  note?: string
}

export interface SummaryRow {
  id: string
  group: string
  label: string
  /** Which way is better; the ratio is oriented so that above 1 is better. */
  better: 'higher' | 'lower'
  unit: string
  reference: number | null
  referenceText: string
  ours: number | null
  oursText: string
  ratio: number | null
  ratioText: string
  target: number | null
  targetText: string
  met: boolean | null
  source: RowSource | null
  /** Why ours is missing. */
  notMeasured?: string
  /** p50 and p99 where the row is a latency. */
  latency?: { p50Ms: number, p99Ms: number }
  /** Where the chart draws it; `scale` turns the row's unit into the panel's (per second, ms). */
  plot?: { panel: 'throughput' | 'latency', label: string, scale: number }
}

export interface MachineSummary {
  cpu: string[]
  cores: number[]
  ramGb: number[]
  node: string[]
  postgres: string[]
  postgresSettings: Record<string, string>
  redis: string[]
  kafka: string[]
  kafkaClient: string[]
  /** Per benchmark: 1-min load average at its start and end, as recorded. */
  load: Array<{ benchmark: string, start: number | null, end: number | null, date: string | null, quick: boolean | null }>
}

export interface Summary {
  generatedAt: string
  rows: SummaryRow[]
  machine: MachineSummary
  lastRun: SuiteRunEntry | null
  /** A partial run (--only, --soak) made after lastRun. */
  lastPartialRun: SuiteRunEntry | null
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

export function fmtRatio(ratio: number): string {
  const text = ratio >= 10 ? fmtInt(ratio) : ratio >= 1 ? ratio.toFixed(1) : ratio.toFixed(2)
  return `${text}×`
}

const fmtPerMinute = (perMinute: number): string => `${fmtInt(perMinute)}/min (${fmtInt(perMinute / 60)}/s)`
const fmtMillions = (value: number): string => `${(value / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 })} M`
/** Whole figures (the reference's, targets) without decimals; measured ones with fmtMs's precision. */
const fmtLatency = (ms: number): string => `${Number.isInteger(ms) || ms >= 1000 ? fmtInt(ms) : fmtMs(ms)} ms`

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(title: string): string {
  return title.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
}

const dayOf = (env: Environment | undefined): string | null => (typeof env?.date === 'string' ? env.date.slice(0, 10) : null)
const quickOf = (env: Environment | undefined): boolean | null => (typeof env?.quick === 'boolean' ? env.quick : null)

// ---------------------------------------------------------------------------------------------------------------
// Rows

interface RowSpec {
  id: string
  group: string
  label: string
  better: 'higher' | 'lower'
  unit: string
  format: (value: number) => string
  reference?: number
  /** Replaces the formatted reference, e.g. "not reported". */
  referenceText?: string
  target?: number
  targetText?: string
  plot?: SummaryRow['plot']
}

interface Measured {
  value: number
  source: RowSource
  /** Replaces the formatted value. */
  text?: string
  latency?: { p50Ms: number, p99Ms: number }
  /** When the target is judged on something other than `value` (e.g. the worst of several batch sizes). */
  met?: boolean
}

interface Missing {
  missing: string
  source?: RowSource | null
}

function makeRow(spec: RowSpec, measured: Measured | Missing): SummaryRow {
  const reference = spec.reference ?? null
  const target = spec.target ?? null
  const has = 'value' in measured && finite(measured.value)
  const ours = has ? measured.value : null
  let ratio: number | null = null
  if (ours !== null && reference !== null && ours > 0 && reference > 0) ratio = spec.better === 'higher' ? ours / reference : reference / ours
  let met: boolean | null = null
  if (has && measured.met !== undefined) met = measured.met
  else if (ours !== null && target !== null) met = spec.better === 'higher' ? ours >= target : ours <= target
  const row: SummaryRow = {
    id: spec.id,
    group: spec.group,
    label: spec.label,
    better: spec.better,
    unit: spec.unit,
    reference,
    referenceText: spec.referenceText ?? (reference === null ? 'not reported' : spec.format(reference)),
    ours,
    oursText: has ? (measured.text ?? spec.format(measured.value)) : 'not measured',
    ratio,
    ratioText: ratio === null ? '—' : fmtRatio(ratio),
    target,
    targetText: spec.targetText ?? (target === null ? '—' : `${spec.better === 'higher' ? '≥' : '≤'} ${spec.format(target)}`),
    met,
    source: has ? measured.source : ((measured as Missing).source ?? null)
  }
  if (!has) row.notMeasured = (measured as Missing).missing
  if (has && measured.latency !== undefined) row.latency = measured.latency
  if (spec.plot !== undefined) row.plot = spec.plot
  return row
}

const missing = (why: string, source?: RowSource | null): Missing => ({ missing: why, source: source ?? null })

// Webhook intake ---------------------------------------------------------------------------------------------

const PROVIDER_NAMES = { oura: 'Oura', whoop: 'WHOOP' } as const
type ProviderId = keyof typeof PROVIDER_NAMES
const WEBHOOK_FILES: Record<ProviderId, string> = { oura: 'webhooks.json', whoop: 'webhooks-whoop.json' }
/** The arm the rows report: the real app as deployed on a node of a multi-node setup (PostgreSQL + Redis). */
const BRIDGE_ARM = 'bridge'

function webhookSource(provider: ProviderId, results: WebhookResults | undefined): RowSource {
  return {
    section: `Webhook intake (${PROVIDER_NAMES[provider]})`,
    file: WEBHOOK_FILES[provider],
    date: dayOf(results?.environment),
    quick: quickOf(results?.environment)
  }
}

function bridgeSummary(results: WebhookResults | undefined, shape: string, ratePerSecond?: number): WebhookSummary | undefined {
  const summaries = results?.summaries ?? []
  return summaries.find((s) => {
    if (s.arm !== BRIDGE_ARM || s.shape !== shape) return false
    if (ratePerSecond === undefined) return true
    // Files from before --rates carry one rate, in `shapes`.
    const rate = s.ratePerSecond ?? results?.shapes?.find((candidate) => candidate.id === 'rate')?.ratePerSecond
    return rate === ratePerSecond
  })
}

function latencyOf(summary: WebhookSummary | undefined): { p50Ms: number, p99Ms: number } | undefined {
  const p50Ms = summary?.latency?.p50Ms
  const p99Ms = summary?.latency?.p99Ms
  return finite(p50Ms) && finite(p99Ms) ? { p50Ms, p99Ms } : undefined
}

function webhookRows(results: SuiteResults): { intake: SummaryRow[], concurrency: SummaryRow[], rates: SummaryRow[], cpu: SummaryRow[], rss: SummaryRow[] } {
  const out = { intake: [] as SummaryRow[], concurrency: [] as SummaryRow[], rates: [] as SummaryRow[], cpu: [] as SummaryRow[], rss: [] as SummaryRow[] }
  for (const provider of ['oura', 'whoop'] as const) {
    const name = PROVIDER_NAMES[provider]
    const file = results.webhooks[provider]
    const source = webhookSource(provider, file)
    const noFile = missing(`no ${WEBHOOK_FILES[provider]} (run the webhook intake benchmark${provider === 'whoop' ? ' with --provider whoop' : ''})`)
    const saturation = bridgeSummary(file, 'saturation')
    const connections = file?.shapes?.find((shape) => shape.id === 'saturation')?.connections
    out.intake.push(makeRow({
      id: `intake-${provider}`, group: 'Webhooks per minute, one node',
      label: `Intake, ${name}: durable receipt per webhook${finite(connections) ? ` (${connections} connections, closed loop)` : ''}`,
      better: 'higher', unit: 'webhooks/min', format: fmtPerMinute,
      reference: REFERENCE.webhooksPerMinuteOneNode, target: TARGETS.intakePerSecond * 60,
      plot: { panel: 'throughput', label: `Webhook intake, ${name}`, scale: 1 / 60 }
    }, file === undefined ? noFile : finite(saturation?.okPerSecond)
      ? { value: saturation.okPerSecond * 60, source }
      : missing('the saturation shape did not run', source)))

    const concurrency = bridgeSummary(file, 'concurrency')
    const connectionsAt = file?.shapes?.find((shape) => shape.id === 'concurrency')?.connections ?? REFERENCE.concurrency
    const latency = latencyOf(concurrency)
    out.concurrency.push(makeRow({
      id: `p99-${provider}-concurrent`, group: `Latency at ${REFERENCE.concurrency} concurrent webhooks (closed loop)`,
      label: `${name}: p99 (p50) at ${connectionsAt} connections`,
      better: 'lower', unit: 'ms', format: fmtLatency, reference: REFERENCE.p99MsAt50[provider],
      plot: { panel: 'latency', label: `${name}, ${connectionsAt} concurrent`, scale: 1 }
    }, file === undefined ? noFile : latency !== undefined
      ? { value: latency.p99Ms, text: `${fmtLatency(latency.p99Ms)} (p50 ${fmtLatency(latency.p50Ms)})`, latency, source }
      : missing('the concurrency shape did not run', source)))

    for (const rate of FIXED_RATES) {
      const summary = bridgeSummary(file, 'rate', rate)
      const at = latencyOf(summary)
      const target = rate === TARGETS.p99AtRatePerSecond ? TARGETS.p99Ms : undefined
      out.rates.push(makeRow({
        id: `p99-${provider}-${rate}`, group: 'Latency at fixed arrival rates (open loop, from when each request was due)',
        label: `${name}: p99 (p50) at ${fmtInt(rate)} webhooks/s`,
        better: 'lower', unit: 'ms', format: fmtLatency,
        // The reference reports no fixed-rate latency; its measured maximum is far below these rates.
        referenceText: `not reported (its max: ${fmtInt(REFERENCE.webhooksPerMinuteOneNode / 60)}/s)`,
        ...(target === undefined ? {} : { target }),
        plot: { panel: 'latency', label: `${name}, ${fmtInt(rate)}/s fixed rate`, scale: 1 }
      }, file === undefined ? noFile : at !== undefined
        ? { value: at.p99Ms, text: `${fmtLatency(at.p99Ms)} (p50 ${fmtLatency(at.p50Ms)})`, latency: at, source }
        : missing(`no ${fmtInt(rate)}/s rate shape in ${WEBHOOK_FILES[provider]} (run it with --rates ${FIXED_RATES.join(',')})`, source)))
    }

    const cpu = saturation?.cpuUsPerWebhook?.server
    out.cpu.push(makeRow({
      id: `cpu-${provider}`, group: 'Resources',
      label: `CPU time per webhook at intake, ${name} (server process, at saturation)`,
      better: 'lower', unit: 'µs', format: (value) => `${fmtInt(value)} µs`, target: TARGETS.cpuUsPerWebhook
    }, file === undefined ? noFile : finite(cpu)
      ? { value: cpu, text: `${fmtInt(cpu)} µs${finite(saturation?.cpuUsPerWebhook?.machine) ? ` (whole machine ${fmtInt(saturation.cpuUsPerWebhook.machine)} µs)` : ''}`, source }
      : missing('no CPU figure in the saturation shape', source)))

    const peakMib = file?.memory?.find((m) => m.arm === BRIDGE_ARM)?.peakRssMb
    out.rss.push(makeRow({
      id: `rss-${provider}`, group: 'Resources',
      label: `Peak RSS under load, ${name} intake (bridge process, whole run)`,
      better: 'lower', unit: 'MB', format: (value) => `${fmtInt(value)} MB`, target: TARGETS.rssMb
    }, file === undefined ? noFile : finite(peakMib)
      ? { value: peakMib * MIB_IN_MB, text: `${fmtInt(peakMib * MIB_IN_MB)} MB (${fmtInt(peakMib)} MiB)`, source }
      : missing('no memory figure', source)))
  }
  return out
}

// End to end -------------------------------------------------------------------------------------------------

interface E2eVariant {
  results: E2eResults
  nodes: number
  kafka: boolean
}

/** Variant of an end-to-end file: from its `variant`, else its other fields, else its name (webhooks-e2e-3nodes-redis-kafka.json). */
export function e2eVariant(results: E2eResults): E2eVariant {
  const nodesFromName = /-(\d+)nodes/.exec(results.file)?.[1]
  const nodes = finite(results.variant?.nodes) ? results.variant.nodes : nodesFromName === undefined ? 1 : Number(nodesFromName)
  const kafka = typeof results.variant?.kafka === 'boolean'
    ? results.variant.kafka
    : results.kafka !== undefined ? results.kafka !== null && results.kafka !== false : /-kafka\b/.test(results.file)
  return { results, nodes, kafka }
}

/** The file each variant writes by default (bench/webhooks/e2e-report.ts), preferred when several match. */
const E2E_FILES = { oneNode: 'webhooks-e2e.json', oneNodeKafka: 'webhooks-e2e-kafka.json', threeNodes: 'webhooks-e2e-3nodes-redis-kafka.json' }

function e2eSource(variant: E2eVariant): RowSource {
  const env = variant.results.environment ?? variant.results.machine
  const notifications = variant.results.notifications
  return {
    section: 'Webhooks end to end (Oura)',
    file: variant.results.file,
    date: dayOf(env),
    quick: null,
    ...(finite(notifications) ? { note: `${fmtInt(notifications)} notifications` } : {})
  }
}

function pickE2e(results: SuiteResults, nodes: number, kafka: boolean | 'prefer'): E2eVariant | undefined {
  const preferred = new Set(Object.values(E2E_FILES))
  const variants = results.e2e.map(e2eVariant)
    .filter((v) => v.nodes === nodes && finite(v.results.endToEndPerSecond))
    // The default file of a variant first, then the latest.
    .sort((a, b) => Number(preferred.has(b.results.file)) - Number(preferred.has(a.results.file)) ||
      (dayOf(b.results.machine ?? b.results.environment) ?? '').localeCompare(dayOf(a.results.machine ?? a.results.environment) ?? ''))
  if (kafka === 'prefer') return variants.find((v) => v.kafka) ?? variants.find((v) => !v.kafka)
  return variants.find((v) => v.kafka === kafka)
}

const kafkaLabel = (kafka: boolean): string => (kafka ? 'Kafka on' : 'Kafka off')

function e2eRows(results: SuiteResults): { throughput: SummaryRow[], capacity: SummaryRow[] } {
  const throughput: SummaryRow[] = []
  const perMinute = (variant: E2eVariant): number => (variant.results.endToEndPerSecond as number) * 60
  const notFound = (what: string, flags: string): Missing => missing(`no end-to-end result ${what} (\`node bench/webhooks/e2e.ts${flags}\`)`)
  for (const kafka of [false, true]) {
    const variant = pickE2e(results, 1, kafka)
    throughput.push(makeRow({
      id: `e2e-${kafka ? 'kafka' : 'no-kafka'}`, group: 'Webhooks per minute, one node',
      label: `End to end, Oura: notification → fetch → events and outbox committed, ${kafkaLabel(kafka)}`,
      better: 'higher', unit: 'webhooks/min', format: fmtPerMinute,
      reference: REFERENCE.webhooksPerMinuteOneNode, target: TARGETS.endToEndPerSecond * 60,
      plot: { panel: 'throughput', label: `Webhooks end to end, ${kafkaLabel(kafka)}`, scale: 1 / 60 }
    }, variant === undefined
      ? notFound(`for one node, ${kafkaLabel(kafka)}`, kafka ? ' --kafka' : '')
      : { value: perMinute(variant), source: e2eSource(variant) }))
  }
  const three = pickE2e(results, 3, 'prefer')
  throughput.push(makeRow({
    id: 'three-nodes', group: 'Webhooks per minute, three nodes on one machine',
    label: `Three nodes, end to end${three === undefined ? '' : `, ${kafkaLabel(three.kafka)}`}`,
    better: 'higher', unit: 'webhooks/min', format: fmtPerMinute,
    reference: REFERENCE.webhooksPerMinuteThreeNodes, target: TARGETS.endToEndPerSecond * 60,
    plot: { panel: 'throughput', label: 'Webhooks end to end, three nodes', scale: 1 / 60 }
  }, three === undefined ? notFound('with three nodes', ' --nodes 3 --redis --kafka') : { value: perMinute(three), source: e2eSource(three) }))
  const cores = three === undefined ? undefined : (three.results.environment ?? three.results.machine)?.cores
  throughput.push(makeRow({
    id: 'three-nodes-per-core', group: 'Webhooks per minute, three nodes on one machine',
    label: `Three nodes, end to end, per core${finite(cores) ? ` (÷ ${cores} cores)` : ''}`,
    better: 'higher', unit: 'webhooks/min', format: fmtPerMinute,
    referenceText: `not reported (per node: ${fmtPerMinute(REFERENCE.webhooksPerMinuteThreeNodes / 3)})`
  }, three === undefined
    ? notFound('with three nodes', ' --nodes 3 --redis --kafka')
    : finite(cores) && cores > 0
      ? { value: perMinute(three) / cores, source: e2eSource(three) }
      : missing('the three-node result does not record the number of cores', e2eSource(three))))

  // Capacity: what the measured end-to-end rate sustains for a day. The reference counts webhooks as events
  // (6,800/min × 1,440 ≈ 9.7 M), so this does too; the events stored per notification are noted.
  const capacity: SummaryRow[] = []
  const perDay = (variant: E2eVariant): Measured => {
    const value = (variant.results.endToEndPerSecond as number) * SECONDS_PER_DAY
    const { events, done, eventsPerNotification } = variant.results
    const stored = finite(eventsPerNotification) ? eventsPerNotification : finite(events) && finite(done) && done > 0 ? events / done : undefined
    return {
      value,
      text: `${fmtMillions(value)}/day${stored === undefined ? '' : ` (${stored.toFixed(1)} stored events each: ${fmtMillions(value * stored)})`}`,
      source: e2eSource(variant)
    }
  }
  const one = pickE2e(results, 1, 'prefer')
  capacity.push(makeRow({
    id: 'events-per-day-one-node', group: 'Capacity (derived from measured end-to-end throughput × 86,400 s)',
    label: `Webhooks per day, one node${one === undefined ? '' : `, ${kafkaLabel(one.kafka)}`}`,
    better: 'higher', unit: 'events/day', format: (value) => `${fmtMillions(value)}/day`,
    reference: REFERENCE.eventsPerDayThreeNodes / 3,
    referenceText: `${fmtMillions(REFERENCE.eventsPerDayThreeNodes / 3)}/day (its 9.7 M on three nodes ÷ 3)`
  }, one === undefined ? notFound('on one node', '') : perDay(one)))
  capacity.push(makeRow({
    id: 'events-per-day-three-nodes', group: 'Capacity (derived from measured end-to-end throughput × 86,400 s)',
    label: `Webhooks per day, three nodes on one machine${three === undefined ? '' : `, ${kafkaLabel(three.kafka)}`}`,
    better: 'higher', unit: 'events/day', format: (value) => `${fmtMillions(value)}/day`,
    reference: REFERENCE.eventsPerDayThreeNodes
  }, three === undefined ? notFound('with three nodes', ' --nodes 3 --redis --kafka') : perDay(three)))
  return { throughput, capacity }
}

// HealthKit ----------------------------------------------------------------------------------------------------

function healthkitRows(results: SuiteResults): { batches: SummaryRow[], throughput: SummaryRow[], rss: SummaryRow[] } {
  const file = results.healthkit
  const source: RowSource = { section: 'HealthKit uploads', file: 'healthkit.json', date: dayOf(file?.environment), quick: quickOf(file?.environment) }
  const noFile = missing('no healthkit.json (run the HealthKit benchmark)')
  const batches = (file?.batches ?? []).filter((b) => finite(b.batchSize))
  const sizes = [...new Set([...REFERENCE.healthkitBatches.map((b) => b.samples), ...batches.map((b) => b.batchSize as number)])].sort((a, b) => a - b)
  const batchRows = sizes.map((size) => {
    const reference = REFERENCE.healthkitBatches.find((b) => b.samples === size)
    const batch = batches.find((b) => b.batchSize === size)
    const p50Ms = batch?.ours?.p50Ms
    const p99Ms = batch?.ours?.p99Ms
    const perSecond = batch?.ours?.samplesPerSecond
    const target = size === 100 && finite(file?.targets?.batch100P50Ms) ? file.targets.batch100P50Ms : undefined
    return makeRow({
      id: `healthkit-${size}`, group: 'HealthKit batches (time per batch: ours p50, the reference\'s processing time)',
      label: `${fmtInt(size)} samples per batch`,
      better: 'lower', unit: 'ms', format: fmtLatency,
      ...(reference === undefined
        ? { referenceText: size > REFERENCE.healthkitMaxBatch ? `not reported (its batches are capped at ${fmtInt(REFERENCE.healthkitMaxBatch)})` : 'not reported' }
        : { reference: reference.ms, referenceText: `${fmtLatency(reference.ms)} (${fmtInt(reference.perSecond)} samples/s)` }),
      ...(target === undefined ? {} : { target, targetText: `p50 ≤ ${fmtLatency(target)}` }),
      plot: { panel: 'latency', label: `HealthKit, ${fmtInt(size)} samples`, scale: 1 }
    }, file === undefined ? noFile : finite(p50Ms) && finite(p99Ms)
      ? {
        value: p50Ms, latency: { p50Ms, p99Ms }, source,
        text: `p50 ${fmtLatency(p50Ms)}, p99 ${fmtLatency(p99Ms)}${finite(perSecond) ? ` (${fmtInt(perSecond)} samples/s)` : ''}`
      }
      : missing(`no batch of ${fmtInt(size)} in healthkit.json`, source))
  })

  const large = batches.filter((b) => (b.batchSize as number) >= TARGETS.healthkitLargeBatch && finite(b.ours?.samplesPerSecond))
  const rates = large.map((b) => b.ours!.samplesPerSecond as number)
  const ratios = large.map((b) => b.ratio?.median).filter(finite)
  const sizeRange = large.length === 0 ? '' : `${fmtInt(Math.min(...large.map((b) => b.batchSize as number)))}–${fmtInt(Math.max(...large.map((b) => b.batchSize as number)))}`
  const bestReference = Math.max(...REFERENCE.healthkitBatches.map((b) => b.perSecond))
  const throughput = [
    makeRow({
      id: 'healthkit-samples-per-second', group: 'HealthKit throughput',
      label: `Samples/s, large batches${sizeRange === '' ? '' : ` (${sizeRange} samples; best, lowest in brackets)`}`,
      better: 'higher', unit: 'samples/s', format: (value) => `${fmtInt(value)}/s`,
      reference: bestReference, referenceText: `${fmtInt(bestReference)}/s (its best)`,
      target: TARGETS.healthkitSamplesPerSecond, targetText: `≥ ${fmtInt(TARGETS.healthkitSamplesPerSecond)}/s at every large batch size`,
      plot: { panel: 'throughput', label: 'HealthKit samples, large batches', scale: 1 }
    }, file === undefined ? noFile : rates.length > 0
      ? {
        value: Math.max(...rates), text: `${fmtInt(Math.max(...rates))}/s (${fmtInt(Math.min(...rates))}/s)`, source,
        met: Math.min(...rates) >= TARGETS.healthkitSamplesPerSecond
      }
      : missing(`no batch of ${fmtInt(TARGETS.healthkitLargeBatch)} samples or more in healthkit.json`, source)),
    makeRow({
      id: 'healthkit-vs-raw', group: 'HealthKit throughput',
      label: 'Ours ÷ raw inserts of the same rows (same run), large batches (lowest per-size median, highest in brackets)',
      better: 'higher', unit: '×', format: fmtRatio, referenceText: '—',
      target: TARGETS.healthkitMinRatio
    }, file === undefined ? noFile : ratios.length > 0
      ? { value: Math.min(...ratios), text: `${fmtRatio(Math.min(...ratios))} (${fmtRatio(Math.max(...ratios))})`, source }
      : missing('no per-round ratio for large batches in healthkit.json', source))
  ]
  const upload = file?.bigUpload?.find((u) => (u.nodeOptions ?? []).length === 0)
  const rss = [makeRow({
    id: 'rss-healthkit-upload', group: 'Resources',
    label: `Peak RSS, HealthKit upload of ${finite(upload?.samples) ? fmtInt(upload.samples) : '100,000'} samples in one request (server as deployed)`,
    better: 'lower', unit: 'MB', format: (value) => `${fmtInt(value)} MB`, target: TARGETS.rssMb
  }, file === undefined ? noFile : finite(upload?.peakRssMb)
    ? { value: upload.peakRssMb * MIB_IN_MB, text: `${fmtInt(upload.peakRssMb * MIB_IN_MB)} MB (${fmtInt(upload.peakRssMb)} MiB)`, source }
    : missing('no streamed-upload figure in healthkit.json', source))]
  return { batches: batchRows, throughput, rss }
}

// Kafka --------------------------------------------------------------------------------------------------------

function kafkaRow(results: SuiteResults): SummaryRow {
  const file = results.kafka
  const relay = file?.throughput?.relay?.eventsPerSecond
  const raw = file?.throughput?.raw?.eventsPerSecond
  const source: RowSource = { section: 'Kafka publishing', file: 'kafka.json', date: dayOf(file?.environment), quick: quickOf(file?.environment) }
  return makeRow({
    id: 'kafka-publish', group: 'Kafka',
    label: 'Publish rate: outbox relay → topic (acks=all, idempotent)',
    better: 'higher', unit: 'events/s', format: (value) => `${fmtInt(value)}/s`,
    reference: REFERENCE.kafkaMessagesPerSecond, target: TARGETS.kafkaEventsPerSecond,
    plot: { panel: 'throughput', label: 'Kafka publish (events)', scale: 1 }
  }, file === undefined
    ? missing('no kafka.json (run the Kafka benchmark; it needs the broker of scripts/kafka.sh)')
    : finite(relay)
      ? { value: relay, text: `${fmtInt(relay)}/s${finite(raw) ? ` (raw producer ${fmtInt(raw)}/s)` : ''}`, source }
      : missing('the throughput part did not run', source))
}

// Soak ---------------------------------------------------------------------------------------------------------

const verdictMet = (verdict: string | undefined): boolean | undefined => (verdict === 'flat' ? true : verdict === 'growing' ? false : undefined)

function soakRows(results: SuiteResults): SummaryRow[] {
  const soak = results.soak
  const source: RowSource = { section: 'Soak', file: 'soak.json', date: dayOf(soak?.machine), quick: null }
  const noFile = missing('no soak.json (run `npm run bench -- --soak 10m`)')
  const minutes = soak?.settings?.durationMs
  const rate = soak?.settings?.ratePerSecond
  const over = `${finite(minutes) ? `${fmtInt(minutes / 60_000)}-minute ` : ''}soak${finite(rate) ? ` at ${fmtInt(rate)}/s` : ''}`
  // The trend rows show what the trend rule fits: the windows after the warm-up.
  const warmupMs = soak?.settings?.warmupMs ?? 0
  const windows = (soak?.windows ?? []).filter((window) => (window.startS ?? 0) * 1000 >= warmupMs)
  const timelineMs = soak?.settings?.timelineMs
  const warmupText = finite(timelineMs) && finite(minutes) && timelineMs > minutes ? ` after ${fmtInt(warmupMs / 60_000)} min of warm-up` : ''
  const series = (value: (w: NonNullable<SoakResults['windows']>[number]) => number | undefined): number[] => windows.map(value).filter(finite)
  const trendRow = (metric: 'p99' | 'rss'): SummaryRow => {
    const values = metric === 'p99' ? series((w) => w.intakeP99Ms) : series((w) => w.rssMeanMb)
    const format = metric === 'p99' ? fmtLatency : (value: number): string => `${fmtInt(value)} MiB`
    const first = values[0]
    const last = values[values.length - 1]
    const verdict = metric === 'p99' ? soak?.verdict?.p99 : soak?.verdict?.rss
    const met = verdictMet(verdict)
    return makeRow({
      id: `soak-${metric}`, group: 'Resources',
      label: `${metric === 'p99' ? 'Intake p99' : 'Bridge RSS (window mean)'} over the ${over}${warmupText}: first window → last (highest)`,
      better: 'lower', unit: metric === 'p99' ? 'ms' : 'MiB', format,
      targetText: `flat (the soak's trend rule)${soak?.verdict?.indicative === true ? '; short run, indicative' : ''}`
    }, soak === undefined
      ? noFile
      : first !== undefined && last !== undefined
        ? { value: last, text: `${format(first)} → ${format(last)} (${format(Math.max(...values))})${verdict === undefined ? '' : `: ${verdict}`}`, source, ...(met === undefined ? {} : { met }) }
        : missing('soak.json holds no windows', source))
  }
  const peakMib = soak?.overall?.rssMaxMb
  return [
    trendRow('p99'),
    trendRow('rss'),
    makeRow({
      id: 'rss-soak', group: 'Resources', label: `Peak RSS during the ${over} (5-s samples)`,
      better: 'lower', unit: 'MB', format: (value) => `${fmtInt(value)} MB`, target: TARGETS.rssMb
    }, soak === undefined ? noFile : finite(peakMib)
      ? { value: peakMib * MIB_IN_MB, text: `${fmtInt(peakMib * MIB_IN_MB)} MB (${fmtInt(peakMib)} MiB)`, source }
      : missing('no RSS figure in soak.json', source))
  ]
}

// Token refresh ------------------------------------------------------------------------------------------------

function tokenRefreshRows(results: SuiteResults): SummaryRow[] {
  const file = results.tokenRefresh
  const summary = file?.summaries?.find((s) => s.arm === 'redis' && s.shape === 'one-at-a-time')
  const source: RowSource = { section: 'Token refresh (WHOOP rotating tokens)', file: 'token-refresh.json', date: dayOf(file?.environment), quick: quickOf(file?.environment) }
  const p50Ms = summary?.wait?.p50Ms
  const p99Ms = summary?.wait?.p99Ms
  return (['p50', 'p99'] as const).map((which) => makeRow({
    id: `token-refresh-${which}`, group: 'Token refresh',
    label: `Lock wait ${which}, ${REFERENCE.tokenRefresh.attempts} concurrent attempts on one expiry (3 processes, Redis lock)`,
    better: 'lower', unit: 'ms', format: fmtLatency,
    reference: which === 'p50' ? REFERENCE.tokenRefresh.p50Ms : REFERENCE.tokenRefresh.p99Ms,
    ...(which === 'p99' ? { plot: { panel: 'latency' as const, label: `Token refresh, ${REFERENCE.tokenRefresh.attempts} concurrent`, scale: 1 } } : {})
  }, file === undefined
    ? missing('no token-refresh.json (run the token refresh benchmark)')
    : finite(p50Ms) && finite(p99Ms)
      ? { value: which === 'p50' ? p50Ms : p99Ms, latency: { p50Ms, p99Ms }, source }
      : missing('no redis, one-at-a-time summary in token-refresh.json', source)))
}

// ---------------------------------------------------------------------------------------------------------------
// Summary

export function buildRows(results: SuiteResults): SummaryRow[] {
  const webhooks = webhookRows(results)
  const e2e = e2eRows(results)
  const healthkit = healthkitRows(results)
  return [
    ...webhooks.intake,
    ...e2e.throughput,
    ...webhooks.concurrency,
    ...webhooks.rates,
    ...healthkit.batches,
    ...healthkit.throughput,
    kafkaRow(results),
    ...e2e.capacity,
    ...webhooks.cpu,
    ...webhooks.rss,
    ...healthkit.rss,
    ...soakRows(results),
    ...tokenRefreshRows(results)
  ]
}

function environments(results: SuiteResults): Array<{ benchmark: string, env: Environment }> {
  const list: Array<{ benchmark: string, env: Environment | undefined }> = [
    { benchmark: 'HealthKit uploads', env: results.healthkit?.environment },
    { benchmark: 'Kafka publishing', env: results.kafka?.environment },
    { benchmark: 'Webhook intake (Oura)', env: results.webhooks.oura?.environment },
    { benchmark: 'Webhook intake (WHOOP)', env: results.webhooks.whoop?.environment },
    ...results.e2e.map((e) => ({ benchmark: `End to end (${e.file})`, env: e.environment ?? e.machine })),
    { benchmark: 'Token refresh', env: results.tokenRefresh?.environment },
    { benchmark: 'Soak', env: results.soak?.machine }
  ]
  return list.flatMap((entry) => (entry.env === undefined || entry.env === null ? [] : [{ benchmark: entry.benchmark, env: entry.env }]))
}

export function describeMachines(results: SuiteResults): MachineSummary {
  const envs = environments(results)
  const distinct = <T>(values: Array<T | undefined>): T[] => [...new Set(values.filter((v): v is T => v !== undefined && v !== null))]
  const settings = envs.find((e) => e.env.postgresSettings !== undefined)?.env.postgresSettings ?? {}
  return {
    cpu: distinct(envs.map((e) => e.env.cpu)),
    cores: distinct(envs.map((e) => e.env.cores)),
    ramGb: distinct(envs.map((e) => e.env.ramGb)),
    node: distinct(envs.map((e) => e.env.node)),
    postgres: distinct(envs.map((e) => e.env.postgres)),
    postgresSettings: settings,
    redis: distinct(envs.map((e) => e.env.redis)).filter((v) => v !== 'not used'),
    kafka: distinct(envs.map((e) => e.env.kafka)),
    kafkaClient: distinct(envs.map((e) => e.env.kafkaClient)),
    load: envs.map((e) => ({
      benchmark: e.benchmark,
      start: finite(e.env.loadAverage?.start) ? e.env.loadAverage.start : null,
      end: finite(e.env.loadAverage?.end) ? e.env.loadAverage.end : null,
      date: dayOf(e.env),
      quick: quickOf(e.env)
    }))
  }
}

export function buildSummary(results: SuiteResults, now: Date): Summary {
  return {
    generatedAt: now.toISOString(),
    rows: buildRows(results),
    machine: describeMachines(results),
    lastRun: results.suiteRun?.lastRun ?? null,
    lastPartialRun: results.suiteRun?.lastPartialRun ?? null
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

export const SUMMARY_TITLE = 'Summary: the reference report, row by row'
export const SUMMARY_MARKER = 'summary'

const cell = (text: string): string => text.replace(/\|/g, '\\|')

function sourceCell(source: RowSource | null): string {
  if (source === null) return '—'
  const where = source.section === null ? `\`${source.file}\`` : `[${source.section}](#${anchorOf(source.section)})`
  return `${where}${source.section === null ? '' : ` (\`${source.file}\`)`}${source.date === null ? '' : `, ${source.date}`}` +
    `${source.quick === true ? ', quick run' : ''}${source.note === undefined ? '' : `, ${source.note}`}`
}

const metCell = (met: boolean | null): string => (met === null ? '—' : met ? '✅' : '❌')

const fmtMinutes = (seconds: number): string => (seconds < 90 ? `${fmtInt(seconds)} s` : `${fmtInt(seconds / 60)} min`)

export function renderSummaryMarkdown(summary: Summary, notes: string): string {
  const lines: string[] = []
  lines.push(`## ${SUMMARY_TITLE}`, '')
  lines.push(`Generated by \`bench/run.ts\` on ${summary.generatedAt.slice(0, 10)} from the results in \`bench/results/\` (each row's own ` +
    'measurement date is in its source column). Machine-readable: `bench/results/summary.json`; chart: `bench/results/summary.svg`.', '')
  lines.push('![Throughput and latency, ours against the reference report (log scales)](../bench/results/summary.svg)', '')
  lines.push('| Row | Reference | Ours | Ratio | Target | Met? | Source |')
  lines.push('|---|---:|---:|---:|---|:-:|---|')
  let group = ''
  for (const row of summary.rows) {
    if (row.group !== group) {
      group = row.group
      lines.push(`| **${cell(group)}** | | | | | | |`)
    }
    lines.push(`| ${cell(row.label)} | ${cell(row.referenceText)} | ${row.ours === null ? '*not measured*' : `**${cell(row.oursText)}**`} | ` +
      `${row.ratioText} | ${cell(row.targetText)} | ${metCell(row.met)} | ${sourceCell(row.source)} |`)
  }
  lines.push('')
  lines.push('**How to read it.** *Ratio* is how many times better ours is: ours ÷ reference for rates, reference ÷ ours for ' +
    'times, so below 1× is worse. The reference figures are the replaced system\'s own report (its load test; machine, rate and ' +
    'statistic mostly not stated; its p99 is at 50 concurrent webhooks in a closed loop), ours come from this repository\'s ' +
    'benchmarks on the machine below: the ratios compare two different machines and methods, so read them as orders of magnitude. ' +
    'Our rates are medians over each benchmark\'s rounds, our latencies percentiles pooled over all rounds (fixed-rate latencies are ' +
    'measured from when each request was due, so a stall is not hidden); the steadier per-round ratios against same-run baselines ' +
    '(raw inserts, bare Fastify, a raw producer) are in each benchmark\'s section below. Intake rows are the real app as on a node ' +
    'of a multi-node setup (PostgreSQL + Redis, the receipt committed before the answer); end-to-end rows name their variant (nodes, ' +
    'Kafka) and their file. MB = 10^6 bytes.', '')

  const missingRows = summary.rows.filter((row) => row.ours === null)
  lines.push(`**Not measured** (${missingRows.length} of ${summary.rows.length} rows)${missingRows.length === 0 ? ': none.' : ':'}`, '')
  for (const row of missingRows) lines.push(`- ${row.group} — ${row.label}: ${row.notMeasured ?? 'no result'}`)
  if (missingRows.length > 0) lines.push('')

  const m = summary.machine
  const list = (values: Array<string | number>, none = 'not recorded'): string => (values.length === 0 ? none : values.join(' / '))
  lines.push('**Machine** (as each benchmark recorded it).', '')
  lines.push(`- CPU: ${list(m.cpu)}, ${list(m.cores)} cores, RAM ${list(m.ramGb)} GiB; load generators, servers, PostgreSQL, Redis and Kafka share the cores, nothing pinned`)
  lines.push(`- Node ${list(m.node)}; PostgreSQL ${list(m.postgres)} (${Object.entries(m.postgresSettings).map(([k, v]) => `${k}=${v}`).join(', ') || 'settings not recorded'}); ` +
    `Redis ${list(m.redis)}; Kafka broker ${list(m.kafka)} (client @platformatic/kafka ${list(m.kafkaClient)})`)
  lines.push(`- 1-min load average at start → end of each benchmark: ${m.load.map((l) => `${l.benchmark} ` +
    `${l.start === null || l.end === null ? 'not recorded' : `${l.start.toFixed(2)} → ${l.end.toFixed(2)}`}` +
    `${l.date === null ? '' : ` (${l.date}${l.quick === true ? ', quick' : ''})`}`).join('; ') || 'not recorded'}`)
  const describeRun = (run: SuiteRunEntry): string => {
    const steps = (run.steps ?? []).map((s) => `${s.title ?? s.id} ${finite(s.seconds) ? fmtMinutes(s.seconds) : '?'}` +
      `${s.exitCode === 0 ? '' : ` (failed: exit ${s.exitCode ?? 'signal'})`}`)
    return `on ${run.date?.slice(0, 16).replace('T', ' ') ?? '?'} UTC: ` +
      `load average ${finite(run.loadAverage) ? run.loadAverage.toFixed(2) : '?'} before it, ` +
      `${finite(run.busyCores) ? `${run.busyCores.toFixed(2)} cores busy in the last quiet check` : 'quiet check not recorded'}` +
      `${run.quiet === false ? ' (never quiet; ran anyway)' : ''}${run.kafka === undefined ? '' : `; Kafka broker: ${run.kafka}`}; ` +
      `${steps.length === 0 ? 'no steps' : steps.join(', ')}`
  }
  if (summary.lastRun !== null) {
    lines.push(`- Last \`npm run bench${summary.lastRun.quick === true ? ' -- --quick' : ''}\` ${describeRun(summary.lastRun)}`)
  }
  if (summary.lastPartialRun !== null) {
    lines.push(`- ${summary.lastRun === null ? 'Last' : 'After it'}, \`${summary.lastPartialRun.command ?? 'npm run bench -- …'}\` ` +
      describeRun(summary.lastPartialRun))
  }
  lines.push('')
  lines.push('**Commands.**', '', '```sh')
  lines.push('npm run bench                              # every benchmark in turn, then this summary (or: bridge bench)')
  lines.push('npm run bench -- --quick                   # the same with each benchmark\'s --quick')
  lines.push('npm run bench -- --only healthkit,kafka    # some of: healthkit, webhooks-oura, webhooks-whoop, token-refresh, e2e, kafka, e2e-kafka, e2e-3nodes')
  lines.push(`npm run bench -- --soak 10m                # only the soak (bench/soak/run.ts --duration 10m --warmup ${SOAK_WARMUP})`)
  lines.push('npm run bench -- --render-only             # this section, summary.json and summary.svg from the results as they are')
  lines.push('# the steps, in order (each also runs alone; --quick adds what follows the #; the Kafka steps start the broker of')
  lines.push('# scripts/kafka.sh when it is stopped, and stop it again after them):')
  for (const step of STEPS) lines.push(`${`node ${[step.script, ...step.args].join(' ')}`.padEnd(74)} # ${step.quickArgs.join(' ')}`)
  lines.push('```', '')
  lines.push(notes)
  return lines.join('\n').trimEnd() + '\n'
}

// ---------------------------------------------------------------------------------------------------------------
// Chart

export const CHART_SERIES = [
  { id: 'reference', label: 'reference report', color: '#9e9e9e' },
  { id: 'ours', label: 'ours', color: '#2a78c2' },
  { id: 'p50', label: 'ours p50', color: '#8cc0ea' },
  { id: 'p99', label: 'ours p99', color: '#1d4f86' }
] as const

export function summaryChart(summary: Summary): BarChart {
  const groupOf = (row: SummaryRow, bars: PlotGroup['bars']): PlotGroup => {
    const plot = row.plot!
    const group: PlotGroup = { label: plot.label, bars }
    if (row.target !== null) group.marker = { value: row.target * plot.scale, label: `target ${row.targetText}` }
    if (row.ours === null) group.note = 'not measured'
    return group
  }
  const scaled = (value: number | null, scale: number): number | null => (value === null ? null : value * scale)
  const throughput = summary.rows.filter((row) => row.plot?.panel === 'throughput').map((row) => groupOf(row, [
    { series: 'reference', value: scaled(row.reference, row.plot!.scale) },
    { series: 'ours', value: scaled(row.ours, row.plot!.scale) }
  ]))
  const latency = summary.rows.filter((row) => row.plot?.panel === 'latency').map((row) => groupOf(row, [
    { series: 'reference', value: scaled(row.reference, row.plot!.scale) },
    { series: 'p50', value: row.latency?.p50Ms ?? null },
    { series: 'p99', value: row.latency?.p99Ms ?? null }
  ]))
  return {
    title: 'Biometric Bridge against the reference report',
    subtitle: `From bench/results/ on ${summary.generatedAt.slice(0, 10)}; log scales; dashed red: target; grey: the reference's own figure.`,
    series: CHART_SERIES.map((series) => ({ ...series })),
    panels: [
      { title: 'Throughput (per second; more is better)', axisLabel: 'per second, log scale', groups: throughput, format: (value) => `${fmtInt(value)}/s` },
      {
        title: 'Latency (ms; less is better; reference: its p99 or time per batch)', axisLabel: 'milliseconds, log scale', groups: latency,
        format: fmtLatency
      }
    ]
  }
}

export const renderSummarySvg = (summary: Summary): string => renderBarChart(summaryChart(summary))
