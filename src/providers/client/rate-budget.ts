/**
 * A provider's request budget, e.g. Oura's 5,000 requests per 5 minutes, as a sliding window over request
 * start times. In-process: one node's share. (A budget shared by every node lives in Redis; issue 5.)
 */
export interface RateBudget {
  /** Takes one request slot; when none is free, says how long until one is. */
  take: (nowMs: number) => { ok: true } | { ok: false, retryAfterMs: number }
}

export function createRateBudget(requests: number, windowMs: number): RateBudget {
  // Ring buffer of the last `requests` start times: O(1) per request, fixed memory.
  const starts = new Array<number>(requests).fill(Number.NEGATIVE_INFINITY)
  let next = 0
  return {
    take(nowMs) {
      const oldest = starts[next]!
      if (nowMs - oldest < windowMs) return { ok: false, retryAfterMs: oldest + windowMs - nowMs }
      starts[next] = nowMs
      next = (next + 1) % requests
      return { ok: true }
    }
  }
}
