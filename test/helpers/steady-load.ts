import { heartRate, batch } from '../fixtures/healthkit/samples.ts'
import type { DeliveryChecker, SentSample } from './checker.ts'

/**
 * Background load for the fault tests: HealthKit uploads at a fixed arrival rate over real HTTP, each with fresh
 * sample uuids, behaving like the iOS app — an upload that gets no 2xx (503, reset connection, timeout) is sent
 * again with the same samples after Retry-After (capped) until it is acknowledged or the load is drained. Every
 * attempt and its outcome go to the checker.
 */
export interface SteadyLoadOptions {
  /** Base URL of the bridge; read for every attempt, so a test can move the load to a successor process. */
  target: () => string
  headersFor: (userId: string) => Record<string, string>
  users: readonly string[]
  checker: DeliveryChecker
  uploadsPerSecond: number
  samplesPerUpload?: number
  /** Distinguishes this run's uuids from any other test's. */
  runId: string
  /** A request that has not answered by then counts as unacknowledged and is retried. */
  requestTimeoutMs?: number
  /** Cap on Retry-After honoured between attempts (tests are bounded in time). */
  maxRetryDelayMs?: number
  /** Sees every attempt once it ended: which target it went to, when, and how (per-node accounting around a fault). */
  onAttempt?: (attempt: AttemptRecord) => void
}

export interface AttemptRecord {
  /** The base URL `target()` returned for this attempt. */
  target: string
  userId: string
  /** performance.now() when the request was started and when its outcome was known, ms. */
  startedMs: number
  endedMs: number
  /** Status code, or "error:<code>" for a reset, refused connection or timeout. */
  outcome: string
  ok: boolean
}

export interface LoadStats {
  uploads: number
  attempts: number
  acknowledged: number
  /** Status code (or "error:<code>") → count, over every attempt. */
  outcomes: Record<string, number>
  /** Acknowledged latency of first attempts, ms, in arrival order. */
  latenciesMs: number[]
}

export interface SteadyLoad {
  readonly stats: LoadStats
  /** Resolves once `count` more uploads have been acknowledged (progress under a fault or after it). */
  waitForAcknowledged(count: number, timeoutMs?: number): Promise<void>
  /** Stops new uploads and waits until every upload started so far is acknowledged; throws after `drainMs`. */
  stop(drainMs?: number): Promise<LoadStats>
}

const TICK_MS = 50
const BASE_MS = Date.UTC(2026, 0, 6, 22, 0, 0)

export function startSteadyLoad(options: SteadyLoadOptions): SteadyLoad {
  const samplesPerUpload = options.samplesPerUpload ?? 10
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 1000
  const stats: LoadStats = { uploads: 0, attempts: 0, acknowledged: 0, outcomes: {}, latenciesMs: [] }
  const open = new Set<Promise<void>>()
  let stopped = false
  /** Set when a drain gave up: pending retries end instead of running past the test. */
  let abandoned = false
  let owed = 0
  let sampleIndex = 0
  const progressWaiters: Array<{ target: number, resolve: () => void }> = []

  const count = (outcome: string): void => {
    stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1
  }

  const attempt = async (userId: string, body: string, samples: readonly SentSample[]): Promise<{ ok: boolean, retryAfterMs: number, latencyMs: number }> => {
    stats.attempts++
    const target = options.target()
    const started = performance.now()
    const report = (outcome: string, ok: boolean): void => {
      options.onAttempt?.({ target, userId, startedMs: started, endedMs: performance.now(), outcome, ok })
    }
    try {
      const response = await fetch(`${target}/v1/healthkit/batch`, {
        method: 'POST',
        headers: { ...options.headersFor(userId), 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(requestTimeoutMs)
      })
      await response.arrayBuffer()
      count(String(response.status))
      const ok = response.status >= 200 && response.status < 300
      options.checker.record(samples, ok)
      report(String(response.status), ok)
      const retryAfterS = Number(response.headers.get('retry-after'))
      return { ok, retryAfterMs: Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 100, latencyMs: performance.now() - started }
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause
      const outcome = `error:${cause?.code ?? (error as Error).name}`
      count(outcome)
      options.checker.record(samples, false)
      report(outcome, false)
      return { ok: false, retryAfterMs: 100, latencyMs: performance.now() - started }
    }
  }

  const upload = async (): Promise<void> => {
    const userId = options.users[stats.uploads % options.users.length]!
    stats.uploads++
    const samples: SentSample[] = []
    const native = Array.from({ length: samplesPerUpload }, () => {
      const index = sampleIndex++
      const sample = heartRate(index, {
        uuid: `${options.runId}-${index}`,
        start: new Date(BASE_MS + index * 1000).toISOString(),
        end: new Date(BASE_MS + index * 1000).toISOString()
      })
      samples.push({ userId, recordId: sample.uuid, value: sample.value })
      return sample
    })
    const body = batch(native)
    let first = true
    for (;;) {
      const outcome = await attempt(userId, body, samples)
      if (outcome.ok) {
        if (first) stats.latenciesMs.push(outcome.latencyMs)
        stats.acknowledged++
        for (const waiter of progressWaiters.filter((w) => stats.acknowledged >= w.target)) {
          progressWaiters.splice(progressWaiters.indexOf(waiter), 1)
          waiter.resolve()
        }
        return
      }
      first = false
      if (abandoned) return
      await new Promise((resolve) => setTimeout(resolve, Math.min(outcome.retryAfterMs, maxRetryDelayMs)))
    }
  }

  const timer = setInterval(() => {
    owed += options.uploadsPerSecond * TICK_MS / 1000
    while (owed >= 1 && !stopped) {
      owed--
      const running = upload()
      open.add(running)
      void running.finally(() => open.delete(running))
    }
  }, TICK_MS)

  return {
    stats,
    waitForAcknowledged(more: number, timeoutMs = 30_000) {
      const target = stats.acknowledged + more
      return new Promise((resolve, reject) => {
        const timeout = setTimeout(() => reject(new Error(`load made no progress: ${stats.acknowledged}/${target} acknowledged, outcomes ${JSON.stringify(stats.outcomes)}`)), timeoutMs)
        progressWaiters.push({ target, resolve: () => { clearTimeout(timeout); resolve() } })
      })
    },
    async stop(drainMs = 60_000) {
      stopped = true
      clearInterval(timer)
      let timeout: NodeJS.Timeout | undefined
      const drained = Promise.all([...open]).then(() => 'drained' as const)
      const expired = new Promise<'expired'>((resolve) => { timeout = setTimeout(() => resolve('expired'), drainMs) })
      const outcome = await Promise.race([drained, expired])
      clearTimeout(timeout)
      if (outcome === 'expired') {
        abandoned = true
        throw new Error(`${open.size} uploads still unacknowledged after ${drainMs} ms; outcomes ${JSON.stringify(stats.outcomes)}`)
      }
      return stats
    }
  }
}
