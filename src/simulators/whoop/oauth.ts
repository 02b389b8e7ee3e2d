import { randomBytes } from 'node:crypto'

/**
 * WHOOP's OAuth2 server as the bridge should expect it (reference §2.1): codes live 10 minutes and work once;
 * only a grant including `offline` gets a refresh token; every refresh rotates it. WHOOP does not document what
 * happens to a used refresh token, so this server takes the strict reading real authorization servers apply
 * (RFC 9700 §4.14.2): presenting it again is `invalid_grant` AND revokes the whole family — every access and
 * refresh token descended from the same authorization. A bridge that refreshes twice concurrently loses the user.
 */

export const WHOOP_SCOPES = [
  'read:recovery', 'read:cycles', 'read:workout', 'read:sleep', 'read:profile', 'read:body_measurement', 'offline'
] as const

export interface WhoopTokenResponse {
  access_token: string
  /** Seconds. */
  expires_in: number
  /** Only with the `offline` scope. */
  refresh_token?: string
  scope: string
  token_type: 'bearer'
}

export interface WhoopTokenStats {
  /** refresh_token grants presenting one of this user's refresh tokens, successful or not. */
  refreshCalls: number
  /** Refreshes that rotated the token. */
  refreshes: number
  /** Used refresh tokens presented again. */
  refreshReuses: number
  /** Families revoked because of a reused refresh token or authorization code. */
  familiesRevoked: number
}

export type WhoopOAuthResult =
  | { ok: true, tokens: WhoopTokenResponse }
  | { ok: false, status: 400 | 401, error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' }

export type WhoopAccessCheck = { ok: true, userId: string, scopes: ReadonlySet<string> } | { ok: false }

/** Everything issued from one authorization. */
interface Family {
  userId: string
  scopes: readonly string[]
  revoked: boolean
}

export interface WhoopOAuthServer {
  issueCode(userId: string, scopes: readonly string[], redirectUri: string | undefined): string
  issueTokens(userId: string, scopes: readonly string[]): WhoopTokenResponse
  token(form: URLSearchParams): WhoopOAuthResult
  checkAccess(accessToken: string): WhoopAccessCheck
  /** Revokes every family of the user (DELETE /v2/user/access). */
  revokeUser(userId: string): void
  expireAccessTokens(): void
  stats(userId: string): WhoopTokenStats
}

const newToken = (): string => randomBytes(24).toString('base64url')

export function createWhoopOAuth(options: {
  clientId: string
  clientSecret: string
  now: () => number
  accessTokenTtlSeconds: number
  codeTtlSeconds: number
  /** Sees every token set minted (tests record them as canaries for the secret scan). */
  onTokensIssued?: (tokens: WhoopTokenResponse) => void
}): WhoopOAuthServer {
  const codes = new Map<string, { family: Family, redirectUri: string | undefined, expiresAtMs: number, used: boolean }>()
  const accessTokens = new Map<string, { family: Family, expiresAtMs: number }>()
  const refreshTokens = new Map<string, { family: Family, used: boolean }>()
  const families: Family[] = []
  const statsByUser = new Map<string, WhoopTokenStats>()
  const stats = (userId: string): WhoopTokenStats => {
    let entry = statsByUser.get(userId)
    if (entry === undefined) {
      entry = { refreshCalls: 0, refreshes: 0, refreshReuses: 0, familiesRevoked: 0 }
      statsByUser.set(userId, entry)
    }
    return entry
  }
  const newFamily = (userId: string, scopes: readonly string[]): Family => {
    const family = { userId, scopes: [...scopes], revoked: false }
    families.push(family)
    return family
  }
  const revokeFamily = (family: Family): void => {
    if (family.revoked) return
    family.revoked = true
    stats(family.userId).familiesRevoked++
  }

  const mint = (family: Family): WhoopTokenResponse => {
    const accessToken = newToken()
    accessTokens.set(accessToken, { family, expiresAtMs: options.now() + options.accessTokenTtlSeconds * 1000 })
    const tokens: WhoopTokenResponse = {
      access_token: accessToken,
      expires_in: options.accessTokenTtlSeconds,
      scope: family.scopes.join(' '),
      token_type: 'bearer'
    }
    if (family.scopes.includes('offline')) {
      const refreshToken = newToken()
      refreshTokens.set(refreshToken, { family, used: false })
      tokens.refresh_token = refreshToken
    }
    options.onTokensIssued?.(tokens)
    return tokens
  }

  const fail = (error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type', status: 400 | 401 = 400): WhoopOAuthResult =>
    ({ ok: false, status, error })

  return {
    issueCode(userId, scopes, redirectUri) {
      const code = newToken()
      codes.set(code, { family: newFamily(userId, scopes), redirectUri, expiresAtMs: options.now() + options.codeTtlSeconds * 1000, used: false })
      return code
    },
    issueTokens: (userId, scopes) => mint(newFamily(userId, scopes)),

    token(form) {
      // WHOOP documents the client credentials in the form body (reference §2.1).
      if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) {
        return fail('invalid_client', 401)
      }
      const grantType = form.get('grant_type')
      if (grantType === 'authorization_code') {
        const code = form.get('code')
        if (code === null) return fail('invalid_request')
        const record = codes.get(code)
        if (record === undefined || options.now() >= record.expiresAtMs) return fail('invalid_grant')
        if (record.used) {
          // RFC 6749 §4.1.2: a replayed code should revoke what it produced.
          revokeFamily(record.family)
          return fail('invalid_grant')
        }
        if (record.redirectUri !== undefined && form.get('redirect_uri') !== record.redirectUri) return fail('invalid_grant')
        record.used = true
        return { ok: true, tokens: mint(record.family) }
      }
      if (grantType === 'refresh_token') {
        const token = form.get('refresh_token')
        if (token === null) return fail('invalid_request')
        const record = refreshTokens.get(token)
        if (record === undefined) return fail('invalid_grant')
        const userStats = stats(record.family.userId)
        userStats.refreshCalls++
        if (record.used) {
          userStats.refreshReuses++
          revokeFamily(record.family)
          return fail('invalid_grant')
        }
        if (record.family.revoked) return fail('invalid_grant')
        // Checked and burnt without an await in between: of two concurrent refreshes exactly one wins.
        record.used = true
        userStats.refreshes++
        return { ok: true, tokens: mint(record.family) }
      }
      return fail(grantType === null ? 'invalid_request' : 'unsupported_grant_type')
    },

    checkAccess(accessToken) {
      const record = accessTokens.get(accessToken)
      if (record === undefined || record.family.revoked || options.now() >= record.expiresAtMs) return { ok: false }
      return { ok: true, userId: record.family.userId, scopes: new Set(record.family.scopes) }
    },

    revokeUser(userId) {
      // A user revoking access is not a security incident: familiesRevoked counts only reuse.
      for (const family of families) if (family.userId === userId) family.revoked = true
    },

    expireAccessTokens() {
      const nowMs = options.now()
      for (const record of accessTokens.values()) record.expiresAtMs = Math.min(record.expiresAtMs, nowMs)
    },

    stats: (userId) => ({ ...stats(userId) })
  }
}
