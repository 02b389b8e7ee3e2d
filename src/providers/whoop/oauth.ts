import type { Config } from '../../config/load.ts'
import { BridgeError } from '../../errors.ts'
import type { ConnectionTokens } from '../../storage/connections-repository.ts'
import { OAUTH_TIMEOUT_MS, authorizationUrl, exchangeAuthorizationCode, refreshAccessToken, type TokenEndpoint } from '../client/oauth-token.ts'
import { asObject } from '../json-object.ts'
import { parseWhoopUserId } from './notification.ts'

/**
 * Scopes the bridge needs (reference §2.1): the four data scopes it maps, the profile for the user id its
 * webhooks carry, and `offline`, without which WHOOP issues no refresh token at all.
 */
export const WHOOP_SCOPES = ['offline', 'read:profile', 'read:sleep', 'read:recovery', 'read:workout', 'read:cycles'] as const

type WhoopConfig = NonNullable<Config['whoop']>

const tokenEndpoint = (whoop: WhoopConfig): TokenEndpoint => ({
  provider: 'whoop', name: 'WHOOP', tokenUrl: `${whoop.apiUrl}/oauth/oauth2/token`, clientId: whoop.clientId, clientSecret: whoop.clientSecrets[0]!
})

export function whoopAuthorizeUrl(whoop: WhoopConfig, state: string, redirectUri: string): string {
  return authorizationUrl(`${whoop.apiUrl}/oauth/oauth2/auth`, { clientId: whoop.clientId, redirectUri, state, scopes: WHOOP_SCOPES })
}

export async function exchangeWhoopCode(whoop: WhoopConfig, code: string, redirectUri: string, nowMs: number): Promise<ConnectionTokens> {
  return exchangeAuthorizationCode(tokenEndpoint(whoop), code, redirectUri, nowMs)
}

/**
 * Spends a refresh token for a new pair. WHOOP rotates refresh tokens on every refresh (and may revoke the whole
 * family when a spent one is presented again), so only the token manager's single flight may call this.
 */
export async function refreshWhoopToken(whoop: WhoopConfig, refreshToken: string, nowMs: number): Promise<ConnectionTokens> {
  return refreshAccessToken(tokenEndpoint(whoop), refreshToken, nowMs, { scope: 'offline' })
}

/** WHOOP's id of the user (`user_id` of the basic profile, an int64 kept as text), which its webhooks carry. */
export async function fetchWhoopUserId(whoop: WhoopConfig, accessToken: string): Promise<string> {
  let response: Response
  try {
    response = await fetch(`${whoop.apiUrl}/developer/v2/user/profile/basic`, {
      headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(OAUTH_TIMEOUT_MS)
    })
  } catch (error) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', 'WHOOP could not be reached', { cause: error })
  }
  const body = asObject(await response.json().catch(() => undefined))
  const id = parseWhoopUserId(body?.user_id)
  if (!response.ok || id === undefined) {
    throw new BridgeError('BB_OAUTH_EXCHANGE_FAILED', `WHOOP did not return the user's id (HTTP ${response.status})`)
  }
  return id
}

/** Best effort: a failed revocation still deletes the tokens locally. Returns whether WHOOP confirmed. */
export async function revokeWhoopAccess(whoop: WhoopConfig, accessToken: string): Promise<boolean> {
  try {
    const response = await fetch(`${whoop.apiUrl}/developer/v2/user/access`, {
      method: 'DELETE', headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(OAUTH_TIMEOUT_MS)
    })
    return response.ok
  } catch {
    return false
  }
}
