/**
 * The whole benchmark suite in one command (`npm run bench`, `bridge bench`): every benchmark in turn, each as
 * its own child process with its output on this terminal, then the summary — the reference report's figures
 * row by row next to ours — at the top of docs/benchmarks.md, in bench/results/summary.json and as a chart in
 * bench/results/summary.svg.
 *
 *   node bench/run.ts [--quick] [--only healthkit,kafka,…] [--soak 10m [--soak-rate N]] [--render-only] [--list]
 *
 * --quick passes each benchmark its short mode; --only runs some steps (see --list); --soak D runs only the soak
 * for duration D; --render-only rewrites the summary from the results as they are and runs nothing.
 *
 * Before the first step the runner waits (up to QUIET.timeoutMs) for the machine to be quiet and records the
 * load it found. Steps needing Kafka run last; when the broker of scripts/kafka.sh is stopped, the runner starts it
 * for them and stops it afterwards (a broker that was running is left running). A failing step does not stop
 * the run: the rest still run, the summary is rendered from what there is, and the exit code is 1. Progress lines
 * go to stderr, with the elapsed time and an ETA from the previous run's durations (bench/results/suite-run.json)
 * or, failing that, from the results files' own run times. Exit codes: 0 ok, 1 a step failed, 64 usage, 130
 * interrupted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { loadAverage, waitForQuietMachine } from './lib/proc.ts'
import { renderSuiteSummary } from './suite/render.ts'
import { readJson, SUITE_RUN_FILE, type SuiteRunEntry, type SuiteRunRecord } from './suite/results.ts'
import { soakStep, STEPS, type SuiteStep } from './suite/steps.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const RESULTS_DIR = join(ROOT, 'bench/results')
const DOCS_FILE = join(ROOT, 'docs/benchmarks.md')
const RUN_RECORD = join(RESULTS_DIR, SUITE_RUN_FILE)
/** Quiet enough: the whole machine busy for less than `maxCores` over one window; waited for at most `timeoutMs`. */
const QUIET = { maxCores: 0.5, windowMs: 2000, timeoutMs: 120_000 }
const EXIT = { ok: 0, failed: 1, usage: 64, interrupted: 130 } as const

const USAGE = `Usage: npm run bench -- [options]   (or: bridge bench [options])

  (no options)        run every benchmark in turn, then write the summary
  --quick             each benchmark's short mode
  --only a,b          only these steps: ${STEPS.map((step) => step.id).join(', ')}
  --soak D            only the soak, for duration D (e.g. 10m); --soak-rate N sets its notifications/s
  --render-only       write the summary from bench/results/ as it is; run nothing
  --list              list the steps
  --help              this text
`

const log = (message: string): void => { process.stderr.write(`[bench] ${message}\n`) }

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`)
  process.exit(EXIT.usage)
}

let flags: { quick: boolean, only?: string, soak?: string, 'soak-rate'?: string, 'render-only': boolean, list: boolean, help: boolean }
try {
  flags = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      soak: { type: 'string' },
      'soak-rate': { type: 'string' },
      'render-only': { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  }).values
} catch (error) {
  usageError((error as Error).message)
}

// ---------------------------------------------------------------------------------------------------------------
// Durations and the run record

const fmtClock = (seconds: number): string => {
  const total = Math.round(seconds)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`
}

type Mode = 'quick' | 'full'

/** Seconds a step took last time in this mode: from the run record, else from its results file's own run time. */
function previousSeconds(step: SuiteStep, mode: Mode, record: SuiteRunRecord | undefined): number | undefined {
  const recorded = record?.durations?.[step.id]?.[mode]
  if (typeof recorded === 'number') return recorded
  const file = step.results[0]
  if (file === undefined) return undefined
  const results = readJson<{ totalSeconds?: number, totalMs?: number, environment?: { quick?: boolean } }>(join(RESULTS_DIR, file))
  if (results === undefined || (results.environment?.quick ?? false) !== (mode === 'quick')) return undefined
  if (typeof results.totalSeconds === 'number') return results.totalSeconds
  return typeof results.totalMs === 'number' ? results.totalMs / 1000 : undefined
}

function eta(steps: readonly SuiteStep[], mode: Mode, record: SuiteRunRecord | undefined): string {
  const known = steps.map((step) => previousSeconds(step, mode, record))
  const sum = known.reduce<number>((total, seconds) => total + (seconds ?? 0), 0)
  const unknown = known.filter((seconds) => seconds === undefined).length
  if (unknown === steps.length) return 'ETA unknown: no previous durations'
  return `ETA ${unknown > 0 ? '≥ ' : ''}${fmtClock(sum)} for this step and the rest${unknown > 0 ? ` (${unknown} without a previous duration)` : ''}`
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka broker (scripts/kafka.sh): left as it was found

interface Broker {
  /** TEST_KAFKA_BROKERS for the children, when known. */
  brokers: string | undefined
  startedHere: boolean
  keepData: boolean
  /** For the record: what the runner found and did. */
  note: string
}

function kafkaScript(args: readonly string[]): { status: number | null, brokers: string | undefined } {
  const result = spawnSync('bash', [join(ROOT, 'scripts/kafka.sh'), ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const brokers = /TEST_KAFKA_BROKERS=(\S+)/.exec(result.stdout ?? '')?.[1]
  return { status: result.status, brokers }
}

/** A broker for the Kafka steps, or the reason there is none. */
function ensureBroker(): Broker | string {
  const configured = process.env.BENCH_KAFKA_BROKERS ?? process.env.TEST_KAFKA_BROKERS
  if (configured !== undefined) return { brokers: undefined, startedHere: false, keepData: true, note: `${configured} from the environment` }
  const status = kafkaScript(['status'])
  if (status.status === 0) return { brokers: status.brokers, startedHere: false, keepData: true, note: 'scripts/kafka.sh broker, already running (left running)' }
  if (status.status !== 3) return `the broker of scripts/kafka.sh is running but not answering (status ${status.status}); not touched`
  // Stopped: start it for the Kafka steps. Storage someone kept (kafka.sh stop-broker) is kept again afterwards.
  const keepData = existsSync(join(ROOT, '.cache/kafka/data'))
  log(`starting the Kafka broker (bash scripts/kafka.sh up${keepData ? ' --keep-data' : ''}); it is stopped again after the Kafka steps`)
  const up = kafkaScript(['up', ...(keepData ? ['--keep-data'] : [])])
  if (up.status !== 0) return `bash scripts/kafka.sh up failed (exit ${up.status})`
  return { brokers: up.brokers, startedHere: true, keepData, note: 'scripts/kafka.sh broker, started for the Kafka steps and stopped after them' }
}

function releaseBroker(broker: Broker): void {
  if (!broker.startedHere) return
  log(`stopping the Kafka broker this run started (bash scripts/kafka.sh down${broker.keepData ? ' --keep-data' : ''})`)
  const down = kafkaScript(['down', ...(broker.keepData ? ['--keep-data'] : [])])
  if (down.status !== 0) log(`WARNING: bash scripts/kafka.sh down exited ${down.status}`)
  broker.startedHere = false
}

// ---------------------------------------------------------------------------------------------------------------
// Steps

let current: ChildProcess | undefined
let interrupted = false
// Ctrl-C reaches the children directly (same process group); the runner lets the running one clean up, then stops.
process.on('SIGINT', () => {
  interrupted = true
  log('interrupted: waiting for the running benchmark to clean up, then stopping')
})
process.on('SIGTERM', () => {
  interrupted = true
  // Not sent to the group: pass it on as the Ctrl-C the benchmarks clean up after.
  current?.kill('SIGINT')
})

function runStep(step: SuiteStep, quick: boolean, env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, step.script), ...step.args, ...(quick ? step.quickArgs : [])], { cwd: ROOT, env, stdio: 'inherit' })
    current = child
    child.once('error', (error) => {
      log(`${step.id}: could not start: ${error.message}`)
      current = undefined
      resolve(null)
    })
    child.once('exit', (code, signal) => {
      current = undefined
      if (signal !== null) log(`${step.id}: ended by ${signal}`)
      resolve(code)
    })
  })
}

interface StepOutcome {
  id: string
  title: string
  seconds: number
  exitCode: number | null
}

function render(): void {
  const summary = renderSuiteSummary({ resultsDir: RESULTS_DIR, docsFile: DOCS_FILE }, new Date(), (message) => log(`WARNING: ${message}`))
  const notMeasured = summary.rows.filter((row) => row.ours === null).length
  const missed = summary.rows.filter((row) => row.met === false).length
  log(`summary: ${summary.rows.length} rows, ${notMeasured} not measured, ${missed} targets missed; wrote the top section of ` +
    `docs/benchmarks.md, bench/results/summary.json and bench/results/summary.svg`)
}

async function main(): Promise<number> {
  if (flags.help) {
    process.stdout.write(USAGE)
    return EXIT.ok
  }
  if (flags.list) {
    for (const step of STEPS) process.stdout.write(`${step.id.padEnd(15)} ${step.title}: node ${[step.script, ...step.args].join(' ')} (quick: ${step.quickArgs.join(' ')})\n`)
    return EXIT.ok
  }
  if (flags['render-only']) {
    if (flags.quick || flags.only !== undefined || flags.soak !== undefined) usageError('--render-only runs nothing; it takes no other option')
    render()
    return EXIT.ok
  }
  if (flags['soak-rate'] !== undefined && flags.soak === undefined) usageError('--soak-rate goes with --soak')
  if (flags.soak !== undefined && flags.only !== undefined) usageError('--soak runs only the soak; leave out --only')
  let steps: readonly SuiteStep[] = STEPS
  if (flags.soak !== undefined) {
    steps = [soakStep(flags.soak, flags['soak-rate'])]
  } else if (flags.only !== undefined) {
    const ids = flags.only.split(',').map((id) => id.trim()).filter((id) => id !== '')
    const unknown = ids.filter((id) => !STEPS.some((step) => step.id === id))
    if (unknown.length > 0 || ids.length === 0) usageError(`--only takes some of ${STEPS.map((step) => step.id).join(', ')}${unknown.length > 0 ? ` (not: ${unknown.join(', ')})` : ''}`)
    steps = STEPS.filter((step) => ids.includes(step.id))
  }
  const quick = flags.quick
  const mode: Mode = quick ? 'quick' : 'full'
  const record = readJson<SuiteRunRecord>(RUN_RECORD, (message) => log(`WARNING: ${message}`))

  // The benchmarks share 2 cores with whatever else runs: start when the machine is quiet, and say how it was.
  const loadBefore = loadAverage()
  log(`${steps.length} step${steps.length === 1 ? '' : 's'}${quick ? ', quick' : ''}: ${steps.map((step) => step.id).join(', ')}; ${eta(steps, mode, record)}`)
  log(`1-min load average ${loadBefore.toFixed(2)}; waiting for a quiet machine (< ${QUIET.maxCores} cores busy over ${QUIET.windowMs / 1000} s, up to ${QUIET.timeoutMs / 1000} s)`)
  const quiet = await waitForQuietMachine(QUIET.maxCores, QUIET.windowMs, QUIET.timeoutMs)
  if (quiet.quiet) log(`quiet after ${(quiet.waitedMs / 1000).toFixed(0)} s (${quiet.busyCores.toFixed(2)} cores busy)`)
  else log(`WARNING: still ${quiet.busyCores.toFixed(2)} cores busy after ${(quiet.waitedMs / 1000).toFixed(0)} s; running anyway (the figures will show it)`)

  const started = performance.now()
  const outcomes: StepOutcome[] = []
  let broker: Broker | string | undefined
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const [index, step] of steps.entries()) {
    if (interrupted) break
    const prefix = `[bench ${index + 1}/${steps.length}] ${step.title}`
    const last = previousSeconds(step, mode, record)
    process.stderr.write(`${prefix} … (elapsed ${fmtClock((performance.now() - started) / 1000)}` +
      `${last === undefined ? '' : `; took ${fmtClock(last)} last time`}; ${eta(steps.slice(index), mode, record)})\n`)
    if (step.needsKafka && broker === undefined) {
      broker = ensureBroker()
      if (typeof broker !== 'string' && broker.brokers !== undefined) env.TEST_KAFKA_BROKERS = broker.brokers
    }
    const stepStarted = performance.now()
    let exitCode: number | null
    if (step.needsKafka && typeof broker === 'string') {
      log(`${step.id}: not run: ${broker}`)
      exitCode = null
    } else {
      exitCode = await runStep(step, quick, env)
    }
    const seconds = (performance.now() - stepStarted) / 1000
    outcomes.push({ id: step.id, title: step.title, seconds, exitCode })
    process.stderr.write(`${prefix} ${exitCode === 0 ? 'done' : `FAILED (exit ${exitCode ?? 'none'})`} in ${fmtClock(seconds)}\n`)
    // The broker is up only for the Kafka steps, which run last and together.
    if (broker !== undefined && typeof broker !== 'string' && !steps.slice(index + 1).some((next) => next.needsKafka)) releaseBroker(broker)
  }
  if (broker !== undefined && typeof broker !== 'string') releaseBroker(broker)

  const durations = { ...record?.durations }
  for (const outcome of outcomes) {
    if (outcome.exitCode === 0) durations[outcome.id] = { ...durations[outcome.id], [mode]: Math.round(outcome.seconds) }
  }
  const thisRun: SuiteRunEntry = {
    date: new Date().toISOString(), quick, steps: outcomes, loadAverage: loadBefore, busyCores: quiet.busyCores, quiet: quiet.quiet,
    ...(broker === undefined ? {} : { kafka: typeof broker === 'string' ? `unavailable: ${broker}` : broker.note })
  }
  // A partial run (--only, --soak) is recorded beside the last whole run, so the summary still names that one.
  const wholeSuite = flags.only === undefined && flags.soak === undefined
  const runRecord: SuiteRunRecord = wholeSuite
    ? { durations, lastRun: thisRun }
    : {
        durations,
        ...(record?.lastRun === undefined ? {} : { lastRun: record.lastRun }),
        lastPartialRun: { ...thisRun, command: `npm run bench -- ${process.argv.slice(2).join(' ')}` }
      }
  writeFileSync(RUN_RECORD, `${JSON.stringify(runRecord, null, 2)}\n`)

  const failed = outcomes.filter((outcome) => outcome.exitCode !== 0)
  log(`steps: ${outcomes.map((o) => `${o.id} ${o.exitCode === 0 ? 'ok' : 'FAILED'} ${fmtClock(o.seconds)}`).join(', ')}; total ${fmtClock((performance.now() - started) / 1000)}`)
  if (interrupted) {
    log('interrupted: summary not rewritten (npm run bench -- --render-only writes it from the results as they are)')
    return EXIT.interrupted
  }
  render()
  if (failed.length > 0) {
    log(`FAILED: ${failed.map((o) => o.id).join(', ')} (their previous results, if any, are what the summary shows)`)
    return EXIT.failed
  }
  return EXIT.ok
}

process.exitCode = await main()
