import { Redis, type ChainableCommander } from 'ioredis'
import type { BiometricEvent } from '../domain/event.ts'
import { describeError, type Logger } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import {
  COMPLETE_FIELD, groupCommitted, groupForget, newestPoints, publicPoint, toEntry,
  type CacheEntry, type CacheRead, type CacheState, type EventCache, type FillToken, type LatestByMetric,
  type SeriesPoint, type StoredPoint
} from './cache.ts'
import { isUnansweredOnReadyConnection } from './redis-connection.ts'
import { FILL_LATEST_SCRIPT, FILL_SERIES_SCRIPT, READ_SERIES_SCRIPT, RECORD_SCRIPT } from './redis-scripts.ts'

export interface RedisCacheOptions {
  /** A secret (it may carry a password): never logged. */
  url: string
  /** Prepended to every key, e.g. `bb:`; tests use a random one each. */
  keyPrefix?: string
  /** Lifetime of a latest picture and of a series after their last write, in seconds. */
  ttlSeconds: number
  /** Points kept per user and metric (XADD MAXLEN ~, so a little more between trims). */
  maxSeriesEntries: number
  metrics: Pick<Metrics, 'cacheErrorsTotal'>
  logger: Logger
  /** A command unanswered after this many milliseconds counts as failed; requests never wait longer. */
  commandTimeoutMs?: number
  /** How often an unavailable Redis is probed, in milliseconds. */
  probeIntervalMs?: number
  /** Users remembered for invalidation after failed writes; beyond it every cached value is dropped on recovery. */
  maxRememberedUsers?: number
  /** How long start-up waits for the first connection, in milliseconds; start never fails because of Redis. */
  connectTimeoutMs?: number
}

type CacheOperation =
  | 'record' | 'forget' | 'get_latest' | 'fill_latest' | 'recent' | 'fill_series' | 'claim' | 'ping' | 'invalidate' | 'connection'

type Script = (...args: Array<string | number>) => Promise<unknown>

interface ScriptedRedis extends Redis {
  bbRecord: Script
  bbFillLatest: Script
  bbReadSeries: Script
  bbFillSeries: Script
}

const DEFAULT_COMMAND_TIMEOUT_MS = 250
const DEFAULT_PROBE_INTERVAL_MS = 1000
const DEFAULT_MAX_REMEMBERED_USERS = 10_000
const DEFAULT_CONNECT_TIMEOUT_MS = 1000
const RECONNECT_BASE_MS = 50
const RECONNECT_MAX_MS = 2000
/** Entries per script call: bounds how long one call blocks Redis (~1 ms) for uploads of any size. */
const ENTRIES_PER_SCRIPT = 1000
/** Users per invalidation pipeline after an outage. */
const USERS_PER_PIPELINE = 500
/**
 * A generation must outlive every fill that read it (a miss, one PostgreSQL query, the fill); if it expired
 * and came back as "absent" meanwhile, a stale fill could pass. An hour is far beyond any query timeout.
 */
const MIN_GENERATION_TTL_SECONDS = 3600
/** One log line per this interval for refused commands (a bug, not an outage, so not a state change). */
const REFUSAL_LOG_INTERVAL_MS = 60_000
/** Redis reply codes that mean "not available now" rather than "this command is wrong". */
const UNAVAILABLE_REPLY_CODES = new Set(['LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN'])

const MISS_WITHOUT_FILL = { hit: false, fillToken: undefined } as const

/**
 * The Redis adapter. Fails fast (no offline queue, a short command timeout) and never throws into callers.
 *
 * Consistency after an outage: a write or invalidation that did not reach Redis leaves what Redis holds stale,
 * and a partition can end without a reconnect. Such users are remembered (bounded); until their keys are
 * deleted after Redis answers again, their reads and fills bypass the cache. Past the bound every cached
 * latest picture and series is dropped instead, and reads bypass the cache for everyone until that is done.
 * While Redis is believed unavailable, nothing is sent to it: requests never wait for a dead server.
 */
export async function createRedisCache(options: RedisCacheOptions): Promise<EventCache> {
  const { logger, metrics } = options
  const prefix = options.keyPrefix ?? 'bb:'
  const ttlSeconds = options.ttlSeconds
  const cap = options.maxSeriesEntries
  const generationTtlSeconds = Math.max(ttlSeconds, MIN_GENERATION_TTL_SECONDS)
  const probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS
  const maxRememberedUsers = options.maxRememberedUsers ?? DEFAULT_MAX_REMEMBERED_USERS
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const keys = {
    latest: (userId: string) => `${prefix}latest:${userId}`,
    generation: (userId: string) => `${prefix}gen:${userId}`,
    series: (userId: string, metric: string) => `${prefix}series:${userId}:${metric}`,
    seriesState: (userId: string, metric: string) => `${prefix}series-state:${userId}:${metric}`,
    epoch: `${prefix}epoch`,
    claim: (key: string) => `${prefix}claim:${key}`
  }

  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    // Commands unanswered when a connection drops already counted as failed (their users are remembered);
    // replaying them after the reconnect could land after the invalidation that superseded them.
    autoResendUnfulfilledCommands: false,
    // Off on purpose: auto-pipelining wraps every command in a Pipeline of its own at moderate rates, and those
    // objects live long enough to be promoted (~3 KB per command), so full collections came every 1-2 s and set
    // the intake's p99 at 1,000/s (9-13 ms, 4-5 ms without). Saturation throughput was no better with it
    // (docs/benchmarks.md, webhook notes). Batches that matter are pipelined explicitly.
    enableAutoPipelining: false,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (attempt) => Math.min(RECONNECT_BASE_MS * 2 ** attempt, RECONNECT_MAX_MS)
  }) as ScriptedRedis
  client.defineCommand('bbRecord', { lua: RECORD_SCRIPT })
  client.defineCommand('bbFillLatest', { lua: FILL_LATEST_SCRIPT })
  client.defineCommand('bbReadSeries', { lua: READ_SERIES_SCRIPT })
  client.defineCommand('bbFillSeries', { lua: FILL_SERIES_SCRIPT })

  let available = false
  let everAvailable = false
  let closed = false
  /** Users whose cached values may be stale, with the series metrics involved; replaced (not mutated) on change. */
  const remembered = new Map<string, ReadonlySet<string>>()
  let overflowed = false
  let overflowSerial = 0
  let maintenanceTimer: NodeJS.Timeout | undefined
  let maintenance: Promise<void> | undefined
  let lastRefusalLogMs = Number.NEGATIVE_INFINITY

  const usable = (): boolean => available && !closed
  const trusted = (userId: string): boolean => usable() && !overflowed && !remembered.has(userId)

  const scheduleMaintenance = (): void => {
    if (closed || maintenanceTimer !== undefined || maintenance !== undefined) return
    maintenanceTimer = setTimeout(() => {
      maintenanceTimer = undefined
      void maintain()
    }, probeIntervalMs)
    maintenanceTimer.unref()
  }
  const markDown = (reason: string, error?: unknown): void => {
    if (available) {
      available = false
      logger.warn({ reason, err: error === undefined ? undefined : describeError(error) },
        'redis cache unavailable: reads fall back to PostgreSQL until it answers again')
    }
    scheduleMaintenance()
  }
  const failure = (operation: CacheOperation, error: unknown): void => {
    metrics.cacheErrorsTotal.inc({ operation })
    const replyCode = error instanceof Error && error.name === 'ReplyError' ? error.message.split(' ', 1)[0] : undefined
    if (replyCode === undefined || UNAVAILABLE_REPLY_CODES.has(replyCode)) {
      markDown('command failed', error)
      return
    }
    const nowMs = Date.now()
    if (nowMs - lastRefusalLogMs >= REFUSAL_LOG_INTERVAL_MS) {
      lastRefusalLogMs = nowMs
      logger.error({ operation, code: replyCode, err: describeError(error) }, 'redis refused a cache command')
    }
    scheduleMaintenance()
  }
  const remember = (userId: string, metricNames: Iterable<string>): void => {
    if (overflowed) {
      overflowSerial++
    } else if (!remembered.has(userId) && remembered.size >= maxRememberedUsers) {
      overflowed = true
      overflowSerial++
      remembered.clear()
    } else {
      remembered.set(userId, new Set([...(remembered.get(userId) ?? []), ...metricNames]))
    }
    scheduleMaintenance()
  }

  const exec = async (pipeline: ChainableCommander): Promise<unknown[]> => {
    const results = await pipeline.exec()
    if (results === null) throw new Error('pipeline discarded')
    for (const [error] of results) if (error !== null) throw error
    return results.map(([, value]) => value)
  }
  /** Generation first: a fill holding an older token is refused from that moment, before the deletes. */
  const invalidateUsers = async (users: ReadonlyArray<readonly [string, Iterable<string>]>): Promise<void> => {
    for (let offset = 0; offset < users.length; offset += USERS_PER_PIPELINE) {
      const pipeline = client.pipeline()
      for (const [userId, metricNames] of users.slice(offset, offset + USERS_PER_PIPELINE)) {
        const generation = keys.generation(userId)
        const seriesKeys = [...metricNames].flatMap((metric) => [keys.series(userId, metric), keys.seriesState(userId, metric)])
        pipeline.incr(generation).expire(generation, generationTtlSeconds).del(keys.latest(userId), ...seriesKeys)
      }
      await exec(pipeline)
    }
  }
  /** The epoch first, for the same reason; then every latest picture and series under the prefix. */
  const invalidateAll = async (): Promise<void> => {
    await client.incr(keys.epoch)
    const glob = prefix.replace(/[*?[\]\\]/g, '\\$&')
    for (const pattern of [`${glob}latest:*`, `${glob}series:*`, `${glob}series-state:*`]) {
      let cursor = '0'
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        if (found.length > 0) await client.unlink(...found)
        cursor = next
      } while (cursor !== '0')
    }
  }
  const invalidateRemembered = async (): Promise<void> => {
    if (overflowed) {
      const serial = overflowSerial
      await invalidateAll()
      if (overflowSerial === serial) overflowed = false
    }
    const batch = [...remembered]
    if (batch.length === 0) return
    await invalidateUsers(batch)
    // A user remembered again meanwhile holds a new set and waits for the next round.
    for (const [userId, metricNames] of batch) {
      if (remembered.get(userId) === metricNames) remembered.delete(userId)
    }
  }
  const runMaintenance = async (): Promise<void> => {
    let operation: CacheOperation = 'ping'
    try {
      if (closed || client.status !== 'ready') return
      if (!available) {
        await client.ping()
        available = true
        logger.info(everAvailable ? 'redis cache available again' : 'redis cache connected')
        everAvailable = true
      }
      operation = 'invalidate'
      await invalidateRemembered()
    } catch (error) {
      failure(operation, error)
      // A probe unanswered on a connection that claims to be ready means a silent link: a half-open connection
      // (a peer or a middlebox gone without a reset) that nothing would close for tens of minutes, while the
      // cache stayed bypassed. Dial again; the probe interval bounds how often.
      if (operation === 'ping' && isUnansweredOnReadyConnection(client, error)) {
        client.disconnect(true)
      }
    }
  }
  /** Single flight: probes a Redis believed unavailable and deletes what remembered users may hold stale. */
  const maintain = (): Promise<void> => {
    maintenance ??= runMaintenance().finally(() => {
      maintenance = undefined
      if (!available || overflowed || remembered.size > 0) scheduleMaintenance()
    })
    return maintenance
  }

  client.on('ready', () => { void maintain() })
  client.on('error', (error: unknown) => {
    metrics.cacheErrorsTotal.inc({ operation: 'connection' })
    markDown('connection error', error)
  })
  client.on('close', () => {
    if (!closed) markDown('connection closed')
  })

  const encodeLatest = (entry: CacheEntry): string =>
    `${entry.startMs}|${entry.event.event_id}|${entry.updatedMs ?? ''}|${entry.ingestedMs}|${JSON.stringify(entry.event)}`
  const pointArgs = (entry: CacheEntry): string[] => [
    String(entry.startMs), entry.event.event_id, entry.event.start, String(entry.event.value),
    entry.updatedMs === null ? '' : String(entry.updatedMs), String(entry.ingestedMs)
  ]
  const tokenOf = (generation: unknown, epoch: unknown): FillToken =>
    `${typeof generation === 'string' ? generation : ''}|${typeof epoch === 'string' ? epoch : ''}` as FillToken
  const tokenParts = (token: FillToken): [string, string] => {
    const [generation = '', epoch = ''] = token.split('|')
    return [generation, epoch]
  }

  /** One script call per ENTRIES_PER_SCRIPT entries; the calls travel pipelined, in order, on one connection. */
  const recordCalls = (userId: string, byMetric: ReadonlyMap<string, CacheEntry[]>): Array<Array<string | number>> => {
    const calls: Array<Array<string | number>> = []
    let seriesKeys: string[] = []
    let args: string[] = []
    let metricCount = 0
    let entryCount = 0
    const flush = (): void => {
      if (metricCount === 0) return
      calls.push([2 + seriesKeys.length, keys.latest(userId), keys.generation(userId), ...seriesKeys, ttlSeconds, cap, generationTtlSeconds, metricCount, ...args])
      seriesKeys = []
      args = []
      metricCount = 0
      entryCount = 0
    }
    for (const [metric, entries] of byMetric) {
      for (let offset = 0; offset < entries.length; offset += ENTRIES_PER_SCRIPT) {
        const slice = entries.slice(offset, offset + ENTRIES_PER_SCRIPT)
        if (entryCount + slice.length > ENTRIES_PER_SCRIPT) flush()
        const top = slice.at(-1)!
        const second = slice.at(-2)
        seriesKeys.push(keys.series(userId, metric), keys.seriesState(userId, metric))
        args.push(metric, String(slice.length), encodeLatest(top), second === undefined ? '' : encodeLatest(second), ...slice.flatMap(pointArgs))
        metricCount++
        entryCount += slice.length
      }
    }
    flush()
    return calls
  }

  const cache: EventCache = {
    kind: 'redis',

    async recordCommitted(events) {
      if (events.length === 0) return
      const grouped = groupCommitted(events)
      await Promise.all([...grouped].map(async ([userId, byMetric]) => {
        if (!usable()) {
          remember(userId, byMetric.keys())
          return
        }
        const results = await Promise.allSettled(recordCalls(userId, byMetric).map((args) => client.bbRecord(...args)))
        const failed = results.find((result) => result.status === 'rejected')
        if (failed !== undefined) {
          remember(userId, byMetric.keys())
          failure('record', failed.reason)
        }
      }))
    },

    async forget(deleted) {
      const grouped = [...groupForget(deleted)]
      if (grouped.length === 0) return
      if (!usable()) {
        for (const [userId, metricNames] of grouped) remember(userId, metricNames)
        return
      }
      try {
        await invalidateUsers(grouped)
      } catch (error) {
        for (const [userId, metricNames] of grouped) remember(userId, metricNames)
        failure('forget', error)
      }
    },

    async getLatest(userId): Promise<CacheRead<LatestByMetric>> {
      if (!trusted(userId)) return MISS_WITHOUT_FILL
      try {
        const [hash, generation, epoch] = await exec(
          client.pipeline().hgetall(keys.latest(userId)).get(keys.generation(userId)).get(keys.epoch))
        const fields = hash as Record<string, string>
        const fillToken = tokenOf(generation, epoch)
        if (fields[COMPLETE_FIELD] === undefined) return { hit: false, fillToken }
        const latest: LatestByMetric = {}
        for (const metric of Object.keys(fields).filter((name) => name !== COMPLETE_FIELD).sort()) {
          const event = decodeLatest(fields[metric]!)
          if (event === undefined) return { hit: false, fillToken }
          latest[metric] = event
        }
        return { hit: true, value: latest }
      } catch (error) {
        failure('get_latest', error)
        return MISS_WITHOUT_FILL
      }
    },

    async fillLatest(userId, events: readonly BiometricEvent[], token) {
      if (!trusted(userId)) return
      const [generation, epoch] = tokenParts(token)
      try {
        await client.bbFillLatest(3, keys.latest(userId), keys.generation(userId), keys.epoch, generation, epoch, ttlSeconds, events.length,
          ...events.flatMap((event) => [event.metric, encodeLatest(toEntry(event))]))
      } catch (error) {
        failure('fill_latest', error)
      }
    },

    async recentSeries(userId, metric, limit): Promise<CacheRead<SeriesPoint[]>> {
      if (!trusted(userId)) return MISS_WITHOUT_FILL
      try {
        const reply = await client.bbReadSeries(4, keys.series(userId, metric), keys.seriesState(userId, metric),
          keys.generation(userId), keys.epoch, limit) as unknown[]
        const [generation, epoch, state, length, exhausted] = reply
        const fillToken = tokenOf(generation, epoch)
        if (state !== 'all' && state !== 'top') return { hit: false, fillToken }
        const points: StoredPoint[] = []
        for (let index = 5; index + 5 < reply.length; index += 6) {
          const [startMs, eventId, start, value, updatedMs, ingestedMs] = reply.slice(index, index + 6).map(String) as
            [string, string, string, string, string, string]
          points.push({
            event_id: eventId, start, value: Number(value), startMs: Number(startMs),
            updatedMs: updatedMs === '' ? null : Number(updatedMs), ingestedMs: Number(ingestedMs)
          })
        }
        const distinct = new Set(points.map((point) => point.event_id)).size
        const exhaustive = state === 'all' && Number(length) < cap && exhausted === 1
        if (distinct < limit && !exhaustive) return { hit: false, fillToken }
        return { hit: true, value: newestPoints(points, limit).map(publicPoint) }
      } catch (error) {
        failure('recent', error)
        return MISS_WITHOUT_FILL
      }
    },

    async fillSeries(userId, metric, newestFirst, limit, token) {
      if (!trusted(userId)) return
      const [generation, epoch] = tokenParts(token)
      try {
        await client.bbFillSeries(4, keys.series(userId, metric), keys.seriesState(userId, metric), keys.generation(userId), keys.epoch,
          generation, epoch, ttlSeconds, cap, newestFirst.length < limit ? '1' : '0', newestFirst.length,
          ...newestFirst.flatMap((event) => pointArgs(toEntry(event))))
      } catch (error) {
        failure('fill_series', error)
      }
    },

    async claimOnce(key, ttlSeconds) {
      if (!usable()) return undefined
      try {
        return await client.set(keys.claim(key), '1', 'EX', ttlSeconds, 'NX') === 'OK'
      } catch (error) {
        failure('claim', error)
        return undefined
      }
    },

    async isClaimed(key) {
      if (!usable()) return undefined
      try {
        return await client.exists(keys.claim(key)) === 1
      } catch (error) {
        failure('claim', error)
        return undefined
      }
    },

    async state(): Promise<CacheState> {
      if (!usable() || overflowed || remembered.size > 0) return 'degraded'
      try {
        await client.ping()
        return 'up'
      } catch (error) {
        failure('ping', error)
        return 'degraded'
      }
    },

    async close() {
      if (closed) return
      closed = true
      clearTimeout(maintenanceTimer)
      await maintenance
      try {
        if (client.status === 'ready') await client.quit()
      } catch {
        // Already gone; disconnect below releases the socket either way.
      } finally {
        client.disconnect()
      }
    }
  }

  await Promise.race([
    client.connect().catch(() => {}),
    new Promise((resolve) => setTimeout(resolve, connectTimeoutMs).unref())
  ])
  await maintain()
  if (!available) logger.warn('redis cache unavailable at start: reads use PostgreSQL until it answers')
  return cache
}

/** The event JSON after the four sort-key fields of a latest value. */
function decodeLatest(value: string): BiometricEvent | undefined {
  let index = -1
  for (let field = 0; field < 4; field++) {
    index = value.indexOf('|', index + 1)
    if (index < 0) return undefined
  }
  try {
    return JSON.parse(value.slice(index + 1)) as BiometricEvent
  } catch {
    return undefined
  }
}
