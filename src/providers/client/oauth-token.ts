import { BridgeError } from '../../errors.ts'
import type { ConnectionTokens } from '../../storage/connections-repository.ts'
import { asObject } from '../json-object.ts'
import { GrantRejectedError, ProviderRequestError, parseRetryAfterMs } from './provider-client.ts'

/**
 * The token endpoint of an OAuth2 provider (RFC 6749, form-encoded, client credentials in the body) — the same
 * for Oura and WHOOP; only URLs, scopes and what a refresh must carry differ.
 */
export interface TokenEndpoint {
  provider: 'oura' | 'whoop'
  /** Human name for messages, e.g. `Oura`. */
  name: string
  tokenUrl: string
  clientId: string
  clientSecret: string
}

/** The URL to send a user to for consent (authorization code flow). */
export function authorizationUrl(
  endpoint: string, request: { clientId: string, redirectUri: string, state: string, scopes: readonly string[] }
): string {
  const url = new URL(endpoint)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', request.clientId)
  url.searchParams.set('redirect_uri', request.redirectUri)
  url.searchParams.set('state', request.state)
  url.searchParams.set('scope', request.scopes.join(' '))
  return url.toString()
}

/** RFC 6749 §5.2 error codes: the only part of a token endpoint's error body the bridge repeats. */
const OAUTH_ERROR_CODES: ReadonlySet<string> = new Set([
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope'
])

/** Upper bound of one call to a provider's OAuth endpoints, in milliseconds. */
export const OAUTH_TIMEOUT_MS = 10_000

function tokensOf(body: Record<string, unknown>, nowMs: number, previousRefreshToken: string | null): ConnectionTokens {
  return {
    accessToken: body.access_token as string,
    // Rotating providers send a new refresh token every time; should a response omit it, the old one is all there is.
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : previousRefreshToken,
    accessExpiresAt: typeof body.expires_in === 'number' ? new Date(nowMs + body.expires_in * 1000) : null
  }
}

async function post(endpoint: TokenEndpoint, form: Record<string, string>): Promise<Response> {
  return fetch(endpoint.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form, client_id: endpoint.clientId, client_secret: endpoint.clientSecret }),
    signal: AbortSignal.timeout(OAUTH_TIMEOUT_MS)
  })
}

/** Exchanges an authorization code (single use) for the token pair; any failure is BB_OAUTH_EXCHANGE_FAILED. */
export async function exchangeAuthorizationCode(
  endpoint: TokenEndpoint, code: string, redirectUri: string, nowMs: number
): Promise<ConnectionTokens> {
  let response: Response
  try {
    response = await post(endpoint, { grant_type: 'authorization_code', code, redirect_uri: redirectUri })
  } catch (error) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', `${endpoint.name} could not be reached`, { cause: error })
  }
  const body = asObject(await response.json().catch(() => undefined))
  if (!response.ok || body === undefined || typeof body.access_token !== 'string') {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', `${endpoint.name} refused the authorization code (HTTP ${response.status})`)
  }
  return tokensOf(body, nowMs, null)
}

/**
 * Spends a refresh token for a new pair. `invalid_grant` (spent, revoked or unknown token) throws
 * GrantRejectedError; anything else that failed throws a retryable ProviderRequestError, since the token may
 * still be unspent.
 */
export async function refreshAccessToken(
  endpoint: TokenEndpoint, refreshToken: string, nowMs: number, extra: Record<string, string> = {}
): Promise<ConnectionTokens> {
  let response: Response
  try {
    response = await post(endpoint, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra })
  } catch (error) {
    throw new ProviderRequestError('upstream_error', true, `${endpoint.name} token endpoint could not be reached`, { cause: error })
  }
  const body = asObject(await response.json().catch(() => undefined))
  if (response.ok && typeof body?.access_token === 'string') return tokensOf(body, nowMs, refreshToken)
  if (response.status === 400 || response.status === 401) {
    if (body?.error === 'invalid_grant') throw new GrantRejectedError(endpoint.provider)
    // invalid_client and friends: our configuration is wrong, not the user's grant; retrying will not help
    // until an operator fixes it, but the user's connection must survive that.
    // Only a registered code is repeated: a provider may echo the refresh token in `error` itself (reference §3.2).
    const reason = typeof body?.error === 'string' && OAUTH_ERROR_CODES.has(body.error) ? body.error : `HTTP ${response.status}`
    throw new ProviderRequestError('authentication_error', true, `${endpoint.name} refused the token refresh (${reason})`, { status: response.status })
  }
  const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'), nowMs)
  throw new ProviderRequestError(response.status === 429 ? 'rate_limit_error' : 'upstream_error', true,
    `${endpoint.name} token endpoint answered ${response.status}`, { status: response.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
}
