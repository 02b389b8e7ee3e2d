/** Durable retry schedule of a failed receipt (issue defaults: the reference system's parameters). */
export interface BackoffPolicy {
  baseMs: number
  factor: number
  maxMs: number
  /** ± fraction applied to each delay, e.g. 0.1 for ±10 %, so retries of many receipts do not align. */
  jitterRatio: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, factor: 2, maxMs: 300_000, jitterRatio: 0.1 }

/**
 * Delay before attempt `attempt + 1` after `attempt` failures (attempt ≥ 1): base × factor^(attempt−1), capped,
 * then jittered. A provider's Retry-After, when longer, wins. `random` returns [0, 1).
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number, retryAfterMs?: number): number {
  const exponent = Math.max(0, attempt - 1)
  const raw = Math.min(policy.maxMs, policy.baseMs * policy.factor ** exponent)
  const jitter = 1 + policy.jitterRatio * (2 * random() - 1)
  const delay = Math.round(raw * jitter)
  return retryAfterMs !== undefined && retryAfterMs > delay ? retryAfterMs : delay
}
