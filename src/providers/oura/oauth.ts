import type { Config } from '../../config/load.ts'
import { BridgeError } from '../../errors.ts'
import type { ConnectionTokens } from '../../storage/connections-repository.ts'
import { GrantRejectedError, ProviderRequestError, parseRetryAfterMs } from '../client/provider-client.ts'
import { asObject } from '../json-object.ts'

/** Scopes the bridge needs for the documents it maps (personal: personal_info.id for webhook routing). */
export const OURA_SCOPES = ['personal', 'daily', 'heartrate', 'spo2Daily'] as const

type OuraConfig = NonNullable<Config['oura']>

/** Upper bound of one call to Oura during the connect flow, in milliseconds. */
const REQUEST_TIMEOUT_MS = 10_000

export function ouraAuthorizeUrl(oura: OuraConfig, state: string, redirectUri: string): string {
  const url = new URL(oura.authorizeUrl)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', oura.clientId)
  url.searchParams.set('redirect_uri', redirectUri)
  url.searchParams.set('state', state)
  url.searchParams.set('scope', OURA_SCOPES.join(' '))
  return url.toString()
}

async function call(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  } catch (error) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', 'Oura could not be reached', { cause: error })
  }
}

/** Exchanges an authorization code (single use, 10 minutes) for the token pair; client credentials in the body. */
export async function exchangeOuraCode(oura: OuraConfig, code: string, redirectUri: string, nowMs: number): Promise<ConnectionTokens> {
  const response = await call(`${oura.apiUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: oura.clientId, client_secret: oura.clientSecrets[0]!
    })
  })
  const body = await response.json().catch(() => undefined) as Record<string, unknown> | undefined
  if (!response.ok || typeof body?.access_token !== 'string') {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', `Oura refused the authorization code (HTTP ${response.status})`)
  }
  return {
    accessToken: body.access_token,
    refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : null,
    accessExpiresAt: typeof body.expires_in === 'number' ? new Date(nowMs + body.expires_in * 1000) : null
  }
}

/** Oura's id of the user (`personal_info.id`), which its webhooks carry as `user_id`. */
export async function fetchOuraUserId(oura: OuraConfig, accessToken: string): Promise<string> {
  const response = await call(`${oura.apiUrl}/v2/usercollection/personal_info`, { headers: { authorization: `Bearer ${accessToken}` } })
  const body = await response.json().catch(() => undefined) as Record<string, unknown> | undefined
  if (!response.ok || typeof body?.id !== 'string' || body.id.length === 0 || body.id.length > 128) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', `Oura did not return the user's id (HTTP ${response.status})`)
  }
  return body.id
}

/** Best effort: a failed revocation still deletes the tokens locally. Returns whether Oura confirmed. */
export async function revokeOuraToken(oura: OuraConfig, accessToken: string): Promise<boolean> {
  try {
    const response = await call(`${oura.apiUrl}/oauth/revoke?access_token=${encodeURIComponent(accessToken)}`, { method: 'POST' })
    return response.ok
  } catch {
    return false
  }
}

/**
 * Spends a refresh token (single-use at Oura) for a new pair. `invalid_grant` (spent, revoked or unknown token)
 * throws GrantRejectedError; anything else that failed throws a retryable ProviderRequestError, since the token
 * may still be unspent.
 */
export async function refreshOuraToken(oura: OuraConfig, refreshToken: string, nowMs: number): Promise<ConnectionTokens> {
  let response: Response
  try {
    response = await fetch(`${oura.apiUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token', refresh_token: refreshToken, client_id: oura.clientId, client_secret: oura.clientSecrets[0]!
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
  } catch (error) {
    throw new ProviderRequestError('upstream_error', true, 'Oura token endpoint could not be reached', { cause: error })
  }
  const body = asObject(await response.json().catch(() => undefined))
  if (response.ok && typeof body?.access_token === 'string') {
    return {
      accessToken: body.access_token,
      // Oura rotates refresh tokens; should a response ever omit it, the old one is the only one there is.
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : refreshToken,
      accessExpiresAt: typeof body.expires_in === 'number' ? new Date(nowMs + body.expires_in * 1000) : null
    }
  }
  if (response.status === 400 || response.status === 401) {
    if (body?.error === 'invalid_grant') throw new GrantRejectedError('oura')
    // invalid_client and friends: our configuration is wrong, not the user's grant; retrying will not help
    // until an operator fixes it, but the user's connection must survive that.
    throw new ProviderRequestError('authentication_error', true, `Oura refused the token refresh (${typeof body?.error === 'string' ? body.error.slice(0, 40) : response.status})`, { status: response.status })
  }
  const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'), nowMs)
  throw new ProviderRequestError(response.status === 429 ? 'rate_limit_error' : 'upstream_error', true,
    `Oura token endpoint answered ${response.status}`, { status: response.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
}
