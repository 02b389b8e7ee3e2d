/**
 * A provider's request budget, e.g. Oura's 5,000 requests per 5 minutes, as a sliding window. In-process: one
 * node's share (OURA_REQUESTS_PER_5_MIN). (A budget shared by every node lives in Redis; issue 5.)
 */
export interface RateBudget {
  /** Takes one request slot; when none is free, says how long until one is. */
  take: (nowMs: number) => { ok: true } | { ok: false, retryAfterMs: number }
}

/** Resolution of the window: fixed memory and work whatever the budget (a budget may be lifted to millions). */
const BUCKETS_PER_WINDOW = 300

/**
 * Counts requests in buckets of windowMs / 300 (1 s for Oura). The window spans one bucket more than windowMs,
 * so it errs on the safe side: a request is forgotten between windowMs and windowMs + one bucket after it,
 * never earlier, and no true window ever sees more than `requests`.
 */
export function createRateBudget(requests: number, windowMs: number): RateBudget {
  const bucketCount = Math.max(1, Math.min(BUCKETS_PER_WINDOW, Math.floor(windowMs)))
  const bucketMs = windowMs / bucketCount
  const ring = bucketCount + 1
  const counts = new Array<number>(ring).fill(0)
  let total = 0
  let newestBucket = Number.NEGATIVE_INFINITY
  const slotOf = (bucket: number): number => ((bucket % ring) + ring) % ring

  /** Forgets the buckets that left the window since the last call. */
  const advance = (bucket: number): void => {
    if (bucket <= newestBucket) return
    const first = Math.max(newestBucket + 1, bucket - ring + 1)
    for (let b = first; b <= bucket; b++) {
      const slot = slotOf(b)
      total -= counts[slot]!
      counts[slot] = 0
    }
    newestBucket = bucket
  }

  return {
    take(nowMs) {
      const bucket = Math.floor(nowMs / bucketMs)
      advance(bucket)
      if (total < requests) {
        counts[slotOf(bucket)]!++
        total++
        return { ok: true }
      }
      // Full: the oldest bucket with requests frees its slots when it leaves the window.
      let oldest = bucket - ring + 1
      while (counts[slotOf(oldest)] === 0 && oldest < bucket) oldest++
      return { ok: false, retryAfterMs: Math.max(1, Math.ceil((oldest + ring) * bucketMs - nowMs)) }
    }
  }
}
