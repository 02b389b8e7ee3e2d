import type { Config } from '../../config/load.ts'
import { BridgeError } from '../../errors.ts'
import type { ConnectionTokens } from '../../storage/connections-repository.ts'
import { OAUTH_TIMEOUT_MS, authorizationUrl, exchangeAuthorizationCode, refreshAccessToken, type TokenEndpoint } from '../client/oauth-token.ts'

/** Scopes the bridge needs for the documents it maps (personal: personal_info.id for webhook routing). */
export const OURA_SCOPES = ['personal', 'daily', 'heartrate', 'spo2Daily'] as const

type OuraConfig = NonNullable<Config['oura']>


export function ouraAuthorizeUrl(oura: OuraConfig, state: string, redirectUri: string): string {
  return authorizationUrl(oura.authorizeUrl, { clientId: oura.clientId, redirectUri, state, scopes: OURA_SCOPES })
}

async function call(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(OAUTH_TIMEOUT_MS) })
  } catch (error) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', 'Oura could not be reached', { cause: error })
  }
}

const tokenEndpoint = (oura: OuraConfig): TokenEndpoint => ({
  provider: 'oura', name: 'Oura', tokenUrl: `${oura.apiUrl}/oauth/token`, clientId: oura.clientId, clientSecret: oura.clientSecrets[0]!
})

/** Exchanges an authorization code (single use, 10 minutes) for the token pair. */
export async function exchangeOuraCode(oura: OuraConfig, code: string, redirectUri: string, nowMs: number): Promise<ConnectionTokens> {
  return exchangeAuthorizationCode(tokenEndpoint(oura), code, redirectUri, nowMs)
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

/** Spends a refresh token (single-use at Oura) for a new pair; see refreshAccessToken for the errors. */
export async function refreshOuraToken(oura: OuraConfig, refreshToken: string, nowMs: number): Promise<ConnectionTokens> {
  return refreshAccessToken(tokenEndpoint(oura), refreshToken, nowMs)
}
