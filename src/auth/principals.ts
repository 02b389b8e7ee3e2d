import { BridgeError } from '../errors.ts'
import type { Queryable } from '../storage/database.ts'
import { hashSecret, secretsEqual } from './secrets.ts'

export const SCOPES = ['admin', 'read:events'] as const
export type Scope = (typeof SCOPES)[number]

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value)
}

/** Who is calling. Device principals are bound to one user and can only upload. */
export type Principal =
  | { kind: 'admin-token', id: 'admin', scopes: readonly Scope[] }
  | { kind: 'api-key', id: string, scopes: readonly Scope[] }
  | { kind: 'device', id: string, userId: string }

export interface Authenticator {
  /** Resolves a bearer token to its principal; throws BB_UNAUTHENTICATED when it matches nothing. */
  authenticate(authorization: string | undefined): Promise<Principal>
}

// The scheme name is case-insensitive (RFC 9110 §11.1: `bearer` is `Bearer`); the token's alphabet has both cases anyway.
const BEARER = /^bearer ([A-Za-z0-9._~+/=-]{16,512})$/i

export function createAuthenticator(db: Queryable, adminApiToken: string | undefined): Authenticator {
  return {
    async authenticate(authorization) {
      const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1]
      if (token === undefined) throw new BridgeError('BB_UNAUTHENTICATED', 'a bearer token is required')
      if (adminApiToken !== undefined && secretsEqual(token, adminApiToken)) {
        return { kind: 'admin-token', id: 'admin', scopes: SCOPES }
      }
      const hash = hashSecret(token)
      if (token.startsWith('bbd_')) {
        const { rows } = await db.query<{ id: string, user_id: string }>(
          'SELECT id::text AS id, user_id FROM devices WHERE token_hash = $1 AND revoked_at IS NULL', [hash])
        const device = rows[0]
        if (device !== undefined) return { kind: 'device', id: device.id, userId: device.user_id }
      } else if (token.startsWith('bbk_')) {
        const { rows } = await db.query<{ id: string, scopes: string[] }>(
          'SELECT id::text AS id, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', [hash])
        const key = rows[0]
        if (key !== undefined) return { kind: 'api-key', id: key.id, scopes: key.scopes.filter(isScope) }
      }
      throw new BridgeError('BB_UNAUTHENTICATED', 'the bearer token is not valid')
    }
  }
}

/** Throws BB_FORBIDDEN unless the principal holds `scope` (admin holds every scope). */
export function requireScope(principal: Principal, scope: Scope): void {
  if (principal.kind === 'device') throw new BridgeError('BB_FORBIDDEN', 'device tokens can only upload samples')
  if (!principal.scopes.includes(scope) && !principal.scopes.includes('admin')) {
    throw new BridgeError('BB_FORBIDDEN', `this key lacks the ${scope} scope`)
  }
}

export function principalLabel(principal: Principal): string {
  return `${principal.kind}:${principal.id}`
}
