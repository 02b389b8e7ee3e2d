import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { BridgeError } from '../errors.ts'

/** How long a user has to finish the provider's consent screen. */
export const STATE_LIFETIME_MS = 10 * 60_000

export interface OAuthState {
  userId: string
  provider: string
  /** Random; recorded when used, so a state works once. */
  nonce: string
  expiresAtMs: number
}

export interface StateSigner {
  issue: (userId: string, provider: string, nowMs: number) => { state: string, payload: OAuthState }
  /** Checks signature and expiry; single use is the caller's job (it records the nonce). */
  verify: (state: string, provider: string, nowMs: number) => OAuthState
}

/**
 * The OAuth `state`: a signed, expiring token binding the authorization to one app user, so a callback cannot
 * be forged for another user or replayed later. The HMAC key is derived from the newest token encryption key
 * (HKDF, purpose-bound), so no further secret has to be configured.
 */
export function createStateSigner(keyMaterial: Buffer): StateSigner {
  const key = Buffer.from(hkdfSync('sha256', keyMaterial, Buffer.alloc(0), 'biometric-bridge oauth state v1', 32))
  const mac = (body: string): Buffer => createHmac('sha256', key).update(body).digest()
  const invalid = (): never => {
    throw new BridgeError('BB_OAUTH_STATE_INVALID', 'the state is invalid, expired or already used; start the connection again')
  }

  return {
    issue(userId, provider, nowMs) {
      const payload: OAuthState = { userId, provider, nonce: randomBytes(16).toString('base64url'), expiresAtMs: nowMs + STATE_LIFETIME_MS }
      const body = Buffer.from(JSON.stringify([payload.userId, payload.provider, payload.nonce, payload.expiresAtMs])).toString('base64url')
      return { state: `${body}.${mac(body).toString('base64url')}`, payload }
    },
    verify(state, provider, nowMs) {
      const [body, signature, extra] = state.split('.')
      if (body === undefined || signature === undefined || extra !== undefined || state.length > 1024) return invalid()
      const presented = Buffer.from(signature, 'base64url')
      const expected = mac(body)
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return invalid()
      const fields: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
      if (!Array.isArray(fields) || fields.length !== 4) return invalid()
      const [userId, stateProvider, nonce, expiresAtMs] = fields as [unknown, unknown, unknown, unknown]
      if (typeof userId !== 'string' || stateProvider !== provider || typeof nonce !== 'string' || typeof expiresAtMs !== 'number') return invalid()
      if (nowMs > expiresAtMs) return invalid()
      return { userId, provider, nonce, expiresAtMs }
    }
  }
}
