import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BridgeError } from '../../src/errors.ts'
import { classifyFailure } from '../../src/pipeline/receipt-failure.ts'
import { ProviderRequestError } from '../../src/providers/client/provider-client.ts'

describe('classifying a receipt failure', () => {
  const cases: Array<[string, unknown, ReturnType<typeof classifyFailure>]> = [
    ['429 with Retry-After', new ProviderRequestError('rate_limit_error', true, '429', { status: 429, retryAfterMs: 30_000 }),
      { code: 'BB_PROVIDER_RATE_LIMITED', errorType: 'rate_limit_error', retryable: true, retryAfterMs: 30_000, countsAsAttempt: true }],
    ['own budget spent', new ProviderRequestError('rate_limit_error', true, 'budget', { retryAfterMs: 900, notSent: true }),
      { code: 'BB_PROVIDER_RATE_LIMITED', errorType: 'rate_limit_error', retryable: true, retryAfterMs: 900, countsAsAttempt: false }],
    ['5xx', new ProviderRequestError('upstream_error', true, '503', { status: 503 }),
      { code: 'BB_PROVIDER_UNAVAILABLE', errorType: 'upstream_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }],
    ['breaker open', new ProviderRequestError('upstream_error', true, 'open', { retryAfterMs: 30_000, notSent: true }),
      { code: 'BB_PROVIDER_UNAVAILABLE', errorType: 'upstream_error', retryable: true, retryAfterMs: 30_000, countsAsAttempt: false }],
    ['timeout', new ProviderRequestError('timeout_error', true, 'slow'),
      { code: 'BB_PROVIDER_TIMEOUT', errorType: 'timeout_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }],
    ['401 after a refresh', new ProviderRequestError('authentication_error', true, '401', { status: 401 }),
      { code: 'BB_PROVIDER_AUTH_REFUSED', errorType: 'authentication_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }],
    ['403', new ProviderRequestError('authentication_error', false, '403', { status: 403 }),
      { code: 'BB_PROVIDER_FORBIDDEN', errorType: 'authentication_error', retryable: false, retryAfterMs: undefined, countsAsAttempt: true }],
    ['422', new ProviderRequestError('validation_error', false, '422', { status: 422 }),
      { code: 'BB_PROVIDER_REJECTED', errorType: 'validation_error', retryable: false, retryAfterMs: undefined, countsAsAttempt: true }],
    ['invalid_grant', new BridgeError('BB_REAUTH_REQUIRED', 'refused'),
      { code: 'BB_REAUTH_REQUIRED', errorType: 'authentication_error', retryable: false, retryAfterMs: undefined, countsAsAttempt: true }],
    ['storage down', new BridgeError('BB_STORAGE_UNAVAILABLE', 'down'),
      { code: 'BB_STORAGE_UNAVAILABLE', errorType: 'storage_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }],
    ['a bug', new TypeError('x is undefined'),
      { code: 'BB_INTERNAL', errorType: 'storage_error', retryable: true, retryAfterMs: undefined, countsAsAttempt: true }]
  ]
  for (const [name, error, expected] of cases) {
    test(name, () => { assert.deepEqual(classifyFailure(error), expected) })
  }
})
