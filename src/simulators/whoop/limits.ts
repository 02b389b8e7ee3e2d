import { createRandom } from '../random.ts'

/**
 * The per-app rate limit (reference §2.6: 100 a minute, 10,000 a day, shared by all users) and the fault
 * switches, both applied to /developer routes only so a test that breaks the data API keeps token refresh working.
 */

export const WHOOP_PER_MINUTE = 100
export const WHOOP_PER_DAY = 10_000
const MINUTE_MS = 60_000
const DAY_MS = 86_400_000

export interface RateVerdict {
  admitted: boolean
  headers: Record<string, string>
}

/** Sliding windows over admitted requests; refused ones do not count, so waiting Retry-After always helps. */
export function createRateLimiter(perMinute: number, perDay: number): { check(nowMs: number): RateVerdict, reset(): void } {
  if (!(perMinute >= 1 && perDay >= 1)) throw new RangeError('rate limits must be at least 1')
  let admitted: number[] = []
  const inWindow = (nowMs: number, windowMs: number): number[] => admitted.filter((ms) => ms > nowMs - windowMs)

  const headersFor = (nowMs: number): Record<string, string> => {
    const minute = inWindow(nowMs, MINUTE_MS)
    const remainingMinute = perMinute - minute.length
    const remainingDay = perDay - admitted.length
    // The first number of X-RateLimit-Limit is the limit closest to being hit.
    const minuteCloser = remainingMinute <= remainingDay
    const window = minuteCloser ? minute : admitted
    const windowMs = minuteCloser ? MINUTE_MS : DAY_MS
    const oldest = window[0]
    const resetSeconds = oldest === undefined ? windowMs / 1000 : Math.max(1, Math.ceil((oldest + windowMs - nowMs) / 1000))
    return {
      'x-ratelimit-limit': `${minuteCloser ? perMinute : perDay}, ${perMinute};window=60, ${perDay};window=86400`,
      'x-ratelimit-remaining': String(Math.max(0, Math.min(remainingMinute, remainingDay))),
      'x-ratelimit-reset': String(resetSeconds)
    }
  }

  return {
    check(nowMs) {
      admitted = inWindow(nowMs, DAY_MS)
      const full = inWindow(nowMs, MINUTE_MS).length >= perMinute || admitted.length >= perDay
      if (!full) admitted.push(nowMs)
      const headers = headersFor(nowMs)
      if (full) headers['retry-after'] = headers['x-ratelimit-reset'] ?? '60'
      return { admitted: !full, headers }
    },
    reset() { admitted = [] }
  }
}

export interface ServerErrorFault {
  /** The next `next` API requests fail … */
  next?: number
  /** … and after them each one with this probability. */
  ratio?: number
  /** Default 500. */
  status?: 500 | 502 | 503 | 504
}

export interface WhoopFaults {
  serverErrors(fault: ServerErrorFault | false): void
  /** Delay before every API answer; 0 or false switches it off. */
  latency(ms: number | false): void
  clear(): void
}

export interface WhoopFaultEngine extends WhoopFaults {
  delayMs(): number
  /** The status to fail this request with, or undefined. */
  serverError(): number | undefined
}

export function createWhoopFaults(seed: number): WhoopFaultEngine {
  const rng = createRandom(seed)
  let errors: { remaining: number, ratio: number, status: number } | undefined
  let latencyMs = 0
  return {
    serverErrors(fault) {
      if (fault === false) {
        errors = undefined
        return
      }
      const remaining = fault.next ?? 0
      const ratio = fault.ratio ?? 0
      if (!Number.isInteger(remaining) || remaining < 0) throw new RangeError('next must be a non-negative integer')
      if (!(ratio >= 0 && ratio <= 1)) throw new RangeError('ratio must be within 0–1')
      errors = { remaining, ratio, status: fault.status ?? 500 }
    },
    latency(ms) {
      if (ms !== false && !(ms >= 0)) throw new RangeError('ms must be non-negative')
      latencyMs = ms === false ? 0 : ms
    },
    clear() {
      errors = undefined
      latencyMs = 0
    },
    delayMs: () => latencyMs,
    serverError() {
      if (errors === undefined) return undefined
      if (errors.remaining > 0) {
        errors.remaining--
        return errors.status
      }
      return errors.ratio > 0 && rng.chance(errors.ratio) ? errors.status : undefined
    }
  }
}
