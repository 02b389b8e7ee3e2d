import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { createApp, type App } from '../app.ts'
import type { Config } from '../config/load.ts'
import { METRIC_NAMES } from '../domain/catalog.ts'
import { SOURCES } from '../domain/event.ts'
import { createLogger } from '../lib/logger.ts'
import { createIphoneSimulator } from '../simulators/iphone.ts'
import type { OuraSimulator } from '../simulators/oura/index.ts'
import { createOuraDemoSimulator, startOuraDemoCloud } from '../simulators/oura-demo.ts'
import { WHOOP_PER_DAY, WHOOP_PER_MINUTE, type WhoopSimulator } from '../simulators/whoop/index.ts'
import { createWhoopDemoSimulator, startWhoopDemoCloud } from '../simulators/whoop-demo.ts'
import { addCounts, ProgressBoard, ZERO_COUNTS, type OutcomeCounts, type StreamProgress } from '../simulators/progress.ts'
import type { Simulator, SimulatorOutcome } from '../simulators/simulator.ts'
import type { CliIo } from './main.ts'

export interface DemoOptions {
  days: number
  keepRunning: boolean
}

/** Fixed, so every run tells the same story (timestamps move with the clock, values and uuids do not). */
const DEMO_SEED = 20_260_107
/** Repeats of a signal within this window are one request: under `npm run` one Ctrl-C arrives twice. */
const SIGNAL_REPEAT_WINDOW_MS = 1000
const TTY_REDRAW_MS = 80
const PLAIN_PROGRESS_MS = 2000
/** Nights listed in the sleep table; longer runs show the most recent ones. */
const SLEEP_TABLE_NIGHTS = 7

/**
 * Every simulator the demo runs side by side, here one person wearing an Apple Watch, an Oura ring and a WHOOP
 * band: all three feed the same bridge user, which keeps the sources apart.
 */
function createSimulators(options: DemoOptions, nowMs: number, oura: OuraSimulator, whoop: WhoopSimulator): Simulator[] {
  const iphone = createIphoneSimulator({ seed: DEMO_SEED, days: options.days, nowMs })
  const userId = iphone.userIds[0] ?? 'demo-user'
  const ouraUserId = oura.userIds()[0]
  if (ouraUserId === undefined) throw new Error('the simulated Oura cloud has no wearer')
  const whoopUserId = whoop.userIds()[0]
  if (whoopUserId === undefined) throw new Error('the simulated WHOOP cloud has no member')
  return [iphone, createOuraDemoSimulator({ sim: oura, userId, ouraUserId }), createWhoopDemoSimulator({ sim: whoop, userId, whoopUserId })]
}

class DemoInterrupted extends Error {
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.name = 'DemoInterrupted'
  }
}

/**
 * `bridge demo`: the bridge on embedded defaults, simulators sending realistic traffic to it over HTTP, a live
 * progress view, and a summary read back from storage. Returns the exit code.
 */
export async function runDemo(config: Config, options: DemoOptions, io: CliIo): Promise<number> {
  const startedAtMs = performance.now()
  const out = (text = ''): void => { io.stdout.write(`${text}\n`) }
  const style = createStyle(io.isTty && io.env.NO_COLOR === undefined)
  const tokenFromEnv = config.adminApiToken !== undefined
  const adminToken = config.adminApiToken ?? `demo_${randomBytes(24).toString('base64url')}`
  const signals = listenForSignals(io)

  let app: App | undefined
  let oura: OuraSimulator | undefined
  let whoop: WhoopSimulator | undefined
  try {
    out(style.bold('Biometric Bridge demo'))
    const storage = config.databaseUrl !== undefined ? 'PostgreSQL (DATABASE_URL)'
      : config.dataDir === 'memory://' ? 'embedded PGlite, in memory' : `embedded PGlite in ${config.dataDir}`
    // Logs go to stderr so they never tear the progress view on stdout.
    const logger = createLogger({ level: config.logLevel, format: config.logFormat, destination: io.stderr })
    const nowMs = Date.now()
    // The simulated Oura and WHOOP clouds start first: the bridge is configured with their URLs and app
    // credentials, exactly as with OURA_API_URL, OURA_AUTHORIZE_URL, WHOOP_API_URL and the CLIENT_ID/SECRET pairs
    // against the real ones.
    oura = await startOuraDemoCloud({ seed: DEMO_SEED, days: options.days, nowMs })
    whoop = await startWhoopDemoCloud({ seed: DEMO_SEED, days: options.days, nowMs })
    // The OAuth redirect URI is derived from PUBLIC_BASE_URL, which the app takes at creation, while PORT=0
    // reveals the port only after listen. So a free port is picked first and the bridge binds it: the simplest
    // way for the callback URL to be the bridge's real address. (Another process grabbing the port in between
    // fails the demo with EADDRINUSE.) The demo follows the redirect itself, as the user's browser would.
    const port = config.port === 0 ? await reservePort(config.host) : config.port
    app = await createApp({
      ...config,
      adminApiToken: adminToken,
      port,
      publicBaseUrl: clientUrl(`http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`),
      oura: {
        clientId: oura.clientId,
        clientSecrets: [oura.clientSecret],
        webhookVerificationToken: randomBytes(24).toString('base64url'),
        apiUrl: oura.baseUrl,
        authorizeUrl: oura.authorizeUrl,
        requestsPer5Min: 5000
      },
      // WHOOP's real limits, which the simulated API enforces too.
      whoop: {
        clientId: whoop.clientId,
        clientSecrets: [whoop.clientSecret],
        apiUrl: whoop.baseUrl,
        requestsPerMinute: WHOOP_PER_MINUTE,
        requestsPerDay: WHOOP_PER_DAY
      },
      // The Oura wearer's history is the `days` days before yesterday (yesterday arrives live, see oura-demo.ts),
      // and a backfill reaches back whole days from now: one more day reaches the start of that history. The WHOOP
      // member's `days` + 1 nights end by this morning; the oldest began within that reach plus the day of margin
      // the bridge adds to WHOOP range queries.
      backfillDays: options.days + 1
    }, { logger })
    const baseUrl = clientUrl(await app.listen())
    out(`  bridge     ${baseUrl}  (${storage}, log level ${config.logLevel})`)
    out(`  oura       ${oura.baseUrl}  (simulated Oura cloud: OAuth consent, API v2, signed webhooks)`)
    out(`  whoop      ${whoop.baseUrl}  (simulated WHOOP cloud: OAuth consent, API v2, signed webhooks)`)
    signals.throwIfInterrupted()

    const simulators = createSimulators(options, nowMs, oura, whoop)
    for (const simulator of simulators) {
      out(`  simulator  ${simulator.title}: ${options.days} day${options.days === 1 ? '' : 's'} for user ${simulator.userIds[0] ?? '?'}`)
    }
    out()

    const board = new ProgressBoard()
    const view = io.isTty ? createTtyView(board, simulators, io, style) : createPlainView(board, io)
    let outcomes: SimulatorOutcome[]
    try {
      outcomes = await runSimulators(simulators, board, baseUrl, adminToken, signals.signal)
    } finally {
      view.stop()
    }
    out()
    await printSummary(app, simulators, outcomes, board, out, style)
    out()
    printTryIt(baseUrl, tokenFromEnv ? '$ADMIN_API_TOKEN' : adminToken, simulators[0]?.userIds[0] ?? 'demo-user', out, style, options.keepRunning)
    out()

    const elapsedSeconds = ((performance.now() - startedAtMs) / 1000).toFixed(1)
    if (options.keepRunning) {
      out(`Demo finished in ${elapsedSeconds} s. ${style.bold(`Serving at ${baseUrl}`)}; press Ctrl-C to stop.`)
      const signal = await signals.stopped
      out(`${signal}: stopping the bridge…`)
    } else {
      out(`Demo finished in ${elapsedSeconds} s; stopping the bridge (use --keep-running to keep it serving).`)
    }
    const stopped = await stopApp(app, config.shutdownTimeoutMs, io)
    app = undefined
    if (!stopped) {
      io.stderr.write('demo: the bridge did not stop cleanly\n')
      return 1
    }
    return 0
  } catch (error) {
    if (error instanceof DemoInterrupted || signals.signal.aborted) {
      io.stderr.write(`\ndemo: ${error instanceof DemoInterrupted ? error.message : 'interrupted'}; stopping the bridge\n`)
    } else {
      io.stderr.write(`\ndemo failed: ${describeFailure(error)}\n`)
    }
    return 1
  } finally {
    if (app !== undefined) await stopApp(app, config.shutdownTimeoutMs, io)
    // After the bridge: its worker may still be fetching from the simulated clouds until it stops.
    if (oura !== undefined) await oura.close()
    if (whoop !== undefined) await whoop.close()
    signals.dispose()
  }
}

async function runSimulators(
  simulators: readonly Simulator[], board: ProgressBoard, baseUrl: string, adminToken: string, signal: AbortSignal
): Promise<SimulatorOutcome[]> {
  // One failing simulator stops the others, so nothing keeps sending to a bridge that is about to stop.
  const failed = new AbortController()
  const combined = AbortSignal.any([signal, failed.signal])
  let firstFailure: { simulator: Simulator, error: unknown } | undefined
  const results = await Promise.allSettled(simulators.map(async (simulator) => {
    try {
      return await simulator.run({ baseUrl, adminToken, progress: board.reporter(simulator.name), signal: combined })
    } catch (error) {
      if (!combined.aborted) {
        firstFailure = { simulator, error }
        failed.abort(error)
      }
      throw error
    }
  }))
  if (signal.aborted) throw signal.reason
  if (firstFailure !== undefined) {
    throw new Error(`${firstFailure.simulator.title}: ${describeFailure(firstFailure.error)}`, { cause: firstFailure.error })
  }
  return results.map((result) => {
    if (result.status === 'rejected') throw result.reason
    return result.value
  })
}

interface Signals {
  /** Aborted by the first SIGINT or SIGTERM. */
  signal: AbortSignal
  /** Resolves with the first signal. */
  stopped: Promise<NodeJS.Signals>
  throwIfInterrupted(): void
  dispose(): void
}

function listenForSignals(io: CliIo): Signals {
  const controller = new AbortController()
  let resolveStopped: (signal: NodeJS.Signals) => void = () => {}
  const stopped = new Promise<NodeJS.Signals>((resolve) => { resolveStopped = resolve })
  let firstSignalAtMs: number | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    const nowMs = Date.now()
    if (firstSignalAtMs !== undefined) {
      if (nowMs - firstSignalAtMs < SIGNAL_REPEAT_WINDOW_MS) return
      io.stderr.write('demo: second signal, exiting immediately\n')
      process.exit(1)
    }
    firstSignalAtMs = nowMs
    controller.abort(new DemoInterrupted(signal))
    resolveStopped(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    signal: controller.signal,
    stopped,
    throwIfInterrupted: () => { controller.signal.throwIfAborted() },
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

/**
 * Graceful stop; false when a step failed. Like `serve`, a stop that outlasts SHUTDOWN_TIMEOUT_MS exits the
 * process with 1: whatever hangs would otherwise keep the demo alive forever.
 */
async function stopApp(app: App, timeoutMs: number, io: CliIo): Promise<boolean> {
  const deadline = setTimeout(() => {
    io.stderr.write(`demo: the bridge did not stop within ${timeoutMs} ms; exiting\n`)
    process.exit(1)
  }, timeoutMs)
  deadline.unref()
  try {
    await app.stop()
    return true
  } catch {
    return false
  } finally {
    clearTimeout(deadline)
  }
}

/** A port free on `host` right now: bound with port 0, read, released. */
async function reservePort(host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => { resolve() })
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** The address the bridge bound, as a client reaches it (a wildcard bind is reached through loopback). */
function clientUrl(address: string): string {
  const url = new URL(address)
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1'
  if (url.hostname === '[::]') url.hostname = '[::1]'
  return url.origin
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  if (code === 'EADDRINUSE') return `${error.message} (pick another port with --port or PORT)`
  return error.name === 'Error' || error.name === 'SimulatorError' || error.name === 'BridgeError'
    ? error.message
    : `${error.name}: ${error.message}`
}

// ---------------------------------------------------------------------------------------------- rendering

interface Style {
  bold(text: string): string
  dim(text: string): string
  green(text: string): string
  red(text: string): string
  yellow(text: string): string
}

function createStyle(enabled: boolean): Style {
  const wrap = (open: number, close: number) => (text: string): string => enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text
  return { bold: wrap(1, 22), dim: wrap(2, 22), green: wrap(32, 39), red: wrap(31, 39), yellow: wrap(33, 39) }
}

const count = (n: number): string => n.toLocaleString('en-US')

function streamCells(stream: StreamProgress, style: Style): string {
  const cells = [`stored ${count(stream.accepted)}`]
  if (stream.duplicates > 0) cells.push(`dup ${count(stream.duplicates)}`)
  if (stream.ignored > 0) cells.push(style.dim(`ignored ${count(stream.ignored)}`))
  if (stream.rejected > 0) cells.push(style.red(`rejected ${count(stream.rejected)}`))
  if (stream.deleted > 0) cells.push(style.yellow(`deleted ${count(stream.deleted)}`))
  return cells.join(' · ')
}

/** Cuts a styled line to `width` visible characters, keeping escape sequences whole. */
function fitWidth(line: string, width: number): string {
  let visible = 0
  let result = ''
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\u001b') {
      // CSI sequence: ESC [ parameters, ended by a letter.
      let end = i + 1
      while (end < line.length && !/[A-Za-z]/.test(line[end] ?? '')) end++
      result += line.slice(i, end + 1)
      i = end
      continue
    }
    if (visible === width) return `${result}\u001b[0m`
    result += line[i] ?? ''
    visible++
  }
  return result
}

interface ProgressView {
  /** Renders the final state and releases the terminal. */
  stop(): void
}

/** A block of lines redrawn in place: one per stream, grouped by simulator, with a bar. */
function createTtyView(board: ProgressBoard, simulators: readonly Simulator[], io: CliIo, style: Style): ProgressView {
  // A pseudo-terminal without a window size reports 0 columns.
  const columns = (io.stdout as { columns?: number }).columns || 100
  const barWidth = columns >= 100 ? 24 : columns >= 80 ? 12 : 0
  let printedLines = 0
  let dirty = true
  const render = (): void => {
    if (!dirty) return
    dirty = false
    const lines: string[] = []
    const streams = board.streams()
    for (const simulator of simulators) {
      lines.push(`  ${style.bold(simulator.title)}`)
      for (const stream of streams.filter((s) => s.simulator === simulator.name)) {
        const share = stream.plannedItems === 0 ? 1 : Math.min(1, stream.sentItems / stream.plannedItems)
        const filled = Math.round(share * barWidth)
        const bar = barWidth === 0 ? '' : `${style.green('█'.repeat(filled))}${style.dim('░'.repeat(barWidth - filled))} `
        const mark = stream.done ? style.green('✓') : ' '
        const amount = `${count(stream.sentItems)}/${count(stream.plannedItems)}`.padStart(13)
        lines.push(`  ${mark} ${stream.label.padEnd(18)} ${bar}${amount}  ${streamCells(stream, style)}`)
      }
    }
    const totals = board.totals()
    lines.push(style.dim(`    ${count(totals.requests)} requests · ${count(totals.sentItems)}/${count(totals.plannedItems)} items sent`))
    let text = printedLines > 0 ? `\x1b[${printedLines}A` : ''
    // A wrapped line would break the cursor arithmetic of the next redraw.
    for (const line of lines) text += `\x1b[2K${fitWidth(line, columns - 1)}\n`
    io.stdout.write(text)
    printedLines = lines.length
  }
  const unsubscribe = board.onChange(() => { dirty = true })
  io.stdout.write('\x1b[?25l')
  render()
  const timer = setInterval(render, TTY_REDRAW_MS)
  timer.unref()
  return {
    stop: () => {
      clearInterval(timer)
      unsubscribe()
      dirty = true
      render()
      io.stdout.write('\x1b[?25h')
    }
  }
}

/** For logs and pipes: one line per finished stream, and a progress line every few seconds. */
function createPlainView(board: ProgressBoard, io: CliIo): ProgressView {
  const plain = createStyle(false)
  const reported = new Set<string>()
  const report = (stream: StreamProgress): void => {
    const key = `${stream.simulator}/${stream.stream}`
    if (!stream.done || reported.has(key)) return
    reported.add(key)
    const items = `${count(stream.sentItems)} item${stream.sentItems === 1 ? '' : 's'}`
    const requests = `${count(stream.requests)} request${stream.requests === 1 ? '' : 's'}`
    io.stdout.write(`  done ${stream.simulator} ${stream.label}: ${items} in ${requests} · ${streamCells(stream, plain)}\n`)
  }
  const unsubscribe = board.onChange(report)
  let lastSent = 0
  const timer = setInterval(() => {
    const totals = board.totals()
    if (totals.sentItems === lastSent) return
    lastSent = totals.sentItems
    io.stdout.write(`  progress: ${count(totals.sentItems)}/${count(totals.plannedItems)} items sent in ${count(totals.requests)} requests\n`)
  }, PLAIN_PROGRESS_MS)
  timer.unref()
  return {
    stop: () => {
      clearInterval(timer)
      unsubscribe()
      for (const stream of board.streams()) report(stream)
    }
  }
}

// ------------------------------------------------------------------------------------------------ summary

interface MetricRow {
  source: string
  metric: string
  unit: string
  n: number
  min: number
  avg: number
  max: number
  first: Date | string
  last: Date | string
  tz_offset: number
}

const SOURCE_TITLES: Readonly<Record<string, string>> = { healthkit: 'HealthKit', oura: 'Oura', whoop: 'WHOOP' }
/** What a simulator's progress items are, for its traffic line. */
const ITEM_NOUNS: Readonly<Record<string, string>> = {
  iphone: 'samples and data points', oura: 'documents and notifications', whoop: 'documents and notifications'
}
/** Simulators that play a webhook provider, named as the provider is in `webhook_receipts`. */
const RECEIPT_PROVIDERS: ReadonlySet<string> = new Set(['oura', 'whoop'])

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** `Jan 06 23:31` in the zone the measurement was taken in. */
function localTime(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * 60_000)
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${MONTHS[local.getUTCMonth()] ?? '?'} ${pad(local.getUTCDate())} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}`
}

function zoneName(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+'
  const abs = Math.abs(offsetMinutes)
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
}

function formatValue(value: number, unit: string): string {
  if (unit === 'count' || Math.abs(value) >= 1000) return count(Math.round(value))
  return value.toFixed(1)
}

function minutesAsHours(minutes: number): string {
  const rounded = Math.round(minutes)
  return `${Math.floor(rounded / 60)}h${String(rounded % 60).padStart(2, '0')}`
}

function table(rows: readonly string[][], alignRight: readonly boolean[]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  return rows.map((row) => row.map((cell, column) => {
    const width = widths[column] ?? 0
    return alignRight[column] === true ? cell.padStart(width) : cell.padEnd(width)
  }).join('  ').trimEnd())
}

const SLEEP_STAGE_METRICS = ['light_sleep_minutes', 'deep_sleep_minutes', 'rem_sleep_minutes', 'awake_minutes'] as const

async function printSummary(
  app: App, simulators: readonly Simulator[], outcomes: readonly SimulatorOutcome[], board: ProgressBoard,
  out: (text?: string) => void, style: Style
): Promise<void> {
  const metricOrder = new Map<string, number>(METRIC_NAMES.map((name, index) => [name, index]))
  const sourceOrder = new Map<string, number>(SOURCES.map((name, index) => [name, index]))
  const metricRows = async (userId: string): Promise<MetricRow[]> => {
    const { rows } = await app.db.query<MetricRow>(
      `SELECT source, metric, unit, count(*)::int AS n, min(value) AS min, avg(value) AS avg, max(value) AS max,
              min(start_at) AS first, max(end_at) AS last, max(tz_offset_min)::int AS tz_offset
       FROM events WHERE user_id = $1 GROUP BY source, metric, unit`, [userId])
    // HealthKit first: the sources in the order the demo introduces them.
    const rank = (source: string): number => source === 'healthkit' ? -1 : sourceOrder.get(source) ?? 99
    return rows.sort((a, b) => rank(a.source) - rank(b.source) || (metricOrder.get(a.metric) ?? 99) - (metricOrder.get(b.metric) ?? 99))
  }

  // Simulators may share a user (one person, several devices): each user is listed once.
  const mainUsers = [...new Set(simulators.flatMap((simulator) => simulator.userIds.slice(0, 1)))]
  const otherUsers = [...new Set(simulators.flatMap((simulator) => simulator.userIds.slice(1)))].filter((user) => !mainUsers.includes(user))
  for (const userId of mainUsers) {
    const rows = await metricRows(userId)
    const offset = rows[0] === undefined ? 0 : Number(rows[0].tz_offset)
    const events = (list: readonly MetricRow[]): number => list.reduce((sum, row) => sum + Number(row.n), 0)
    const sources = [...new Set(rows.map((row) => row.source))]
    out(style.bold(`Stored for user ${userId}: ${count(events(rows))} events from ${sources.length} source${sources.length === 1 ? '' : 's'}`) +
      style.dim(`  (times ${zoneName(offset)})`))
    const cells = [['metric', 'events', 'min', 'avg', 'max', 'unit', 'from', 'to']]
    for (const row of rows) {
      cells.push([
        row.metric, count(Number(row.n)),
        formatValue(Number(row.min), row.unit), formatValue(Number(row.avg), row.unit), formatValue(Number(row.max), row.unit),
        row.unit, localTime(new Date(row.first).getTime(), offset), localTime(new Date(row.last).getTime(), offset)
      ])
    }
    // One table, so the columns line up across sources; a heading per source.
    const lines = table(cells, [false, true, true, true, true, false, false, false])
    for (const source of sources) {
      const ofSource = rows.filter((row) => row.source === source)
      out(`  ${style.bold(SOURCE_TITLES[source] ?? source)}: ${count(events(ofSource))} events in ${ofSource.length} metrics`)
      out(`    ${style.dim(lines[0] ?? '')}`)
      rows.forEach((row, index) => { if (row.source === source) out(`    ${lines[index + 1] ?? ''}`) })
    }
    out()
    await printSleepTable(app, userId, out, style)
  }
  for (const userId of otherUsers) {
    const other = await metricRows(userId)
    const events = other.reduce((sum, row) => sum + Number(row.n), 0)
    out(`Stored for user ${userId}: ${count(events)} events (${other.map((row) => row.metric).join(', ') || 'none'})`)
  }
  out()

  out(style.bold('Traffic') + style.dim('  (counted from the bridge\'s answers)'))
  const streams = board.streams()
  for (const [index, simulator] of simulators.entries()) {
    const outcome = outcomes[index]
    const own = streams.filter((stream) => stream.simulator === simulator.name)
    const counts = own.reduce<OutcomeCounts>((sum, stream) => addCounts(sum, stream), { ...ZERO_COUNTS })
    const requests = own.reduce((sum, stream) => sum + stream.requests, 0)
    const items = own.reduce((sum, stream) => sum + stream.sentItems, 0)
    out(`  ${style.bold(simulator.title)}: ${count(requests)} requests, ${count(items)} ${ITEM_NOUNS[simulator.name] ?? 'items'}`)
    out(`    totals: accepted ${count(counts.accepted)} · duplicates ${count(counts.duplicates)} · ignored ${count(counts.ignored)} · rejected ${count(counts.rejected)} · deleted ${count(counts.deleted)}`)
    if (RECEIPT_PROVIDERS.has(simulator.name)) await printReceipts(app, simulator.name, out)
    const codes = Object.entries(outcome?.rejectionCodes ?? {})
    if (codes.length > 0) {
      out(`    rejected samples, each reported by index in its 200 answer while the rest of the batch was stored:`)
      out(`      ${codes.map(([code, n]) => `${code} ×${n}`).join(', ')}`)
    }
    for (const note of outcome?.notes ?? []) out(`    - ${note}`)
  }
  const surprises = outcomes.flatMap((outcome) => outcome.surprises)
  if (surprises.length > 0) {
    out(style.yellow(`  ! ${surprises.length} answer${surprises.length === 1 ? '' : 's'} differed from what the simulator expected:`))
    for (const surprise of surprises.slice(0, 10)) out(style.yellow(`    ${surprise}`))
  } else {
    out(style.green('  every answer matched what the simulator expected'))
  }
}

/** A provider's receipts as the database holds them: every notification and backfill range is one, worked off once. */
async function printReceipts(app: App, provider: string, out: (text?: string) => void): Promise<void> {
  const { rows } = await app.db.query<{ event_type: string, status: string, n: number }>(
    `SELECT event_type, status, count(*)::int AS n FROM webhook_receipts WHERE provider = $1 GROUP BY event_type, status`, [provider])
  if (rows.length === 0) return
  const sum = (key: 'event_type' | 'status'): string => {
    const totals = new Map<string, number>()
    for (const row of rows) totals.set(row[key], (totals.get(row[key]) ?? 0) + Number(row.n))
    return [...totals].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${count(n)} ${name}`).join(', ')
  }
  out(`    receipts: ${sum('event_type')}; ${sum('status')}`)
}

/** Per night, the stage spans summed: nights are keyed by the evening they start on (spans end 12 h later at most). */
async function printSleepTable(app: App, userId: string, out: (text?: string) => void, style: Style): Promise<void> {
  const { rows } = await app.db.query<{ metric: string, value: number, end_at: Date | string, tz_offset: number }>(
    `SELECT metric, value, end_at, tz_offset_min::int AS tz_offset FROM events
     WHERE user_id = $1 AND source = 'healthkit' AND metric IN (${SLEEP_STAGE_METRICS.map((m) => `'${m}'`).join(', ')})`, [userId])
  if (rows.length === 0) return
  const nights = new Map<string, { label: string, minutes: Record<string, number> }>()
  for (const row of rows) {
    const offset = Number(row.tz_offset)
    const evening = new Date(new Date(row.end_at).getTime() + offset * 60_000 - 12 * 3_600_000)
    const key = evening.toISOString().slice(0, 10)
    const next = new Date(evening.getTime() + 86_400_000)
    const label = `${MONTHS[evening.getUTCMonth()] ?? '?'} ${String(evening.getUTCDate()).padStart(2, '0')}–${String(next.getUTCDate()).padStart(2, '0')}`
    const night = nights.get(key) ?? { label, minutes: {} }
    night.minutes[row.metric] = (night.minutes[row.metric] ?? 0) + Number(row.value)
    nights.set(key, night)
  }
  const keys = [...nights.keys()].sort()
  const shown = keys.slice(-SLEEP_TABLE_NIGHTS)
  out(style.bold('Sleep per night') + style.dim(' (sum of HealthKit stage spans; in-bed spans overlap them and are not counted)'))
  const cells = [['night', 'core', 'deep', 'REM', 'awake', 'asleep']]
  for (const key of shown) {
    const night = nights.get(key)
    if (night === undefined) continue
    const m = (metric: string): number => night.minutes[metric] ?? 0
    const asleep = m('light_sleep_minutes') + m('deep_sleep_minutes') + m('rem_sleep_minutes')
    cells.push([night.label, minutesAsHours(m('light_sleep_minutes')), minutesAsHours(m('deep_sleep_minutes')),
      minutesAsHours(m('rem_sleep_minutes')), minutesAsHours(m('awake_minutes')), minutesAsHours(asleep)])
  }
  const lines = table(cells, [false, true, true, true, true, true])
  out(`  ${style.dim(lines[0] ?? '')}`)
  for (const line of lines.slice(1)) out(`  ${line}`)
  if (keys.length > shown.length) out(style.dim(`  … and ${keys.length - shown.length} earlier nights`))
  out()
}

function printTryIt(
  baseUrl: string, token: string, userId: string, out: (text?: string) => void, style: Style, keepRunning: boolean
): void {
  out(style.bold('Try it') + (keepRunning ? '' : style.dim(' (works while this bridge runs: add --keep-running to keep it up; each run gets a new port and token)')))
  const user = encodeURIComponent(userId)
  const auth = token.startsWith('$') ? `"authorization: Bearer ${token}"` : `'authorization: Bearer ${token}'`
  out(`  curl -s -H ${auth} '${baseUrl}/v1/users/${user}/events?metric=heart_rate&limit=5'`)
  out(`  curl -s -H ${auth} '${baseUrl}/v1/users/${user}/events?source=oura&metric=hrv_rmssd&limit=5'`)
  out(`  curl -s -H ${auth} '${baseUrl}/v1/users/${user}/events?source=whoop&metric=recovery_score&limit=5'`)
  out(`  curl -s -H ${auth} '${baseUrl}/v1/users/${user}/latest'`)
  out(`  curl -s '${baseUrl}/metrics' | grep -E '^(healthkit_samples_total|webhook_events_total|provider_requests_total)'`)
}
