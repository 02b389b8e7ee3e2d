/** Who asks for a request: live webhook fetches come first, then reconciliation, then backfill. */
export type RequestPriority = 'live' | 'reconcile' | 'backfill'

/** One limit of a provider app, e.g. WHOOP's 100 per minute and 10,000 per day (reference §2.6). */
export interface RateWindow {
  requests: number
  windowMs: number
}

export interface SharedBudget {
  /** Takes one request of the app's budget for every node at once, or says how long until one is free. */
  take(priority: RequestPriority): Promise<{ ok: true, remaining: number } | { ok: false, retryAfterMs: number }>
}

/**
 * Share of each window a priority may fill: backfill stops at half, reconciliation at 80 %, so a burst of history
 * never leaves live webhooks without requests.
 */
export const PRIORITY_SHARE: Readonly<Record<RequestPriority, number>> = { live: 1, reconcile: 0.8, backfill: 0.5 }
