import { BridgeError } from '../errors.ts'
import type { Queryable } from '../storage/database.ts'
import type { Scope } from './principals.ts'
import { generateSecret, hashSecret, newId } from './secrets.ts'

export interface IssuedCredential {
  id: string
  /** Shown once; only its hash is stored. */
  token: string
}

export async function createDevice(db: Queryable, userId: string, name: string | undefined): Promise<IssuedCredential> {
  const id = newId()
  const token = generateSecret('bbd')
  await db.query('INSERT INTO devices (id, user_id, name, token_hash) VALUES ($1, $2, $3, $4)',
    [id, userId, name ?? null, hashSecret(token)])
  return { id, token }
}

export async function createApiKey(db: Queryable, name: string, scopes: readonly Scope[]): Promise<IssuedCredential> {
  if (scopes.length === 0) throw new BridgeError('BB_INVALID_REQUEST', 'an API key needs at least one scope')
  const id = newId()
  const token = generateSecret('bbk')
  await db.query('INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1, $2, $3, $4::text[])',
    [id, name, hashSecret(token), `{${scopes.join(',')}}`])
  return { id, token }
}

/** Returns false when no active key has that id. */
export async function revokeApiKey(db: Queryable, id: string): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return false
  const { rowCount } = await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])
  return rowCount > 0
}
