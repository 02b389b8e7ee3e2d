import { setTimeout as sleep } from 'node:timers/promises'
import type { Audit } from '../auth/audit.ts'
import type { TokenCipher } from '../auth/token-crypto.ts'
import { BridgeError } from '../errors.ts'
import type { Logger } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import { GrantRejectedError } from '../providers/client/provider-client.ts'
import type { Database } from '../storage/database.ts'
import {
  loadConnectionById, markReauthRequired, peekConnection, releaseRefreshLease, takeRefreshLease, writeTokens,
  type ConnectionProvider, type ConnectionTokens, type LoadedConnection
} from '../storage/connections-repository.ts'
import type { Pseudonymize } from '../auth/secrets.ts'
import type { Coordination } from '../cache/coordination.ts'

/** Spends a refresh token; throws GrantRejectedError on invalid_grant, anything else for a retryable failure. */
export type RefreshTokens = (refreshToken: string) => Promise<ConnectionTokens>

export interface TokenManagerOptions {
  db: Database
  cipher: TokenCipher
  metrics: Metrics
  audit: Audit
  logger: Logger
  pseudonymize: Pseudonymize
  /** Names this process in the refresh lease. */
  holder: string
  refreshers: Partial<Record<ConnectionProvider, RefreshTokens>>
  /**
   * The cross-process lock in front of the row lease: Redis with REDIS_URL (a waiter bounces off Redis instead of
   * the connections row), in-process otherwise. When it cannot answer, the row lease alone decides.
   */
  locks: Pick<Coordination, 'tryLock' | 'unlock'>
  now: () => number
  /** Refresh ahead of expiry by this much, so a token never expires between check and use. Default 5 minutes. */
  refreshMarginMs?: number
  /** Longer than one refresh call may take; a holder that died frees the lease after this. Default 30 s. */
  leaseMs?: number
  /** How long a process waits for another one's refresh before giving up for now. Default 15 s. */
  waitLimitMs?: number
  /**
   * First poll interval while another process refreshes; each further poll waits 1.5× longer, up to 25 ms. A
   * refresh takes a token call plus a commit (milliseconds), so early polls find it done; a slow provider costs a
   * few cheap polls, not a flood. Default 4 ms.
   */
  pollMs?: number
}

export interface TokenManager {
  /** The connection with a token that is valid for at least the refresh margin (refreshing first if not). */
  fresh(connection: LoadedConnection): Promise<LoadedConnection>
  /**
   * The provider refused `connection`'s access token: returns a connection with a newer token, refreshing it
   * unless another caller already did since `connection` was read.
   */
  renew(connection: LoadedConnection): Promise<LoadedConnection>
}

/** Longest pause between two polls of a waiter (ms). */
const MAX_POLL_MS = 25

/**
 * OAuth access tokens with a refresh that cannot race. Rotating refresh tokens are single-use, so two processes
 * refreshing one connection at once would spend the same token twice and lose the connection. Three layers keep
 * that from happening: callers in one process share one refresh (single flight); across processes a lock (Redis
 * when configured) and, behind it, a lease on the connection row taken only while the row is still at the
 * version it read — the lease alone when Redis is down, and a lock that lapsed cannot let a stale writer through;
 * the new pair is committed (version + 1) before anyone uses it, and waiters pick it up from the row instead of
 * refreshing again. A holder that dies between the token response and the commit has spent the token: its lease
 * lapses, the next refresher gets `invalid_grant`, and the connection ends `reauth_required`, never a retry loop.
 */
export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { db, cipher, metrics } = options
  const marginMs = options.refreshMarginMs ?? 5 * 60_000
  const leaseMs = options.leaseMs ?? 30_000
  const waitLimitMs = options.waitLimitMs ?? 15_000
  const firstPollMs = options.pollMs ?? 4
  const inFlight = new Map<string, Promise<LoadedConnection>>()

  const reload = async (id: string): Promise<LoadedConnection> => {
    const loaded = await loadConnectionById(db, cipher, id)
    if (loaded === undefined || loaded.status !== 'active') {
      throw new BridgeError('BB_REAUTH_REQUIRED', 'the connection needs to be authorized again')
    }
    return loaded
  }

  const spend = async (connection: LoadedConnection, refresh: RefreshTokens): Promise<LoadedConnection> => {
    const { provider } = connection
    let tokens: ConnectionTokens
    try {
      if (connection.refreshToken === null) throw new GrantRejectedError(provider)
      tokens = await refresh(connection.refreshToken)
    } catch (error) {
      if (error instanceof GrantRejectedError) {
        // A lease can lapse under a stalled holder; if the row moved on, the refusal was a lost race, not a
        // revoked grant (reference §3.3, point 4): use the newer token.
        const current = await peekConnection(db, connection.id)
        if (current !== undefined && current.tokenVersion !== connection.tokenVersion) {
          metrics.tokenRefreshTotal.inc({ provider, outcome: 'reused' })
          return reload(connection.id)
        }
        await markReauthRequired(db, connection.id)
        metrics.tokenRefreshTotal.inc({ provider, outcome: 'invalid_grant' })
        await options.audit(db, { principal: 'token-manager', action: 'connection.reauth_required', userId: connection.userId, detail: { provider } })
        options.logger.warn({ user: options.pseudonymize(connection.userId), provider }, 'token refresh refused: connection needs re-authorization')
        throw new BridgeError('BB_REAUTH_REQUIRED', `${provider} refused the refresh token`, { cause: error })
      }
      // The token was not spent (or we cannot know): free the lease so the next attempt can try again.
      await releaseRefreshLease(db, connection.id, options.holder)
      metrics.tokenRefreshTotal.inc({ provider, outcome: 'error' })
      throw new BridgeError('BB_TOKEN_REFRESH_BUSY', `${provider} token refresh failed`, { cause: error })
    }
    // Committed before use: a crash after this line loses nothing, a crash before it is the case described above.
    if (!(await writeTokens(db, cipher, connection.id, connection.tokenVersion, tokens))) {
      // Only a reconnect can have written in between (we held the lease); its tokens are the newer ones.
      return reload(connection.id)
    }
    metrics.tokenRefreshTotal.inc({ provider, outcome: 'success' })
    return { ...connection, ...tokens, status: 'active', tokenVersion: connection.tokenVersion + 1 }
  }

  const refreshAcrossProcesses = async (connection: LoadedConnection): Promise<LoadedConnection> => {
    const refresh = options.refreshers[connection.provider]
    if (refresh === undefined) throw new BridgeError('BB_NO_CONNECTION', `${connection.provider} is not configured`)
    const deadline = options.now() + waitLimitMs
    const lockName = `refresh:${connection.id}`
    let pollMs = firstPollMs
    for (;;) {
      // undefined: another process holds the lock; null: the lock service is down, the row lease decides alone.
      const owner = await options.locks.tryLock(lockName, leaseMs).catch(() => null)
      if (owner !== undefined) {
        try {
          // The lease on the row, taken only at the version read, is what a stale refresher can never get past.
          if (await takeRefreshLease(db, connection.id, connection.tokenVersion, options.holder, leaseMs)) {
            return await spend(connection, refresh)
          }
        } finally {
          if (owner !== null) await options.locks.unlock(lockName, owner).catch(() => {})
        }
      }
      const current = await peekConnection(db, connection.id)
      if (current === undefined) throw new BridgeError('BB_NO_CONNECTION', 'the connection was deleted')
      if (current.status !== 'active') throw new BridgeError('BB_REAUTH_REQUIRED', 'the connection needs to be authorized again')
      if (current.tokenVersion !== connection.tokenVersion) {
        // Someone else refreshed (or the user reconnected): use their token instead of spending another.
        metrics.tokenRefreshTotal.inc({ provider: connection.provider, outcome: 'reused' })
        return reload(connection.id)
      }
      if (options.now() >= deadline) throw new BridgeError('BB_TOKEN_REFRESH_BUSY', 'another process is refreshing this connection')
      await sleep(pollMs)
      pollMs = Math.min(MAX_POLL_MS, pollMs * 1.5)
    }
  }

  const renew = (connection: LoadedConnection): Promise<LoadedConnection> => {
    const key = `${connection.id}:${connection.tokenVersion}`
    let pending = inFlight.get(key)
    if (pending === undefined) {
      pending = refreshAcrossProcesses(connection).finally(() => inFlight.delete(key))
      inFlight.set(key, pending)
    }
    return pending
  }

  return {
    async fresh(connection) {
      const expiresAtMs = connection.accessExpiresAt?.getTime()
      if (expiresAtMs === undefined || expiresAtMs - options.now() > marginMs) return connection
      return renew(connection)
    },
    renew
  }
}
