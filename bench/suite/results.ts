/**
 * The parts of bench/results/*.json the suite summary reads. Every field is optional: the files are written by
 * the benchmarks (some by other hands, some older than others), and a missing figure must come out as "not
 * measured", never as a made-up number. Only reading happens here (loadSuiteResults); the rest of the summary is pure.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'

export interface Environment {
  date?: string
  cpu?: string
  cores?: number
  ramGb?: number
  node?: string
  postgres?: string
  postgresSettings?: Record<string, string>
  quick?: boolean
  rounds?: number
  redis?: string
  kafka?: string
  kafkaClient?: string
  loadAverage?: { start?: number, end?: number }
}

export interface Verdict {
  name?: string
  met?: boolean
  detail?: string
}

export interface HealthkitResults {
  environment?: Environment
  totalSeconds?: number
  targets?: { samplesPerSecond?: number, minRatio?: number, batch100P50Ms?: number }
  batches?: Array<{
    batchSize?: number
    rounds?: number
    ours?: { samplesPerSecond?: number, p50Ms?: number, p99Ms?: number }
    baseline?: { samplesPerSecond?: number }
    ratio?: { median?: number, min?: number, max?: number }
  }>
  bigUpload?: Array<{ nodeOptions?: string[], samples?: number, peakRssMb?: number, growthMb?: number }>
}

export interface KafkaResults {
  environment?: Environment
  totalSeconds?: number
  throughput?: {
    relay?: { eventsPerSecond?: number, roundEventsPerSecond?: number[] }
    raw?: { eventsPerSecond?: number }
    ratio?: { median?: number }
  }
  verdicts?: Verdict[]
}

export interface WebhookSummary {
  arm?: string
  shape?: string
  /** Rate shapes; older files have one rate, found in `shapes`. */
  ratePerSecond?: number
  rounds?: number
  okPerSecond?: number
  latency?: { count?: number, p50Ms?: number, p99Ms?: number }
  cpuUsPerWebhook?: { server?: number, machine?: number }
}

export interface WebhookResults {
  provider?: string
  environment?: Environment
  totalSeconds?: number
  shapes?: Array<{ id?: string, kind?: string, connections?: number, ratePerSecond?: number }>
  summaries?: WebhookSummary[]
  memory?: Array<{ arm?: string, peakRssMb?: number }>
}

export interface E2eResults {
  /** The file it came from, e.g. webhooks-e2e-kafka.json. */
  file: string
  machine?: Environment
  environment?: Environment
  /** bench/webhooks/e2e.ts --nodes N, --redis, --kafka; older files have none of it (1 node, no Kafka). */
  variant?: { nodes?: number, redis?: boolean, kafka?: boolean }
  /** Kafka settings of the run, null without Kafka. */
  kafka?: unknown
  notifications?: number
  concurrency?: number
  intakePerSecond?: number
  /** Until published with Kafka on, else until stored. */
  endToEndPerSecond?: number
  eventsPerNotification?: number
  /** Older files: events stored and receipts done, whose quotient is eventsPerNotification. */
  done?: number
  events?: number
  correctness?: { passed?: boolean }
}

export interface TokenRefreshResults {
  environment?: Environment
  totalSeconds?: number
  summaries?: Array<{ arm?: string, shape?: string, attempts?: number, wait?: { p50Ms?: number, p99Ms?: number } }>
}

/** bench/soak/run.ts: windows of intake p99 and bridge RSS, their trend verdicts, the peak. */
export interface SoakResults {
  machine?: Environment
  settings?: { durationMs?: number, warmupMs?: number, timelineMs?: number, ratePerSecond?: number, redis?: boolean, kafka?: boolean }
  totalMs?: number
  windows?: Array<{ startS?: number, intakeP99Ms?: number, endToEndP99Ms?: number, rssMeanMb?: number, rssMaxMb?: number }>
  /** RSS in MiB (the soak's "MB" is 1024² bytes). */
  overall?: { intakeP99Ms?: number, rssMaxMb?: number, peakRssMb?: number }
  loss?: { ok?: boolean }
  verdict?: { rss?: string, p99?: string, flat?: boolean, indicative?: boolean, rssTargetMet?: boolean }
}

/** One run of bench/run.ts and its conditions. */
export interface SuiteRunEntry {
  date?: string
  quick?: boolean
  steps?: Array<{ id?: string, title?: string, seconds?: number, exitCode?: number | null }>
  loadAverage?: number
  busyCores?: number
  quiet?: boolean
  kafka?: string
  /** How a partial run was started, e.g. `npm run bench -- --soak 10m`. */
  command?: string
}

/**
 * What bench/run.ts records about its runs: durations per step (for the ETA), the last run of the whole suite,
 * and a partial run (--only, --soak) made after it, which does not replace it.
 */
export interface SuiteRunRecord {
  durations?: Record<string, { quick?: number, full?: number }>
  lastRun?: SuiteRunEntry
  lastPartialRun?: SuiteRunEntry
}

export interface SuiteResults {
  healthkit?: HealthkitResults
  kafka?: KafkaResults
  webhooks: { oura?: WebhookResults, whoop?: WebhookResults }
  e2e: E2eResults[]
  tokenRefresh?: TokenRefreshResults
  soak?: SoakResults
  suiteRun?: SuiteRunRecord
}

export const SUITE_RUN_FILE = 'suite-run.json'

/** Reads a results file; a missing or unreadable one is `undefined` (with a warning for the unreadable). */
export function readJson<T>(path: string, warn: (message: string) => void = () => {}): T | undefined {
  if (!existsSync(path)) return undefined
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'))
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object')
    return value as T
  } catch (error) {
    warn(`${path}: ${(error as Error).message}; treated as not measured`)
    return undefined
  }
}

/** Everything the summary can use from a results directory (bench/results/). */
export function loadSuiteResults(dir: string, warn: (message: string) => void = () => {}): SuiteResults {
  const read = <T>(file: string): T | undefined => readJson<T>(`${dir}/${file}`, warn)
  const e2eFiles = existsSync(dir) ? readdirSync(dir).filter((file) => /^webhooks-e2e.*\.json$/.test(file)).sort() : []
  const results: SuiteResults = {
    webhooks: {},
    e2e: e2eFiles.flatMap((file) => {
      const value = read<Omit<E2eResults, 'file'>>(file)
      return value === undefined ? [] : [{ ...value, file }]
    })
  }
  const set = <K extends 'healthkit' | 'kafka' | 'tokenRefresh' | 'soak' | 'suiteRun'>(key: K, value: SuiteResults[K] | undefined): void => {
    if (value !== undefined) results[key] = value
  }
  set('healthkit', read<HealthkitResults>('healthkit.json'))
  set('kafka', read<KafkaResults>('kafka.json'))
  set('tokenRefresh', read<TokenRefreshResults>('token-refresh.json'))
  set('soak', read<SoakResults>('soak.json'))
  set('suiteRun', read<SuiteRunRecord>(SUITE_RUN_FILE))
  const oura = read<WebhookResults>('webhooks.json')
  const whoop = read<WebhookResults>('webhooks-whoop.json')
  if (oura !== undefined) results.webhooks.oura = oura
  if (whoop !== undefined) results.webhooks.whoop = whoop
  return results
}
