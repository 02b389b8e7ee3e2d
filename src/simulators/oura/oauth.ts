import { randomBytes } from 'node:crypto'

/**
 * Oura's OAuth2 authorization server as the bridge meets it (reference §1.1): authorization codes live 10 minutes
 * and work once; every refresh returns a new refresh token and burns the one presented, so presenting it again
 * is `invalid_grant`. Access tokens live `expires_in` seconds and stay valid after a refresh until they expire.
 */

/** Scopes a user can grant at consent (reference §1.1). */
export const OURA_SCOPES = ['email', 'personal', 'daily', 'heartrate', 'workout', 'tag', 'session', 'spo2Daily'] as const

export interface TokenResponse {
  access_token: string
  token_type: 'bearer'
  /** Seconds. */
  expires_in: number
  refresh_token: string
}

/** RFC 6749 §5.2 error codes the token endpoint answers with. */
export type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type'

export type OAuthResult = { ok: true, tokens: TokenResponse } | { ok: false, status: 400 | 401, error: OAuthErrorCode }

export type AccessCheck =
  | { ok: true, userId: string, scopes: ReadonlySet<string> }
  | { ok: false, reason: 'unknown' | 'expired' }

export interface TokenStats {
  codesIssued: number
  codeExchanges: number
  /** Every refresh_token grant presenting one of this user's refresh tokens, successful or not. */
  refreshCalls: number
  /** Refreshes that rotated the token. */
  refreshes: number
  /** Refresh tokens presented a second time (answered `invalid_grant`). */
  refreshReuses: number
}

export interface OAuthServerOptions {
  clientId: string
  clientSecret: string
  now: () => number
  accessTokenTtlSeconds: number
  authorizationCodeTtlSeconds: number
  /** Sees every token pair minted (tests record them as canaries for the secret scan). */
  onTokensIssued?: (tokens: TokenResponse) => void
}

interface Grant {
  userId: string
  scopes: readonly string[]
  revoked: boolean
}

interface CodeRecord {
  grant: Grant
  redirectUri: string | undefined
  expiresAtMs: number
  used: boolean
}

interface AccessRecord {
  grant: Grant
  expiresAtMs: number
}

interface RefreshRecord {
  grant: Grant
  used: boolean
}

export interface OAuthServer {
  issueCode(userId: string, scopes: readonly string[], redirectUri?: string): string
  /** Tokens for a user without the code round trip, for tests that start connected. */
  issueTokens(userId: string, scopes: readonly string[]): TokenResponse
  token(form: URLSearchParams): OAuthResult
  /** Revokes the grant an access or refresh token belongs to; false when the token is unknown. */
  revoke(token: string): boolean
  checkAccess(accessToken: string): AccessCheck
  /** Makes every access token issued so far expired; refresh tokens keep working. */
  expireAccessTokens(): void
  stats(userId: string): TokenStats
}

const newToken = (): string => randomBytes(24).toString('base64url')

export function createOAuthServer(options: OAuthServerOptions): OAuthServer {
  const codes = new Map<string, CodeRecord>()
  const accessTokens = new Map<string, AccessRecord>()
  const refreshTokens = new Map<string, RefreshRecord>()
  const statsByUser = new Map<string, TokenStats>()
  const stats = (userId: string): TokenStats => {
    let entry = statsByUser.get(userId)
    if (entry === undefined) {
      entry = { codesIssued: 0, codeExchanges: 0, refreshCalls: 0, refreshes: 0, refreshReuses: 0 }
      statsByUser.set(userId, entry)
    }
    return entry
  }

  const mint = (grant: Grant): TokenResponse => {
    const accessToken = newToken()
    const refreshToken = newToken()
    accessTokens.set(accessToken, { grant, expiresAtMs: options.now() + options.accessTokenTtlSeconds * 1000 })
    refreshTokens.set(refreshToken, { grant, used: false })
    const tokens: TokenResponse = { access_token: accessToken, token_type: 'bearer', expires_in: options.accessTokenTtlSeconds, refresh_token: refreshToken }
    options.onTokensIssued?.(tokens)
    return tokens
  }

  const fail = (error: OAuthErrorCode, status: 400 | 401 = 400): OAuthResult => ({ ok: false, status, error })

  return {
    issueCode(userId, scopes, redirectUri) {
      const code = newToken()
      codes.set(code, {
        grant: { userId, scopes: [...scopes], revoked: false },
        redirectUri,
        expiresAtMs: options.now() + options.authorizationCodeTtlSeconds * 1000,
        used: false
      })
      stats(userId).codesIssued++
      return code
    },
    issueTokens: (userId, scopes) => mint({ userId, scopes: [...scopes], revoked: false }),

    token(form) {
      // Oura's documented examples send the client credentials in the body; Basic auth is not confirmed.
      const clientId = form.get('client_id')
      const clientSecret = form.get('client_secret')
      if (clientId === null || clientSecret === null) return fail('invalid_client', 401)
      if (clientId !== options.clientId || clientSecret !== options.clientSecret) return fail('invalid_client', 401)
      const grantType = form.get('grant_type')
      if (grantType === 'authorization_code') {
        const code = form.get('code')
        if (code === null) return fail('invalid_request')
        const record = codes.get(code)
        if (record === undefined || record.used || record.grant.revoked || options.now() >= record.expiresAtMs) {
          return fail('invalid_grant')
        }
        // RFC 6749 §4.1.3: a redirect_uri given at authorization must be repeated, identically.
        if (record.redirectUri !== undefined && form.get('redirect_uri') !== record.redirectUri) return fail('invalid_grant')
        record.used = true
        stats(record.grant.userId).codeExchanges++
        return { ok: true, tokens: mint(record.grant) }
      }
      if (grantType === 'refresh_token') {
        const token = form.get('refresh_token')
        if (token === null) return fail('invalid_request')
        const record = refreshTokens.get(token)
        if (record === undefined) return fail('invalid_grant')
        const userStats = stats(record.grant.userId)
        userStats.refreshCalls++
        if (record.used) {
          userStats.refreshReuses++
          return fail('invalid_grant')
        }
        if (record.grant.revoked) return fail('invalid_grant')
        // Checked and burnt without an await in between: concurrent refreshes cannot both win.
        record.used = true
        userStats.refreshes++
        return { ok: true, tokens: mint(record.grant) }
      }
      return fail(grantType === null ? 'invalid_request' : 'unsupported_grant_type')
    },

    revoke(token) {
      const record = accessTokens.get(token) ?? refreshTokens.get(token)
      if (record === undefined) return false
      record.grant.revoked = true
      return true
    },

    checkAccess(accessToken) {
      const record = accessTokens.get(accessToken)
      if (record === undefined || record.grant.revoked) return { ok: false, reason: 'unknown' }
      if (options.now() >= record.expiresAtMs) return { ok: false, reason: 'expired' }
      return { ok: true, userId: record.grant.userId, scopes: new Set(record.grant.scopes) }
    },

    expireAccessTokens() {
      const nowMs = options.now()
      for (const record of accessTokens.values()) record.expiresAtMs = Math.min(record.expiresAtMs, nowMs)
    },

    stats: (userId) => ({ ...stats(userId) })
  }
}
