import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel'
import type { ErrorType } from '../../errors.ts'
import type { Metrics } from '../../metrics/registry.ts'
import type { RequestBudget, RequestPriority } from './rate-budget.ts'

/**
 * A failed provider request, classified as the pipeline needs it: the §8 `error_type`, whether a later retry can
 * succeed, and how long the provider asked to wait.
 */
export class ProviderRequestError extends Error {
  readonly errorType: ErrorType
  readonly retryable: boolean
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined
  /**
   * The request never left this process (breaker open, request budget used up): the provider said nothing
   * about this request, so a retry of it should not count as a failed attempt.
   */
  readonly notSent: boolean

  constructor(
    errorType: ErrorType, retryable: boolean, message: string,
    options: { status?: number, retryAfterMs?: number, cause?: unknown, notSent?: boolean } = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProviderRequestError'
    this.errorType = errorType
    this.retryable = retryable
    this.status = options.status
    this.retryAfterMs = options.retryAfterMs
    this.notSent = options.notSent ?? false
  }
}

/** The authorization server answered `invalid_grant` to a refresh: only the user can fix it by connecting again. */
export class GrantRejectedError extends Error {
  readonly provider: 'oura' | 'whoop'

  constructor(provider: 'oura' | 'whoop') {
    super(`${provider} answered invalid_grant to a token refresh`)
    this.name = 'GrantRejectedError'
    this.provider = provider
  }
}

export interface ProviderClientOptions {
  provider: 'oura' | 'whoop'
  baseUrl: string
  /** Upper bound of one request, in milliseconds. */
  timeoutMs: number
  /** The app's request budget (shared by every node with Redis); the provider's 429s and headers feed it back. */
  budget: RequestBudget
  /** Consecutive failures (5xx, timeouts, network) that open the breaker. */
  breakerThreshold: number
  /** How long an open breaker fails fast before letting one trial request through. */
  breakerHalfOpenAfterMs: number
  metrics: Metrics
  now: () => number
}

export interface RequestOptions {
  /** Cancels the request (a stopping worker). */
  signal?: AbortSignal
  /** Whose budget share the request draws on. Default live. */
  priority?: RequestPriority
}

export interface ProviderClient {
  /** GET a JSON document with the user's bearer token; throws ProviderRequestError. */
  getJson: (path: string, accessToken: string, options?: RequestOptions) => Promise<unknown>
  breakerState: () => 'closed' | 'open' | 'half-open'
}

/** Seconds or an HTTP date, per RFC 9110; undefined when absent or unreadable. */
export function parseRetryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null || header.trim() === '') return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined
}

/**
 * WHOOP's `X-RateLimit-Remaining` / `X-RateLimit-Reset` (seconds) of the limit closest to being hit (reference
 * §2.6); undefined when the provider sends none.
 */
export function parseRateLimitHeaders(headers: Headers): { remaining: number, resetMs: number | undefined } | undefined {
  const remaining = Number.parseInt(headers.get('x-ratelimit-remaining') ?? '', 10)
  if (!Number.isFinite(remaining) || remaining < 0) return undefined
  const reset = Number.parseInt(headers.get('x-ratelimit-reset') ?? '', 10)
  return { remaining, resetMs: Number.isFinite(reset) && reset >= 0 ? reset * 1000 : undefined }
}

/** How long every node holds off after a 429 that named no Retry-After. */
const DEFAULT_HOLD_OFF_MS = 60_000

/** Only failures that say the provider is unwell count towards opening the breaker; a 404 or 401 does not. */
const isOutage = (error: unknown): boolean =>
  error instanceof ProviderRequestError && (error.errorType === 'upstream_error' || error.errorType === 'timeout_error')

/**
 * One provider's HTTP client: a request budget, a timeout per request and a circuit breaker. It makes exactly one
 * attempt; retrying is the durable receipt's job (with backoff), so nothing sleeps in memory.
 */
export function createProviderClient(options: ProviderClientOptions): ProviderClient {
  const { provider, metrics } = options
  const breaker = circuitBreaker(handleWhen(isOutage), {
    halfOpenAfter: options.breakerHalfOpenAfterMs,
    breaker: new ConsecutiveBreaker(options.breakerThreshold)
  })

  const attempt = async (path: string, accessToken: string, signal: AbortSignal | undefined): Promise<unknown> => {
    let response: Response
    try {
      const timeout = AbortSignal.timeout(options.timeoutMs)
      response = await fetch(`${options.baseUrl}${path}`, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal])
      })
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')
      metrics.providerRequestsTotal.inc({ provider, status: timedOut ? 'timeout' : 'network_error' })
      throw timedOut
        ? new ProviderRequestError('timeout_error', true, `${provider} did not answer in ${options.timeoutMs} ms`, { cause: error })
        : new ProviderRequestError('upstream_error', true, `${provider} could not be reached`, { cause: error })
    }
    metrics.providerRequestsTotal.inc({ provider, status: String(response.status) })
    const limits = parseRateLimitHeaders(response.headers)
    if (limits !== undefined) {
      metrics.providerRateLimitRemaining.set({ provider }, limits.remaining)
      // The provider's count is the truth (other apps' keys, requests made before a restart): when it says none
      // are left, every node waits for its reset instead of spending requests on 429s.
      if (limits.remaining === 0 && response.status !== 429) await options.budget.holdOff(limits.resetMs ?? DEFAULT_HOLD_OFF_MS)
    }
    if (response.ok) {
      try {
        return await response.json()
      } catch (error) {
        throw new ProviderRequestError('upstream_error', true, `${provider} sent an unreadable body`, { status: response.status, cause: error })
      }
    }
    await response.body?.cancel()
    const status = response.status
    const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'), options.now())
    if (status === 429) {
      await options.budget.holdOff(retryAfterMs ?? limits?.resetMs ?? DEFAULT_HOLD_OFF_MS)
      throw new ProviderRequestError('rate_limit_error', true, `${provider} rate limit`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
    }
    if (status === 401) throw new ProviderRequestError('authentication_error', true, `${provider} refused the access token`, { status })
    if (status === 403) throw new ProviderRequestError('authentication_error', false, `${provider} denied access (scope or membership)`, { status })
    if (status >= 500) {
      throw new ProviderRequestError('upstream_error', true, `${provider} answered ${status}`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
    }
    throw new ProviderRequestError('validation_error', false, `${provider} answered ${status}`, { status })
  }

  return {
    async getJson(path, accessToken, requestOptions = {}) {
      const slot = await options.budget.take(requestOptions.priority ?? 'live')
      if (slot.ok) metrics.providerBudgetRemaining.set({ provider }, slot.remaining)
      else {
        metrics.providerRequestsTotal.inc({ provider, status: 'budget_exhausted' })
        throw new ProviderRequestError('rate_limit_error', true, `${provider} request budget used up`, { retryAfterMs: slot.retryAfterMs, notSent: true })
      }
      try {
        return await breaker.execute(() => attempt(path, accessToken, requestOptions.signal))
      } catch (error) {
        if (error instanceof BrokenCircuitError) {
          metrics.providerRequestsTotal.inc({ provider, status: 'circuit_open' })
          throw new ProviderRequestError('upstream_error', true, `${provider} circuit open`, {
            retryAfterMs: options.breakerHalfOpenAfterMs, cause: error, notSent: true
          })
        }
        throw error
      }
    },
    breakerState() {
      switch (breaker.state) {
        case CircuitState.Closed: return 'closed'
        case CircuitState.HalfOpen: return 'half-open'
        default: return 'open'
      }
    }
  }
}
