import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestApp, type TestApp } from './app.ts'
import { DeliveryChecker } from './checker.ts'
import { deferCleanup } from './services.ts'
import { startSteadyLoad, type LoadStats, type SteadyLoad } from './steady-load.ts'

/**
 * The common frame of the fault tests (reliability-security §7.2): the real app listening on a port, a steady
 * HealthKit load from a few users over real HTTP, and the loss checker fed by every attempt.
 */
export interface FaultRig {
  harness: TestApp
  address: string
  checker: DeliveryChecker
  load: SteadyLoad
  /** A user outside the load, for probe uploads (the checker sees them only if the test records them). */
  probeUser: string
  probeHeaders: Record<string, string>
}

export interface RigOptions {
  env: Record<string, string>
  uploadsPerSecond?: number
  users?: number
  /** An attempt unanswered after this long counts as `error:TimeoutError` (the tests assert there is none). */
  requestTimeoutMs: number
}

export async function startFaultRig(t: TestContext, name: string, options: RigOptions): Promise<FaultRig | undefined> {
  const harness = await buildTestApp(t, 'postgres', options.env)
  if (harness === undefined) return undefined
  const runId = `${name}-${randomUUID().slice(0, 8)}`
  const users = Array.from({ length: options.users ?? 3 }, (_, index) => `${runId}-user-${index}`)
  const headers = new Map<string, Record<string, string>>()
  for (const user of users) headers.set(user, await harness.deviceHeaders(user))
  const probeUser = `${runId}-probe`
  const probeHeaders = await harness.deviceHeaders(probeUser)
  const address = await harness.app.listen()
  const checker = new DeliveryChecker()
  const load = startSteadyLoad({
    target: () => address,
    headersFor: (user) => headers.get(user)!,
    users,
    checker,
    uploadsPerSecond: options.uploadsPerSecond ?? 30,
    runId,
    requestTimeoutMs: options.requestTimeoutMs,
    // Retry-After says 5 s for a storage outage; a shorter wait keeps the tests short and the retries frequent.
    maxRetryDelayMs: 500
  })
  // Runs before the app stops (cleanup is last-in, first-out); a no-op when the test already drained the load.
  deferCleanup(t, () => load.stop(1).then(() => undefined, () => undefined))
  return { harness, address, checker, load, probeUser, probeHeaders }
}

/** Outcome counts received between two snapshots of `stats.outcomes`. */
export function outcomesSince(stats: LoadStats, before: Readonly<Record<string, number>>): Record<string, number> {
  const delta: Record<string, number> = {}
  for (const [outcome, count] of Object.entries(stats.outcomes)) {
    const added = count - (before[outcome] ?? 0)
    if (added > 0) delta[outcome] = added
  }
  return delta
}

/** Fails unless every outcome is one of `allowed` (a 500, a reset or a client timeout fails the fault test). */
export function assertOutcomesWithin(outcomes: Readonly<Record<string, number>>, allowed: readonly string[], what: string): void {
  const unexpected = Object.keys(outcomes).filter((outcome) => !allowed.includes(outcome))
  assert.deepEqual(unexpected, [], `${what}: unexpected outcomes ${JSON.stringify(outcomes)}`)
}

export interface Readiness {
  status: number
  ms: number
  database?: string
  redis?: string
}

export async function probeReadiness(address: string, timeoutMs = 30_000): Promise<Readiness> {
  const started = performance.now()
  const response = await fetch(`${address}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
  const body = await response.json() as { dependencies: Record<string, { state: string }> }
  return {
    status: response.status,
    ms: Math.round(performance.now() - started),
    ...(body.dependencies.database === undefined ? {} : { database: body.dependencies.database.state }),
    ...(body.dependencies.redis === undefined ? {} : { redis: body.dependencies.redis.state })
  }
}

/** Polls /readyz until `done`; returns the answer that satisfied it. */
export async function readinessBecomes(address: string, done: (readiness: Readiness) => boolean, timeoutMs = 20_000): Promise<Readiness> {
  const deadline = Date.now() + timeoutMs
  let last: Readiness | undefined
  while (Date.now() < deadline) {
    last = await probeReadiness(address)
    if (done(last)) return last
    await sleep(100)
  }
  assert.fail(`/readyz did not reach the expected state within ${timeoutMs} ms; last ${JSON.stringify(last)}`)
}

/**
 * Samples the `healthkit_uploads_in_flight` gauge from /metrics (which never touches the database) every
 * `everyMs`, to show the server's own queue stays bounded while a dependency hangs.
 */
export function watchUploadsInFlight(address: string, everyMs = 100): { readonly max: number, stop(): Promise<void> } {
  let max = 0
  let running = true
  const loop = (async () => {
    while (running) {
      try {
        const text = await (await fetch(`${address}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
        const value = Number(/^healthkit_uploads_in_flight (\d+)$/m.exec(text)?.[1] ?? 0)
        max = Math.max(max, value)
      } catch {
        // A sample lost to a busy machine is not a finding.
      }
      await sleep(everyMs)
    }
  })()
  return {
    get max() { return max },
    async stop() {
      running = false
      await loop
    }
  }
}

/**
 * Watches the app's HTTP server from inside: requests in progress (peak) and the longest one, from arrival to
 * the end of the response. Bounded duration is what keeps the server's queue bounded while a dependency hangs:
 * at most (arrival rate × longest request) requests can be waiting at any time.
 */
export function watchServerRequests(server: Server): { readonly peak: number, readonly longestMs: number, stop(): void } {
  let open = 0
  let peak = 0
  let longestMs = 0
  const onRequest = (_request: IncomingMessage, response: ServerResponse): void => {
    const started = performance.now()
    open++
    peak = Math.max(peak, open)
    response.once('close', () => {
      open--
      longestMs = Math.max(longestMs, performance.now() - started)
    })
  }
  server.on('request', onRequest)
  return {
    get peak() { return peak },
    get longestMs() { return Math.round(longestMs) },
    stop() { server.off('request', onRequest) }
  }
}

/** One upload of a probe user: status, Retry-After, error code and duration. */
export async function probeUpload(address: string, headers: Record<string, string>, body: string): Promise<{ status: number, retryAfter: string | null, code: string | undefined, ms: number }> {
  const started = performance.now()
  const response = await fetch(`${address}/v1/healthkit/batch`, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) })
  const json = await response.json() as { error?: { code?: string } }
  return { status: response.status, retryAfter: response.headers.get('retry-after'), code: json.error?.code, ms: Math.round(performance.now() - started) }
}

/** Compact figures of a run for t.diagnostic, quoted by the docs. */
export function describeRun(stats: LoadStats, acknowledgedSamples: number): string {
  const latencies = [...stats.latenciesMs].sort((a, b) => a - b)
  const p = (q: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0)
  return `uploads ${stats.uploads}, attempts ${stats.attempts}, outcomes ${JSON.stringify(stats.outcomes)}, ` +
    `acknowledged samples ${acknowledgedSamples}, first-attempt ack latency p50 ${p(0.5)} ms / p99 ${p(0.99)} ms / max ${p(1)} ms`
}
