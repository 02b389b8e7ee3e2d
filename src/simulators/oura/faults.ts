import { createRandom } from '../random.ts'

/**
 * Runtime fault switches of the simulated Oura API. Each applies to the route groups it names (default: the
 * data API only, so a test that breaks data fetching does not also break token refresh) and is checked before
 * authentication, the way a gateway in front of the API fails.
 */

export const ROUTE_GROUPS = ['oauth', 'data', 'subscriptions'] as const
/** `oauth`: /oauth/token and /oauth/revoke (never /oauth/authorize); `data`: /v2/usercollection; `subscriptions`: /v2/webhook. */
export type RouteGroup = (typeof ROUTE_GROUPS)[number]

export interface FaultScope {
  /** Route groups the switch applies to; default `['data']`. */
  on?: readonly RouteGroup[]
}

/** The next `next` matching requests fail, and after them (or instead) each one with probability `ratio`. */
export interface FaultRate {
  next?: number
  ratio?: number
}

export interface TooManyRequestsFault extends FaultRate, FaultScope {
  /** Value of `Retry-After` in seconds; null sends the 429 without the header (Oura's headers are unconfirmed). Default 1. */
  retryAfterSeconds?: number | null
}

export interface ServerErrorFault extends FaultRate, FaultScope {
  /** Default 500. */
  status?: 500 | 502 | 503 | 504
}

export interface LatencyFault extends FaultScope {
  /** Added before the request is handled. */
  ms: number
  /** Uniform extra delay in [0, jitterMs). */
  jitterMs?: number
}

/** Oura: 5,000 requests per 5 minutes (reference §1.7); counted per app over a sliding window. */
export interface RateBudget extends FaultScope {
  requests?: number
  windowSeconds?: number
}

export const OURA_RATE_LIMIT_REQUESTS = 5000
export const OURA_RATE_LIMIT_WINDOW_SECONDS = 300

export interface FaultRejection {
  status: number
  retryAfterSeconds: number | null
  detail: string
}

export interface FaultDecision {
  delayMs: number
  reject: FaultRejection | undefined
}

export interface FaultCounts {
  tooManyRequests: number
  serverErrors: number
  budgetExceeded: number
  delayed: number
}

export interface OuraFaults {
  tooManyRequests(fault: TooManyRequestsFault | false): void
  serverErrors(fault: ServerErrorFault | false): void
  latency(fault: LatencyFault | false): void
  budget(budget: RateBudget | false): void
  /** Switches every fault off and forgets the budget window. */
  clear(): void
  /** How many requests each switch affected so far. */
  counts(): FaultCounts
}

export interface FaultEngine extends OuraFaults {
  decide(group: RouteGroup, nowMs: number): FaultDecision
}

const DEFAULT_SCOPE: readonly RouteGroup[] = ['data']

interface RateState {
  remaining: number
  ratio: number
  scope: readonly RouteGroup[]
}

function rateState(fault: FaultRate & FaultScope): RateState {
  const remaining = fault.next ?? 0
  const ratio = fault.ratio ?? 0
  if (!Number.isInteger(remaining) || remaining < 0) throw new RangeError('next must be a non-negative integer')
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError('ratio must be within 0–1')
  return { remaining, ratio, scope: fault.on ?? DEFAULT_SCOPE }
}

export function createFaults(seed: number): FaultEngine {
  const rng = createRandom(seed)
  let tooMany: (RateState & { retryAfterSeconds: number | null }) | undefined
  let serverError: (RateState & { status: number }) | undefined
  let latency: { ms: number, jitterMs: number, scope: readonly RouteGroup[] } | undefined
  let budget: { requests: number, windowMs: number, scope: readonly RouteGroup[] } | undefined
  /** Times (epoch ms) of admitted requests, oldest first; those before `head` have left the window. */
  let admitted: number[] = []
  let head = 0
  const counts: FaultCounts = { tooManyRequests: 0, serverErrors: 0, budgetExceeded: 0, delayed: 0 }

  const fires = (state: RateState): boolean => {
    if (state.remaining > 0) {
      state.remaining--
      return true
    }
    return state.ratio > 0 && rng.chance(state.ratio)
  }

  return {
    tooManyRequests(fault) {
      tooMany = fault === false ? undefined : { ...rateState(fault), retryAfterSeconds: fault.retryAfterSeconds === undefined ? 1 : fault.retryAfterSeconds }
    },
    serverErrors(fault) {
      serverError = fault === false ? undefined : { ...rateState(fault), status: fault.status ?? 500 }
    },
    latency(fault) {
      if (fault !== false && !(fault.ms >= 0)) throw new RangeError('ms must be non-negative')
      latency = fault === false ? undefined : { ms: fault.ms, jitterMs: fault.jitterMs ?? 0, scope: fault.on ?? DEFAULT_SCOPE }
    },
    budget(value) {
      admitted = []
      head = 0
      budget = value === false
        ? undefined
        : {
          requests: value.requests ?? OURA_RATE_LIMIT_REQUESTS,
          windowMs: (value.windowSeconds ?? OURA_RATE_LIMIT_WINDOW_SECONDS) * 1000,
          scope: value.on ?? DEFAULT_SCOPE
        }
    },
    clear() {
      tooMany = undefined
      serverError = undefined
      latency = undefined
      budget = undefined
      admitted = []
      head = 0
    },
    counts: () => ({ ...counts }),

    decide(group, nowMs) {
      let delayMs = 0
      if (latency !== undefined && latency.scope.includes(group)) {
        delayMs = latency.ms + (latency.jitterMs > 0 ? rng.between(0, latency.jitterMs) : 0)
        counts.delayed++
      }
      const reject = (rejection: FaultRejection): FaultDecision => ({ delayMs, reject: rejection })
      if (tooMany !== undefined && tooMany.scope.includes(group) && fires(tooMany)) {
        counts.tooManyRequests++
        return reject({ status: 429, retryAfterSeconds: tooMany.retryAfterSeconds, detail: 'Too many requests' })
      }
      if (serverError !== undefined && serverError.scope.includes(group) && fires(serverError)) {
        counts.serverErrors++
        return reject({ status: serverError.status, retryAfterSeconds: null, detail: 'Internal server error' })
      }
      if (budget !== undefined && budget.scope.includes(group)) {
        const windowStartMs = nowMs - budget.windowMs
        while (head < admitted.length && (admitted[head] ?? 0) <= windowStartMs) head++
        if (head > 1024 && head * 2 > admitted.length) {
          admitted = admitted.slice(head)
          head = 0
        }
        if (admitted.length - head >= budget.requests) {
          counts.budgetExceeded++
          const oldestMs = admitted[head] ?? nowMs
          return reject({
            status: 429,
            retryAfterSeconds: Math.max(1, Math.ceil((oldestMs + budget.windowMs - nowMs) / 1000)),
            detail: `Rate limit of ${budget.requests} requests per ${budget.windowMs / 1000} seconds exceeded`
          })
        }
        admitted.push(nowMs)
      }
      return { delayMs, reject: undefined }
    }
  }
}
