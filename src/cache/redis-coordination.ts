import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Logger } from '../lib/logger.ts'
import { describeError } from '../lib/logger.ts'
import { createLocalBudget, type RequestBudget } from '../providers/client/rate-budget.ts'
import type { Coordination } from './coordination.ts'
import { createRedisBudget } from './redis-budget.ts'
import { isUnansweredOnReadyConnection } from './redis-connection.ts'

export interface RedisCoordinationOptions {
  url: string
  logger: Logger
  now: () => number
  /** Prefix of every key (default `bb:`), shared with the cache's. */
  keyPrefix?: string
  /** A lock or budget call waits at most this long for Redis before falling back (ms). Default 500. */
  commandTimeoutMs?: number
}

// Deletes the lock only while it still names this owner: a lock that expired and was taken by another process
// must not be released by the first one's late unlock.
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

interface UnlockCommand {
  bbUnlock(key: string, owner: string): Promise<number>
}

/** How often at most the fallback to a per-node budget is logged while Redis stays down. */
const FALLBACK_LOG_EVERY_MS = 60_000
/** Commands timing out with no answer in between for this long (ms) mean a silent link, not a slow Redis. */
const SILENT_LINK_MS = 1000

/**
 * Locks (`SET NX PX`, compare-and-delete release) and shared request budgets in Redis, on a connection of their
 * own so a slow cache command never delays a lock. While Redis cannot answer, locks throw (the token manager
 * falls back to its PostgreSQL lease) and each budget falls back to a per-node one with the same limits; the
 * provider's own 429 and rate-limit headers then keep the nodes in check.
 */
export async function createRedisCoordination(options: RedisCoordinationOptions): Promise<Coordination> {
  const prefix = options.keyPrefix ?? 'bb:'
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 500,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 5_000)
  })
  client.defineCommand('bbUnlock', { numberOfKeys: 1, lua: UNLOCK_SCRIPT })
  client.on('error', () => {})
  // The cache reports Redis outages; a failed first connect here is the same outage, not a start-up failure.
  await client.connect().catch(() => {})
  const budgets = new Map<string, RequestBudget>()
  let lastFallbackLogMs = Number.NEGATIVE_INFINITY
  // A connection that claims to be ready but answers nothing may be a half-open one (a peer or a middlebox gone
  // without a reset): nothing would close it for tens of minutes, and every lock and budget call would wait out
  // its timeout before falling back. Timeouts with no answer in between for SILENT_LINK_MS → dial again.
  let silentSinceMs: number | undefined
  const observe = async <T>(command: Promise<T>): Promise<T> => {
    try {
      const result = await command
      silentSinceMs = undefined
      return result
    } catch (error) {
      if (isUnansweredOnReadyConnection(client, error)) {
        const nowMs = performance.now()
        silentSinceMs ??= nowMs
        if (nowMs - silentSinceMs >= SILENT_LINK_MS) {
          silentSinceMs = undefined
          client.disconnect(true)
        }
      } else if (error instanceof Error && error.name === 'ReplyError') {
        silentSinceMs = undefined // Redis answered, if only to refuse.
      }
      throw error
    }
  }

  const fallingBack = (name: string, error: unknown): void => {
    const nowMs = options.now()
    if (nowMs - lastFallbackLogMs < FALLBACK_LOG_EVERY_MS) return
    lastFallbackLogMs = nowMs
    options.logger.warn({ budget: name, err: describeError(error) }, 'redis unavailable: request budget counted per node until it answers')
  }

  return {
    kind: 'redis',
    async tryLock(name, ttlMs) {
      const owner = randomUUID()
      const taken = await observe(client.set(`${prefix}lock:${name}`, owner, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'))
      return taken === 'OK' ? owner : undefined
    },
    async unlock(name, owner) {
      await observe((client as unknown as UnlockCommand).bbUnlock(`${prefix}lock:${name}`, owner))
    },
    budget(name, windows) {
      const existing = budgets.get(name)
      if (existing !== undefined) return existing
      const shared = createRedisBudget(client, `${prefix}budget:${name}:`, windows)
      const local = createLocalBudget(windows, options.now)
      const budget: RequestBudget = {
        async take(priority) {
          try {
            return await observe(shared.take(priority))
          } catch (error) {
            fallingBack(name, error)
            return local.take(priority)
          }
        },
        async holdOff(ms) {
          await local.holdOff(ms)
          await observe(shared.holdOff(ms)).catch((error: unknown) => fallingBack(name, error))
        }
      }
      budgets.set(name, budget)
      return budget
    },
    async close() {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect())
      else client.disconnect()
    }
  }
}
