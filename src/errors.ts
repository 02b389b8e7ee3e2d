/**
 * Every error the bridge can report, in one place. A code's HTTP status, whether its message may be shown to
 * a client (`expose`) and whether the caller may retry (`retryable`) belong to the code, not to the call site.
 * docs/errors.md lists every code; test/errors.test.ts keeps the two in sync.
 */
export const ERROR_CODES = {
  // Configuration and start-up
  BB_CONFIG_INVALID: { status: 500, expose: false, retryable: false, errorType: 'validation_error' },
  BB_MIGRATION_FAILED: { status: 500, expose: false, retryable: false, errorType: 'storage_error' },
  // HTTP request shape
  BB_NOT_FOUND: { status: 404, expose: true, retryable: false, errorType: 'validation_error' },
  BB_BODY_TOO_LARGE: { status: 413, expose: true, retryable: false, errorType: 'validation_error' },
  BB_TOO_MANY_SAMPLES: { status: 413, expose: true, retryable: false, errorType: 'validation_error' },
  BB_UNSUPPORTED_MEDIA_TYPE: { status: 415, expose: true, retryable: false, errorType: 'validation_error' },
  BB_MALFORMED_JSON: { status: 400, expose: true, retryable: false, errorType: 'validation_error' },
  BB_INVALID_REQUEST: { status: 400, expose: true, retryable: false, errorType: 'validation_error' },
  BB_INVALID_CURSOR: { status: 400, expose: true, retryable: false, errorType: 'validation_error' },
  BB_PAYLOAD_TOO_DEEP: { status: 400, expose: true, retryable: false, errorType: 'validation_error' },
  // Authentication and authorization
  BB_UNAUTHENTICATED: { status: 401, expose: true, retryable: false, errorType: 'authentication_error' },
  BB_FORBIDDEN: { status: 403, expose: true, retryable: false, errorType: 'authentication_error' },
  // Provider webhooks
  BB_SIGNATURE_MISSING: { status: 401, expose: true, retryable: false, errorType: 'signature_error' },
  BB_SIGNATURE_MISMATCH: { status: 401, expose: true, retryable: false, errorType: 'signature_error' },
  BB_SIGNATURE_STALE: { status: 401, expose: true, retryable: false, errorType: 'signature_error' },
  BB_VERIFICATION_TOKEN_MISMATCH: { status: 401, expose: true, retryable: false, errorType: 'authentication_error' },
  BB_WEBHOOK_MALFORMED: { status: 400, expose: true, retryable: false, errorType: 'validation_error' },
  // OAuth connections
  BB_OAUTH_STATE_INVALID: { status: 400, expose: true, retryable: false, errorType: 'authentication_error' },
  BB_OAUTH_DENIED: { status: 400, expose: true, retryable: false, errorType: 'authentication_error' },
  // Not retryable: the code and the state are single-use, so only a new connection attempt can succeed.
  BB_OAUTH_EXCHANGE_FAILED: { status: 502, expose: true, retryable: false, errorType: 'upstream_error' },
  // Provider administration (webhook subscriptions), run by the CLI and scheduled jobs. Not exposed: the message
  // carries the provider's own error detail. Not retryable as a code: a 4xx needs a fix first, and a rerun after
  // a 5xx is the operator's or the next schedule's call.
  BB_PROVIDER_REQUEST_FAILED: { status: 502, expose: false, retryable: false, errorType: 'upstream_error' },
  // Background processing of receipts: recorded on the receipt (`last_error_code`) and in logs, never a response.
  // The retryable ones reschedule the receipt with backoff; the others end it at once.
  BB_PROVIDER_RATE_LIMITED: { status: 503, expose: false, retryable: true, errorType: 'rate_limit_error' },
  BB_PROVIDER_UNAVAILABLE: { status: 503, expose: false, retryable: true, errorType: 'upstream_error' },
  BB_PROVIDER_TIMEOUT: { status: 503, expose: false, retryable: true, errorType: 'timeout_error' },
  BB_PROVIDER_AUTH_REFUSED: { status: 503, expose: false, retryable: true, errorType: 'authentication_error' },
  BB_TOKEN_REFRESH_BUSY: { status: 503, expose: false, retryable: true, errorType: 'authentication_error' },
  BB_PROVIDER_FORBIDDEN: { status: 502, expose: false, retryable: false, errorType: 'authentication_error' },
  BB_PROVIDER_REJECTED: { status: 502, expose: false, retryable: false, errorType: 'validation_error' },
  BB_REAUTH_REQUIRED: { status: 409, expose: false, retryable: false, errorType: 'authentication_error' },
  BB_NO_CONNECTION: { status: 404, expose: false, retryable: false, errorType: 'authentication_error' },
  // Per-sample rejections (reported inside a 200 upload response, never as the request's status)
  BB_SAMPLE_MALFORMED: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_UNKNOWN_TYPE: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_UNIT_UNSUPPORTED: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_NOT_FINITE: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_OUT_OF_RANGE: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_BAD_TIME: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_END_BEFORE_START: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_IN_FUTURE: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_TOO_OLD: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  BB_SAMPLE_SPAN_TOO_LONG: { status: 422, expose: true, retryable: false, errorType: 'validation_error' },
  // Dependencies and overload
  BB_STORAGE_UNAVAILABLE: { status: 503, expose: true, retryable: true, errorType: 'storage_error' },
  BB_OVERLOADED: { status: 503, expose: true, retryable: true, errorType: 'storage_error' },
  BB_SHUTTING_DOWN: { status: 503, expose: true, retryable: true, errorType: 'storage_error' },
  BB_TOKEN_UNREADABLE: { status: 500, expose: false, retryable: false, errorType: 'authentication_error' },
  BB_INTERNAL: { status: 500, expose: false, retryable: false, errorType: 'storage_error' }
} as const satisfies Record<string, ErrorDefinition>

export type ErrorType =
  | 'rate_limit_error' | 'authentication_error' | 'validation_error' | 'duplicate_event' | 'signature_error'
  | 'upstream_error' | 'timeout_error' | 'storage_error' | 'publish_error'

interface ErrorDefinition {
  /** HTTP status when the error ends a request. */
  status: number
  /** Whether `message` may reach a client; unexposed errors answer with a generic body. */
  expose: boolean
  /** Whether repeating the same operation later can succeed. */
  retryable: boolean
  /** The `error_type` label of `webhook_events_failed_total` (design §8). */
  errorType: ErrorType
}

export type ErrorCode = keyof typeof ERROR_CODES
export type SampleRejectionCode = Extract<ErrorCode, `BB_SAMPLE_${string}`>

export class BridgeError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly expose: boolean
  readonly retryable: boolean
  readonly errorType: ErrorType
  /** Seconds a client should wait before retrying (503 responses carry it as Retry-After). */
  readonly retryAfterSeconds: number | undefined

  constructor(code: ErrorCode, message: string, options: { cause?: unknown, retryAfterSeconds?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    const definition: ErrorDefinition = ERROR_CODES[code]
    this.name = 'BridgeError'
    this.code = code
    this.status = definition.status
    this.expose = definition.expose
    this.retryable = definition.retryable
    this.errorType = definition.errorType
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

/** Raised by config loading with every problem found, so an operator fixes them in one go. */
export class ConfigError extends BridgeError {
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    super('BB_CONFIG_INVALID', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** Every catch site holds an Error afterwards; the original value survives as `cause`. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value
  return new Error(typeof value === 'string' ? value : 'non-error thrown', { cause: value })
}

export function isBridgeError(value: unknown): value is BridgeError {
  return value instanceof BridgeError
}
