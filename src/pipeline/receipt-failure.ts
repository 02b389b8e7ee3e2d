import { BridgeError, type ErrorCode, type ErrorType } from '../errors.ts'
import { ProviderRequestError } from '../providers/client/provider-client.ts'

export interface Failure {
  code: ErrorCode
  errorType: ErrorType
  retryable: boolean
  retryAfterMs: number | undefined
  /**
   * False when the request never reached the provider (open breaker, exhausted budget): a provider outage must
   * not use up every waiting receipt's attempts and dead-letter them while nothing was even tried.
   */
  countsAsAttempt: boolean
}

/** Maps whatever a receipt's work threw to the code recorded on the receipt and whether to try again. */
export function classifyFailure(error: unknown): Failure {
  if (error instanceof BridgeError) {
    return { code: error.code, errorType: error.errorType, retryable: error.retryable, retryAfterMs: undefined, countsAsAttempt: true }
  }
  if (error instanceof ProviderRequestError) {
    const retryAfterMs = error.retryAfterMs
    const code: ErrorCode = error.errorType === 'rate_limit_error'
      ? 'BB_PROVIDER_RATE_LIMITED'
      : error.errorType === 'timeout_error'
        ? 'BB_PROVIDER_TIMEOUT'
        : error.errorType === 'authentication_error'
          ? (error.retryable ? 'BB_PROVIDER_AUTH_REFUSED' : 'BB_PROVIDER_FORBIDDEN')
          : error.errorType === 'upstream_error' ? 'BB_PROVIDER_UNAVAILABLE' : 'BB_PROVIDER_REJECTED'
    return { code, errorType: error.errorType, retryable: error.retryable, retryAfterMs, countsAsAttempt: !error.notSent }
  }
  // A storage outage or a bug: retried with backoff, dead-lettered if it keeps happening.
  return { code: 'BB_INTERNAL', errorType: 'storage_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }
}
