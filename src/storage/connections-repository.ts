import { randomUUID } from 'node:crypto'
import type { TokenCipher } from '../auth/token-crypto.ts'
import { isBridgeError, type BridgeError } from '../errors.ts'
import type { Queryable } from './database.ts'

export type ConnectionProvider = 'oura' | 'whoop'
export type ConnectionStatus = 'active' | 'reauth_required' | 'revoked'

/** A connection as the API shows it: never the tokens. */
export interface ConnectionSummary {
  id: string
  userId: string
  provider: ConnectionProvider
  providerUserId: string | null
  status: ConnectionStatus
  scopes: string[]
  accessExpiresAt: Date | null
}

export interface ConnectionTokens {
  accessToken: string
  refreshToken: string | null
  accessExpiresAt: Date | null
}

export interface LoadedConnection extends ConnectionSummary, ConnectionTokens {
  /** Optimistic-concurrency version of the token pair; every token write increments it. */
  tokenVersion: number
}

// The row id and the column name are the associated data: a ciphertext copied to another row or column fails.
const accessAad = (id: string): string => `${id}:access`
const refreshAad = (id: string): string => `${id}:refresh`

interface ConnectionRow {
  id: string
  user_id: string
  provider: ConnectionProvider
  provider_user_id: string | null
  status: ConnectionStatus
  scopes: string[]
  access_token_enc: Uint8Array | null
  refresh_token_enc: Uint8Array | null
  access_expires_at: Date | null
  token_version: number
}

const COLUMNS = `id::text AS id, user_id, provider, provider_user_id, status, scopes, access_token_enc, refresh_token_enc,
  access_expires_at, token_version`

function summary(row: ConnectionRow): ConnectionSummary {
  return {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    providerUserId: row.provider_user_id,
    status: row.status,
    scopes: row.scopes,
    accessExpiresAt: row.access_expires_at
  }
}

export interface NewConnection {
  userId: string
  provider: ConnectionProvider
  providerUserId: string
  scopes: readonly string[]
  tokens: ConnectionTokens
}

/**
 * Stores the tokens of a (re)connected user, encrypted. Reconnecting replaces the tokens, reactivates the
 * connection and bumps the version, so a refresh that started before it cannot overwrite the new pair.
 */
export async function saveConnection(db: Queryable, cipher: TokenCipher, connection: NewConnection): Promise<string> {
  const { rows: existing } = await db.query<{ id: string }>(
    'SELECT id::text AS id FROM connections WHERE user_id = $1 AND provider = $2', [connection.userId, connection.provider])
  const id = existing[0]?.id ?? randomUUID()
  const { tokens } = connection
  await db.query(
    `INSERT INTO connections (id, user_id, provider, provider_user_id, status, scopes, access_token_enc, refresh_token_enc,
                              access_expires_at, token_version)
     VALUES ($1::uuid, $2, $3, $4, 'active', $5::text[], $6, $7, $8, 1)
     ON CONFLICT (user_id, provider) DO UPDATE SET
       provider_user_id = excluded.provider_user_id, status = 'active', scopes = excluded.scopes,
       access_token_enc = excluded.access_token_enc, refresh_token_enc = excluded.refresh_token_enc,
       access_expires_at = excluded.access_expires_at, token_version = connections.token_version + 1, updated_at = now()`,
    [id, connection.userId, connection.provider, connection.providerUserId, [...connection.scopes],
      cipher.encrypt(tokens.accessToken, accessAad(id)),
      tokens.refreshToken === null ? null : cipher.encrypt(tokens.refreshToken, refreshAad(id)),
      tokens.accessExpiresAt])
  return id
}

/**
 * Loads and decrypts a connection's tokens. When they were written with an older key, they are re-encrypted with
 * the newest one on the way (guarded by the version, so a concurrent refresh wins).
 */
export async function loadConnection(
  db: Queryable, cipher: TokenCipher, userId: string, provider: ConnectionProvider
): Promise<LoadedConnection | undefined> {
  return loadWhere(db, cipher, 'user_id = $1 AND provider = $2', [userId, provider])
}

/** Re-reads a connection by id, e.g. after another process refreshed its tokens. */
export async function loadConnectionById(db: Queryable, cipher: TokenCipher, id: string): Promise<LoadedConnection | undefined> {
  return loadWhere(db, cipher, 'id = $1::uuid', [id])
}

/**
 * The active connections of many provider users at once (a claimed batch of receipts), by provider user id;
 * users without one are absent. A row whose tokens do not decrypt (BB_TOKEN_UNREADABLE) is its user's failure
 * alone: it maps to that error, so one damaged row never fails the other users' work in the same batch.
 */
export async function loadConnectionsByProviderUsers(
  db: Queryable, cipher: TokenCipher, provider: ConnectionProvider, providerUserIds: readonly string[]
): Promise<Map<string, LoadedConnection | BridgeError>> {
  const { rows } = await db.query<ConnectionRow>(
    `SELECT ${COLUMNS} FROM connections WHERE provider = $1 AND provider_user_id = ANY($2::text[])`, [provider, [...new Set(providerUserIds)]])
  const loaded = new Map<string, LoadedConnection | BridgeError>()
  for (const row of rows) {
    try {
      const connection = await decryptRow(db, cipher, row)
      if (connection?.providerUserId != null) loaded.set(connection.providerUserId, connection)
    } catch (error) {
      if (!isBridgeError(error) || error.code !== 'BB_TOKEN_UNREADABLE' || row.provider_user_id === null) throw error
      loaded.set(row.provider_user_id, error)
    }
  }
  return loaded
}

async function loadWhere(db: Queryable, cipher: TokenCipher, where: string, params: readonly unknown[]): Promise<LoadedConnection | undefined> {
  const { rows } = await db.query<ConnectionRow>(`SELECT ${COLUMNS} FROM connections WHERE ${where}`, params)
  return rows[0] === undefined ? undefined : decryptRow(db, cipher, rows[0])
}

async function decryptRow(db: Queryable, cipher: TokenCipher, row: ConnectionRow): Promise<LoadedConnection | undefined> {
  if (row.access_token_enc === null) return undefined
  const access = cipher.decrypt(Buffer.from(row.access_token_enc), accessAad(row.id))
  const refresh = row.refresh_token_enc === null ? null : cipher.decrypt(Buffer.from(row.refresh_token_enc), refreshAad(row.id))
  const loaded: LoadedConnection = {
    ...summary(row),
    accessToken: access.plaintext,
    refreshToken: refresh?.plaintext ?? null,
    tokenVersion: Number(row.token_version)
  }
  if (access.stale || refresh?.stale === true) {
    const written = await writeTokens(db, cipher, loaded.id, loaded.tokenVersion, loaded)
    if (written) loaded.tokenVersion++
  }
  return loaded
}

/**
 * Replaces the token pair only if nobody wrote a newer one since `expectedVersion` was read: the guard that keeps
 * a slow or stale refresher from overwriting (and so losing) a rotated refresh token. Returns false when it lost.
 */
export async function writeTokens(
  db: Queryable, cipher: TokenCipher, id: string, expectedVersion: number, tokens: ConnectionTokens
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE connections SET access_token_enc = $3, refresh_token_enc = $4, access_expires_at = $5,
       token_version = token_version + 1, status = 'active', refresh_holder = NULL, refresh_lease_until = NULL, updated_at = now()
     WHERE id = $1::uuid AND token_version = $2`,
    [id, expectedVersion, cipher.encrypt(tokens.accessToken, accessAad(id)),
      tokens.refreshToken === null ? null : cipher.encrypt(tokens.refreshToken, refreshAad(id)), tokens.accessExpiresAt])
  return rowCount === 1
}

/** After `invalid_grant`: the user must connect again; the dead tokens are dropped. */
export async function markReauthRequired(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE connections SET status = 'reauth_required', access_token_enc = NULL, refresh_token_enc = NULL,
       token_version = token_version + 1, refresh_holder = NULL, refresh_lease_until = NULL, updated_at = now()
     WHERE id = $1::uuid`, [id])
}

/**
 * Takes the connection's refresh lease for `holder` if the token row is still at `expectedVersion` and nobody
 * else holds an unexpired lease. Only the holder spends the refresh token; writeTokens ends the lease.
 */
export async function takeRefreshLease(db: Queryable, id: string, expectedVersion: number, holder: string, leaseMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE connections SET refresh_holder = $3, refresh_lease_until = now() + $4 * interval '1 millisecond'
     WHERE id = $1::uuid AND token_version = $2 AND status = 'active'
       AND (refresh_lease_until IS NULL OR refresh_lease_until <= now())`,
    [id, expectedVersion, holder, leaseMs])
  return rowCount === 1
}

/** Gives the lease back after a refresh that failed without spending the token (network, 5xx). */
export async function releaseRefreshLease(db: Queryable, id: string, holder: string): Promise<void> {
  await db.query(
    'UPDATE connections SET refresh_holder = NULL, refresh_lease_until = NULL WHERE id = $1::uuid AND refresh_holder = $2', [id, holder])
}

/** Version and status only, for a process waiting on another one's refresh. */
export async function peekConnection(db: Queryable, id: string): Promise<{ tokenVersion: number, status: ConnectionStatus } | undefined> {
  const { rows } = await db.query<{ token_version: number, status: ConnectionStatus }>(
    'SELECT token_version, status FROM connections WHERE id = $1::uuid', [id])
  const row = rows[0]
  return row === undefined ? undefined : { tokenVersion: Number(row.token_version), status: row.status }
}

/** Active connections of a provider, for reconciliation. Ids only: tokens are loaded when work runs. */
export async function listActiveConnections(db: Queryable, provider: ConnectionProvider): Promise<Array<{ id: string, providerUserId: string }>> {
  const { rows } = await db.query<{ id: string, provider_user_id: string }>(
    `SELECT id::text AS id, provider_user_id FROM connections
     WHERE provider = $1 AND status = 'active' AND provider_user_id IS NOT NULL ORDER BY id`, [provider])
  return rows.map((row) => ({ id: row.id, providerUserId: row.provider_user_id }))
}

export async function listConnections(db: Queryable, userId: string): Promise<ConnectionSummary[]> {
  const { rows } = await db.query<ConnectionRow>(`SELECT ${COLUMNS} FROM connections WHERE user_id = $1 ORDER BY provider`, [userId])
  return rows.map(summary)
}

/** Deletes the connection and its tokens; returns false when there was none. */
export async function deleteConnection(db: Queryable, userId: string, provider: ConnectionProvider): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM connections WHERE user_id = $1 AND provider = $2', [userId, provider])
  return rowCount > 0
}
