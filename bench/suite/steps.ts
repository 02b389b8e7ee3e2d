/**
 * The benchmarks `npm run bench` runs, in order. Each is its own script run as a child process; its results
 * file(s) in bench/results/ feed the summary. The steps that need a Kafka broker run last and together, so the
 * runner starts the broker (when it was not running) only for them.
 */

export interface SuiteStep {
  id: string
  /** For progress lines: "[bench 3/8] webhook intake (WHOOP) …". */
  title: string
  /** Relative to the repository root. */
  script: string
  args: readonly string[]
  /** Added with --quick: the benchmark's own short mode. */
  quickArgs: readonly string[]
  /** Files it writes in bench/results/ (for the ETA fallback: their totalSeconds). */
  results: readonly string[]
  needsKafka: boolean
}

export const STEPS: readonly SuiteStep[] = [
  {
    id: 'healthkit', title: 'HealthKit uploads', script: 'bench/healthkit/run.ts',
    args: [], quickArgs: ['--quick'], results: ['healthkit.json'], needsKafka: false
  },
  {
    id: 'webhooks-oura', title: 'webhook intake (Oura)', script: 'bench/webhooks/run.ts',
    args: ['--provider', 'oura', '--rates', '1000,5000'], quickArgs: ['--quick'], results: ['webhooks.json'], needsKafka: false
  },
  {
    id: 'webhooks-whoop', title: 'webhook intake (WHOOP)', script: 'bench/webhooks/run.ts',
    args: ['--provider', 'whoop', '--rates', '1000,5000'], quickArgs: ['--quick'], results: ['webhooks-whoop.json'], needsKafka: false
  },
  {
    id: 'token-refresh', title: 'token refresh (WHOOP)', script: 'bench/token-refresh/run.ts',
    args: [], quickArgs: ['--quick'], results: ['token-refresh.json'], needsKafka: false
  },
  {
    // e2e.ts has no --quick; fewer notifications is its short run.
    id: 'e2e', title: 'webhooks end to end (1 node, no Kafka)', script: 'bench/webhooks/e2e.ts',
    args: [], quickArgs: ['--notifications', '3000'], results: ['webhooks-e2e.json'], needsKafka: false
  },
  {
    id: 'kafka', title: 'Kafka publishing', script: 'bench/kafka/run.ts',
    args: [], quickArgs: ['--quick'], results: ['kafka.json'], needsKafka: true
  },
  {
    id: 'e2e-kafka', title: 'webhooks end to end (1 node, Kafka on)', script: 'bench/webhooks/e2e.ts',
    args: ['--kafka'], quickArgs: ['--notifications', '3000'], results: ['webhooks-e2e-kafka.json'], needsKafka: true
  },
  {
    id: 'e2e-3nodes', title: 'webhooks end to end (3 nodes, Redis, Kafka on)', script: 'bench/webhooks/e2e.ts',
    args: ['--nodes', '3', '--redis', '--kafka'], quickArgs: ['--notifications', '3000'], results: ['webhooks-e2e-3nodes-redis-kafka.json'], needsKafka: true
  }
]

/**
 * Load before the soak's measured duration: a node on the in-process cache fills its bounded caches for about
 * 6 minutes at 250/s before its memory levels off (the soak of 2026-11-26: RSS 189 → 227 MB by minute 6, then
 * 227–229 MB), and the verdict is about the node after that.
 */
export const SOAK_WARMUP = '6m'

/** The soak runs alone (`--soak 10m`): minutes of fixed-rate load, nothing else on the machine. */
export function soakStep(duration: string, ratePerSecond: string | undefined): SuiteStep {
  return {
    id: `soak-${duration}`, title: `soak (${duration})`, script: 'bench/soak/run.ts',
    args: ['--duration', duration, '--warmup', SOAK_WARMUP, ...(ratePerSecond === undefined ? [] : ['--rate', ratePerSecond])],
    quickArgs: [], results: ['soak.json'], needsKafka: false
  }
}
