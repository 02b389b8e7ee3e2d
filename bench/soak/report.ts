/** The "Soak" section of docs/benchmarks.md, from a soak's results (bench/soak/run.ts). */
import { fmtInt, fmtMs } from '../lib/stats.ts'
import type { Cores, SoakResult, WindowRow } from './run.ts'
import { KEEP_UP_SECONDS, MIN_POINTS, P99_NOISE_FLOOR, P99_NOISE_SE, RSS_GROWTH_LIMIT, type Trend } from './trend.ts'

/** The issue's targets: RSS ≤ 300 MB under load; flat p99 and RSS (judged in trend.ts). */
export const SOAK_TARGETS = { rssMaxMb: 300 } as const

/** The series the verdict is about (run.ts); the others are reported to explain them. */
const JUDGED = new Set(['bridge RSS', 'intake p99', 'end-to-end p99'])

const mark = (ok: boolean): string => ok ? '✅' : '❌'
const fmtMb = (value: number): string => Number.isFinite(value) ? value.toFixed(0) : '—'
const fmtLatency = (value: number): string => !Number.isFinite(value) ? '—' : value >= 1000 ? fmtInt(value) : fmtMs(value)
/** Bridge / its PostgreSQL backends / this process / the rest of the machine (other work, PostgreSQL's background). */
const fmtCores = (cores: Cores): string =>
  `${cores.bridge.toFixed(2)} / ${cores.postgres.toFixed(2)} / ${cores.bench.toFixed(2)} / ${Math.max(0, cores.machine - cores.bridge - cores.postgres - cores.bench).toFixed(2)}`
const clock = (seconds: number): string => `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, '0')}`
const minutes = (ms: number): string => ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(0)} s`

function windowLine(row: WindowRow, warmupS: number): string {
  const label = `${clock(row.startS)}–${clock(row.endS)}${row.startS < warmupS ? ' (warm-up)' : ''}`
  const refused = row.refused > 0 ? ` (${fmtInt(row.refused)} refused)` : ''
  return `| ${label} | ${fmtInt(row.accepted)} / ${fmtInt(row.due)}${refused} | ${fmtLatency(row.intakeP50Ms)} / ${fmtLatency(row.intakeP99Ms)} | ` +
    `${fmtInt(row.done)} | ${fmtLatency(row.endToEndP50Ms)} / ${fmtLatency(row.endToEndP99Ms)} | ${fmtInt(row.backlog)} | ` +
    `${fmtMb(row.rssMeanMb)} / ${fmtMb(row.rssMaxMb)} | ${fmtMb(row.heapUsedMeanMb)} / ${fmtMb(row.heapAfterMajorGcMb)} | ${fmtLatency(row.lagP99Ms)} / ${fmtLatency(row.lagMaxMs)} | ` +
    `${fmtCores(row.cores)} |`
}

/** One decimal below 100, whole numbers with separators above. */
const fmtValue = (value: number): string => !Number.isFinite(value) ? '—' : Math.abs(value) >= 100 ? fmtInt(value) : value.toFixed(1)

function trendLine(trend: Trend): string {
  const sign = trend.growthPer10Min >= 0 ? '+' : ''
  const judged = JUDGED.has(trend.name)
  const verdict = !judged ? `${trend.verdict} (reported, not judged)` : trend.verdict === 'flat' ? '**flat**' : `**${trend.verdict}**`
  return `| ${trend.name} | ${fmtValue(trend.mean)} ${trend.unit} | ${sign}${fmtValue(trend.growthPer10Min)} ${trend.unit} ` +
    `(${sign}${fmtValue(trend.growthPer10MinRelative * 100)} %) | ${fmtValue(trend.allowedPer10Min)} ${trend.unit} (${trend.rule}) | ${verdict} |`
}

function vacuumText(r: SoakResult): string {
  const v = r.vacuum
  if (v.serverAutovacuum) return 'PostgreSQL runs its own autovacuum.'
  if (!v.emulated) return '**Autovacuum is off on this server and the stand-in was disabled (`--no-vacuum`): dead tuples piled up over the run.**'
  const byTable = new Map<string, { count: number, ms: number }>()
  for (const run of v.runs) {
    const entry = byTable.get(run.table) ?? { count: 0, ms: 0 }
    entry.count++
    entry.ms += run.ms
    byTable.set(run.table, entry)
  }
  const list = [...byTable].sort((a, b) => b[1].ms - a[1].ms).slice(0, 4)
    .map(([table, entry]) => `${table} ${entry.count}× (${(entry.ms / 1000).toFixed(1)} s)`).join(', ')
  return 'Autovacuum is off on this server (its CI configuration), and without it dead receipt versions pile up and PostgreSQL\'s cost ' +
    'per notification climbs for reasons no production server has; so the soak applies autovacuum\'s rule to its own database ' +
    '(`bench/soak/vacuum.ts`: every `autovacuum_naptime`, VACUUM/ANALYZE of each table past the autovacuum thresholds, throttled by the ' +
    `autovacuum cost settings; \`--no-vacuum\` turns it off): ${v.passes === 0 ? 'the run ended before its first check, one naptime after set-up' : v.runs.length === 0 ? `no table passed the thresholds in ${v.passes} checks` : `${v.runs.length} runs in ${v.passes} checks, ${list}`}.`
}

export function renderSoakSection(r: SoakResult, notes: string): string {
  const s = r.settings
  const o = r.overall
  const l = r.loss
  const m = r.machine
  const warmupS = s.warmupMs / 1000
  // Results written before --warmup existed have no timeline: their warm-up was part of the duration.
  const timeline = s.timelineMs ?? s.durationMs
  const windowS = s.windowMs / 1000
  const rssTrend = r.trends.find((trend) => trend.name === 'bridge RSS')
  const lossLine = l.ok
    ? `none: ${fmtInt(l.sent)} sent = ${fmtInt(l.accepted)} answered \`accepted\` = ${fmtInt(l.receiptsByStatus.done ?? 0)} receipts \`done\` = ` +
      `${fmtInt(l.documentsWithEvents)} documents with events${l.kafka === null ? '' : ` = ${fmtInt(l.kafka.documentsPublished)} documents published`}; ` +
      `no duplicate answers, receipts${l.kafka === null ? '' : ' or messages'}`
    : `**${l.problems.join('; ')}**`
  const kafkaLine = l.kafka === null ? '' : `\n| Kafka | topic ${fmtInt(l.kafka.topicMessages)} messages, ${fmtInt(l.kafka.distinctEventIds)} distinct events ` +
    `(outbox ${fmtInt(l.kafka.outboxPublished)} published, ${fmtInt(l.kafka.outboxPending)} pending, ${fmtInt(l.kafka.outboxDeadLettered)} dead-lettered) |`
  const verdictText = r.verdict.flat
    ? `**flat**: RSS and p99 show no growth beyond the thresholds${r.verdict.indicative ? ' (short run: the fit covers under 5 minutes, so the growth per 10 minutes is an extrapolation — indicative only)' : ''}`
    : `**not flat**: RSS ${r.verdict.rss}, p99 ${r.verdict.p99}${r.verdict.indicative ? ' (short run: indicative only)' : ''}`

  return `## Soak

Generated by \`bench/soak/run.ts\` on ${m.date.slice(0, 10)}: ${m.cpu}, ${m.cores} cores, ${m.ramGb} GB RAM, Node ${m.node}, PostgreSQL ${m.postgres}. Raw data: \`bench/results/soak.json\` (with the 5-s memory samples).

\`\`\`sh
${r.command}
npm run bench:soak -- --duration 10m --warmup 6m       # the 10-minute soak at 250/s after 6 minutes of warm-up (~${Math.ceil(16 + (r.setupMs + r.drainMs + r.checkMs) / 60_000 + 0.5)} min in all; also npm run bench -- --soak 10m)
node bench/soak/run.ts --duration 60s --rate 200 --no-write   # quick check; add --redis, --kafka
\`\`\`

**Method.** One bridge process (the real app: \`createApp\` + \`listen\`, as \`bridge serve\`) on a scratch PostgreSQL database, ${s.redis ? 'Redis' : 'the in-process cache (no Redis)'}, ${s.kafka ? 'Kafka (a fresh 16-partition topic; the outbox relay publishes)' : 'no Kafka (events stay in the outbox)'}, ${s.workers} workers (\`MAX_CONCURRENT_WEBHOOKS\`), backfill and reconciliation off, the Oura request budget lifted${Object.keys(s.bridgeEnv).length === 0 ? '' : ` (extra environment: ${Object.entries(s.bridgeEnv).map(([key, value]) => `\`${key}=${value}\``).join(', ')})`}${s.nodeOptions.length === 0 ? '' : ` (Node flags: \`${s.nodeOptions.join(' ')}\`)`}. The Oura simulator runs in the benchmark process with ${fmtInt(s.users)} users connected through the real OAuth flow and serves every fetch. An open-loop generator sends **${fmtInt(s.ratePerSecond)} signed notifications per second for ${timeline === s.durationMs ? minutes(s.durationMs) : `${minutes(s.warmupMs)} of warm-up and then the measured ${minutes(s.durationMs)}`}** on an absolute timeline (${fmtInt(l.sent)} in all); each names a new document (a copy of one of the user's generated documents under a new id: ${r.mix.join(', ')} in turn, create/update alternating; a sleep also makes the bridge fetch the night's heart-rate rows, which are new events only the first time a night comes up — 7 days of history per user keep that burst inside the warm-up), so every notification is its own receipt, fetch and events. Everything shares ${m.cores} cores: bridge, PostgreSQL, simulator and generator.

Per ${windowS}-s window: *intake* = answer time of the notifications due in the window, measured from when each was due; *done* = receipts finished in the window; *end to end* = \`finished_at − received_at\` of the receipts received in the window (events and outbox rows committed); *backlog* = pending receipts at the window's end; RSS and heap used = mean (and max) of the bridge's 5-s samples; *live* heap = heap used right after the last major GC by the window's end (heap used includes garbage V8 has not collected yet); *lag* = event-loop delay inside the bridge (\`monitorEventLoopDelay\`, 10 ms timer, minus the 10 ms); CPU in cores: bridge / its PostgreSQL backends / benchmark process (simulator + generator) / everything else on the machine (PostgreSQL's background processes, and any outside work — which disturbs the figures). After the load the backlog is drained${s.kafka ? ' and the outbox published' : ''}, then the loss check runs. ${vacuumText(r)}

**Trend rule.** Per series, a least-squares line through the windows after the first ${minutes(s.warmupMs)} (${timeline === s.durationMs ? 'warm-up; a quarter of runs shorter than 4 minutes' : '`--warmup`: on the in-process cache a node fills its bounded caches — series points, dedup claims — for about 6 minutes at 250/s before its memory levels off, and filling towards a bound is not a leak'}); its slope × 10 is the growth per 10 minutes. RSS is flat when that growth is below ${RSS_GROWTH_LIMIT * 100} % of its mean. A p99 (intake and end to end) is flat when its growth is within noise: at most the larger of ${P99_NOISE_SE} standard errors of the fitted growth (from the windows' scatter around the line) and ${P99_NOISE_FLOOR * 100} % of its median; a falling series is flat. Fewer than ${MIN_POINTS} windows after the warm-up give no verdict.

| Window | Accepted / due | Intake p50 / p99 ms | Done | End to end p50 / p99 ms | Backlog | RSS mean / max MB | Heap used / live MB | Lag p99 / max ms | CPU cores: bridge / PG / bench / other |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${r.windows.map((row) => windowLine(row, warmupS)).join('\n')}
| drain (${(r.drain.durationMs / 1000).toFixed(1)} s${r.drain.timedOut ? ', **timed out**' : ''}) | — | — | ${fmtInt(r.drain.done)} | — | ${fmtInt(r.drain.backlogAtStart)} at start | — / ${fmtMb(r.drain.rssMaxMb)} | — | ${fmtLatency(r.drain.lagP99Ms)} / ${fmtLatency(r.drain.lagMaxMs)} | — |
| **all** | **${fmtInt(l.accepted)} / ${fmtInt(l.sent)}** | **${fmtLatency(o.intakeP50Ms)} / ${fmtLatency(o.intakeP99Ms)}** | **${fmtInt(l.receiptsByStatus.done ?? 0)}** | **${fmtLatency(o.endToEndP50Ms)} / ${fmtLatency(o.endToEndP99Ms)}** | max ${fmtInt(o.backlogMax)} | max **${fmtMb(o.rssMaxMb)}** (peak ${fmtMb(o.peakRssMb)}) | max ${fmtMb(o.heapUsedMaxMb)} / ${fmtMb(r.windows.at(-1)?.heapAfterMajorGcMb ?? Number.NaN)} at the end | ${fmtLatency(o.lagP99MaxMs)} / ${fmtLatency(o.lagMaxMs)} | ${fmtCores(o.cores)} |

Intake p99.9 ${fmtLatency(o.intakeP999Ms)} ms, max ${fmtLatency(o.intakeMaxMs)} ms; the generator wrote requests at most ${fmtLatency(o.sendLagP99Ms)} ms (p99) after they were due; end-to-end max ${fmtLatency(o.endToEndMaxMs)} ms. Run: set-up ${(r.setupMs / 1000).toFixed(0)} s, load ${minutes(r.loadMs)}, drain ${(r.drainMs / 1000).toFixed(1)} s, checks ${(r.checkMs / 1000).toFixed(0)} s; the machine was ${r.quietAtStart.quiet ? 'quiet' : '**busy**'} before the load (${r.quietAtStart.busyCores.toFixed(2)} cores of other work).

| Series (after warm-up) | Mean | Growth per 10 min | Allowed | Verdict |
|---|---:|---:|---:|---|
${r.trends.map(trendLine).join('\n')}

| Target | Result |
|---|---|
| RSS ≤ ${SOAK_TARGETS.rssMaxMb} MB under load | ${mark(r.verdict.rssTargetMet)} max ${fmtMb(o.rssMaxMb)} MB (5-s samples; getrusage peak ${fmtMb(o.peakRssMb)} MB; ${fmtMb(r.atRest.rssMb)} MB at rest before the load, heap ${fmtMb(r.atRest.heapUsedMb)} MB) |
| Flat RSS over the soak | ${mark(r.verdict.rss === 'flat')} ${r.verdict.rss}${rssTrend === undefined ? '' : ` (${rssTrend.growthPer10Min >= 0 ? '+' : ''}${fmtValue(rssTrend.growthPer10Min)} MB per 10 min)`} |
| Flat p99 over the soak | ${mark(r.verdict.p99 === 'flat')} ${r.verdict.p99} (intake and end to end) |
| Keeps up with ${fmtInt(s.ratePerSecond)}/s | ${mark(r.verdict.keptUp)} ${fmtInt(r.windows.at(-1)?.backlog ?? 0)} receipts pending at the end of the load (at most ${KEEP_UP_SECONDS} s of arrivals = ${fmtInt(s.ratePerSecond * KEEP_UP_SECONDS)} allowed)${r.verdict.keptUp ? '' : ': end-to-end latency measured the queue'} |
| No loss | ${mark(l.ok)} ${lossLine} |${kafkaLine}

Verdict: ${verdictText}.

${notes}
`
}
