/* eslint-disable @typescript-eslint/require-await -- the in-process adapter implements the async port synchronously */
import type { BiometricEvent } from '../domain/event.ts'
import {
  collectNewest, decideFill, decideLatest, groupCommitted, groupForget, mergeSeriesFill, newestPoints,
  publicPoint, toEntry, toStoredPoint,
  type CacheEntry, type CacheRead, type CacheState, type EventCache, type FillToken, type ForgetTarget, type LatestByMetric,
  type SeriesCompleteness, type SeriesPoint
} from './cache.ts'
import { ExpiringClaims } from './expiring-claims.ts'
import { PointRing } from './point-ring.ts'

export interface MemoryCacheOptions {
  /** Lifetime of a latest picture and of a series after their last write, in seconds. */
  ttlSeconds: number
  /** Points kept per user and metric. */
  maxSeriesEntries: number
  /** Users held at once; the least recently used go first. */
  maxUsers?: number
  /** Series points held across all users; bounds memory (≈ 140 bytes a point, see point-ring.ts). */
  maxTotalPoints?: number
  /** Claims held at once; a claim dropped early only sends a repeat to the durable unique key. */
  maxClaims?: number
  now?: () => number
}

// A user's latest picture keeps each metric's whole event: ~16 KB for 15 metrics (measured), so ≈ 80 MB here.
const DEFAULT_MAX_USERS = 5_000
// ≈ 28 MB (point-ring.ts): the node's whole memory budget is 300 MB resident (docs/architecture.md, "In-process bounds").
const DEFAULT_MAX_TOTAL_POINTS = 200_000
const DEFAULT_MAX_CLAIMS = 50_000

interface Series {
  ring: PointRing
  completeness: SeriesCompleteness | undefined
  expiresAtMs: number
}

interface UserEntry {
  latest: Map<string, CacheEntry>
  complete: boolean
  latestExpiresAtMs: number
  series: Map<string, Series>
  /** Bumped by every invalidation; a fill must present the value it saw at its miss. */
  generation: number
}

export interface MemoryEventCache extends EventCache {
  /** Points held in one series (tests check the cap). */
  seriesSize(userId: string, metric: string): number
}

/**
 * The in-process adapter: the same semantics as Redis for one node. Users are held least-recently-used first
 * in a Map (re-inserted on use), bounded by count and by total series points.
 */
export function createMemoryCache(options: MemoryCacheOptions): MemoryEventCache {
  const ttlMs = options.ttlSeconds * 1000
  const cap = options.maxSeriesEntries
  const maxUsers = options.maxUsers ?? DEFAULT_MAX_USERS
  const maxTotalPoints = options.maxTotalPoints ?? DEFAULT_MAX_TOTAL_POINTS
  const now = options.now ?? Date.now
  const users = new Map<string, UserEntry>()
  const claims = new ExpiringClaims(options.maxClaims ?? DEFAULT_MAX_CLAIMS)
  let totalPoints = 0
  let lastGeneration = 0
  // Generation an evicted user reads as: at least the highest one evicted, so a token issued before an
  // eviction never matches a user forgotten after it.
  let evictedGeneration = 0

  const dropSeries = (user: UserEntry, metric: string): void => {
    const series = user.series.get(metric)
    if (series === undefined) return
    totalPoints -= series.ring.size
    user.series.delete(metric)
  }
  const userFor = (userId: string, create: boolean): UserEntry | undefined => {
    let user = users.get(userId)
    if (user !== undefined) {
      users.delete(userId)
      users.set(userId, user)
    } else if (create) {
      user = { latest: new Map(), complete: false, latestExpiresAtMs: 0, series: new Map(), generation: evictedGeneration }
      users.set(userId, user)
    }
    if (user === undefined) return undefined
    const nowMs = now()
    if (user.latestExpiresAtMs <= nowMs) {
      user.latest.clear()
      user.complete = false
    }
    for (const [metric, series] of user.series) {
      if (series.expiresAtMs <= nowMs) dropSeries(user, metric)
    }
    return user
  }
  const withinBounds = (): boolean => users.size <= maxUsers && totalPoints <= maxTotalPoints
  const evict = (): void => {
    // Checked before iterating: every use re-inserts its user, so the Map's start is full of the holes V8 leaves
    // until a rehash, and an iterator walks them all before its first entry (see expiring-claims.ts).
    if (withinBounds()) return
    for (const [userId, user] of users) {
      if (withinBounds()) return
      // The user just used sits last; evicting it too would only lose what was just written.
      if (users.size === 1) return
      for (const metric of [...user.series.keys()]) dropSeries(user, metric)
      evictedGeneration = Math.max(evictedGeneration, user.generation)
      users.delete(userId)
    }
  }
  const tokenOf = (userId: string): FillToken => String(users.get(userId)?.generation ?? evictedGeneration) as FillToken
  const invalidateLatest = (user: UserEntry): void => {
    user.latest.clear()
    user.complete = false
    user.generation = ++lastGeneration
  }

  const appendSeries = (user: UserEntry, metric: string, entries: readonly CacheEntry[], expiresAtMs: number): void => {
    let series = user.series.get(metric)
    for (const entry of entries) {
      const newestStartMs = series?.ring.newestStartMs()
      if (series !== undefined && newestStartMs !== undefined && entry.startMs < newestStartMs) {
        // Below the newest point: the series would stop being a contiguous window of the newest events.
        dropSeries(user, metric)
        series = undefined
      }
      if (series === undefined) {
        series = { ring: new PointRing(cap), completeness: undefined, expiresAtMs }
        user.series.set(metric, series)
      }
      if (!series.ring.push(toStoredPoint(entry))) totalPoints++
      series.expiresAtMs = expiresAtMs
    }
  }

  return {
    kind: 'memory',

    async recordCommitted(events) {
      const expiresAtMs = now() + ttlMs
      for (const [userId, metrics] of groupCommitted(events)) {
        const user = userFor(userId, true)!
        let touched = false
        for (const [metric, entries] of metrics) {
          const decision = decideLatest(user.latest.get(metric), entries)
          if (decision.kind === 'drop') invalidateLatest(user)
          else if (decision.kind === 'set') {
            user.latest.set(metric, decision.entry)
            touched = true
          }
          appendSeries(user, metric, entries, expiresAtMs)
        }
        if (touched) user.latestExpiresAtMs = expiresAtMs
      }
      evict()
    },

    async forget(deleted: readonly ForgetTarget[]) {
      for (const [userId, metrics] of groupForget(deleted)) {
        const user = userFor(userId, true)!
        invalidateLatest(user)
        for (const metric of metrics) dropSeries(user, metric)
      }
      evict()
    },

    async getLatest(userId): Promise<CacheRead<LatestByMetric>> {
      const user = userFor(userId, false)
      if (user === undefined || !user.complete) return { hit: false, fillToken: tokenOf(userId) }
      const latest: LatestByMetric = {}
      for (const metric of [...user.latest.keys()].sort()) latest[metric] = user.latest.get(metric)!.event
      return { hit: true, value: latest }
    },

    async fillLatest(userId, events: readonly BiometricEvent[], token) {
      if (tokenOf(userId) !== token) return
      const user = userFor(userId, true)!
      user.latestExpiresAtMs = now() + ttlMs
      for (const event of events) {
        const snapshot = toEntry(event)
        const decision = decideFill(user.latest.get(event.metric), snapshot)
        if (decision.kind === 'conflict') return
        if (decision.kind === 'set') user.latest.set(event.metric, snapshot)
      }
      user.complete = true
      evict()
    },

    async recentSeries(userId, metric, limit): Promise<CacheRead<SeriesPoint[]>> {
      const series = userFor(userId, false)?.series.get(metric)
      if (series?.completeness === undefined) return { hit: false, fillToken: tokenOf(userId) }
      const read = collectNewest(series.ring.newestFirst(), limit)
      const exhaustive = series.completeness === 'all' && series.ring.size < cap && read.exhausted
      if (read.distinct < limit && !exhaustive) return { hit: false, fillToken: tokenOf(userId) }
      return { hit: true, value: newestPoints(read.points, limit).map(publicPoint) }
    },

    async fillSeries(userId, metric, newestFirst, limit, token) {
      if (tokenOf(userId) !== token) return
      const user = userFor(userId, true)!
      const existing = user.series.get(metric)
      const merged = mergeSeriesFill(
        existing?.ring.oldestFirst() ?? [], existing?.completeness, newestFirst.map((event) => toStoredPoint(toEntry(event))),
        newestFirst.length < limit, cap)
      dropSeries(user, metric)
      const series: Series = { ring: new PointRing(cap), completeness: merged.completeness, expiresAtMs: now() + ttlMs }
      for (const point of merged.points) series.ring.push(point)
      totalPoints += series.ring.size
      user.series.set(metric, series)
      evict()
    },

    async claimOnce(key, ttlSeconds) {
      return claims.claim(key, now(), ttlSeconds * 1000)
    },

    async isClaimed(key) {
      return claims.isClaimed(key, now())
    },

    async state(): Promise<CacheState> {
      return 'up'
    },

    async close() {
      users.clear()
      claims.clear()
      totalPoints = 0
    },

    seriesSize(userId, metric) {
      return users.get(userId)?.series.get(metric)?.ring.size ?? 0
    }
  }
}
