/**
 * Request budgets of a provider app: Oura's 5,000 requests per 5 minutes, WHOOP's 100 per minute and 10,000 per
 * day (reference §1.7, §2.6). The limits are per app, so with Redis every node draws from one shared budget
 * (cache/redis-budget.ts); this module holds the port and the in-process adapter (one node, or Redis down).
 */

/** Who asks for a request: live webhook fetches come first, then reconciliation, then backfill. */
export type RequestPriority = 'live' | 'reconcile' | 'backfill'

/** One limit of a provider app. */
export interface RateWindow {
  requests: number
  windowMs: number
}

/** `remaining`: requests still free in the tightest window, at live priority. */
export type BudgetVerdict = { ok: true, remaining: number } | { ok: false, retryAfterMs: number }

export interface RequestBudget {
  /** Takes one request, or says how long until the priority may make one. */
  take(priority: RequestPriority): Promise<BudgetVerdict>
  /** The provider asked to wait (429 Retry-After, or X-RateLimit-Remaining 0 until its reset): nobody asks before. */
  holdOff(ms: number): Promise<void>
}

/**
 * Share of each window a priority may fill: backfill stops at half, reconciliation at 80 %, so a burst of history
 * never leaves live webhooks without requests.
 */
export const PRIORITY_SHARE: Readonly<Record<RequestPriority, number>> = { live: 1, reconcile: 0.8, backfill: 0.5 }

/** The part of a window's limit a priority may use (at least one request, so a tiny budget still moves). */
export const priorityLimit = (window: RateWindow, priority: RequestPriority): number =>
  Math.max(1, Math.floor(window.requests * PRIORITY_SHARE[priority]))

/** Resolution of a window: fixed memory and work whatever the budget (a budget may be lifted to millions). */
const BUCKETS_PER_WINDOW = 300

interface WindowCounter {
  /** Requests counted in the window ending now. */
  used(nowMs: number): number
  count(nowMs: number): void
  /** How long until the oldest counted request leaves the window. */
  freesInMs(nowMs: number): number
}

/**
 * Counts requests in buckets of windowMs / 300 (1 s for Oura). The window spans one bucket more than windowMs,
 * so it errs on the safe side: a request is forgotten between windowMs and windowMs + one bucket after it,
 * never earlier, and no true window ever sees more than its limit.
 */
function createWindowCounter(windowMs: number): WindowCounter {
  const bucketCount = Math.max(1, Math.min(BUCKETS_PER_WINDOW, Math.floor(windowMs)))
  const bucketMs = windowMs / bucketCount
  const ring = bucketCount + 1
  const counts = new Array<number>(ring).fill(0)
  let total = 0
  let newestBucket = Number.NEGATIVE_INFINITY
  const slotOf = (bucket: number): number => ((bucket % ring) + ring) % ring

  /** Forgets the buckets that left the window since the last call; returns the current bucket. */
  const advance = (nowMs: number): number => {
    const bucket = Math.floor(nowMs / bucketMs)
    if (bucket <= newestBucket) return bucket
    const first = Math.max(newestBucket + 1, bucket - ring + 1)
    for (let b = first; b <= bucket; b++) {
      const slot = slotOf(b)
      total -= counts[slot]!
      counts[slot] = 0
    }
    newestBucket = bucket
    return bucket
  }

  return {
    used(nowMs) {
      advance(nowMs)
      return total
    },
    count(nowMs) {
      counts[slotOf(advance(nowMs))]!++
      total++
    },
    freesInMs(nowMs) {
      const bucket = advance(nowMs)
      let oldest = bucket - ring + 1
      while (counts[slotOf(oldest)] === 0 && oldest < bucket) oldest++
      return Math.max(1, Math.ceil((oldest + ring) * bucketMs - nowMs))
    }
  }
}

/** A budget kept in this process: exact for one node; with several, each node's share must be configured. */
export function createLocalBudget(windows: readonly RateWindow[], now: () => number): RequestBudget {
  const counters = windows.map((window) => ({ window, counter: createWindowCounter(window.windowMs) }))
  let holdUntilMs = Number.NEGATIVE_INFINITY
  return {
    take(priority) {
      return Promise.resolve(takeNow(priority))
    },
    holdOff(ms) {
      holdUntilMs = Math.max(holdUntilMs, now() + ms)
      return Promise.resolve()
    }
  }

  function takeNow(priority: RequestPriority): BudgetVerdict {
    const nowMs = now()
    if (nowMs < holdUntilMs) return { ok: false, retryAfterMs: Math.ceil(holdUntilMs - nowMs) }
    let remaining = Number.POSITIVE_INFINITY
    for (const { window, counter } of counters) {
      const used = counter.used(nowMs)
      if (used >= priorityLimit(window, priority)) return { ok: false, retryAfterMs: counter.freesInMs(nowMs) }
      remaining = Math.min(remaining, window.requests - used - 1)
    }
    for (const { counter } of counters) counter.count(nowMs)
    return { ok: true, remaining }
  }
}
