import type { BiometricEvent } from '../domain/event.ts'

/**
 * The event cache: latest value per user and metric, and a recent series per user and metric, in front of
 * PostgreSQL (the record). Everything here is best effort: no method throws, a failure reads as a miss, and a
 * miss costs one query. Two adapters implement it with the same semantics: Redis (`REDIS_URL`) and an
 * in-process one for a single node.
 *
 * Ordering rules, the same as `latestEvents` in SQL:
 * - a measurement is newer when its (start, event_id) is greater; the latest value of a metric is only ever
 *   replaced by a newer measurement;
 * - the same event_id replaces itself only with a newer-or-equal revision (source_updated_at, then
 *   ingested_at), so an older revision delivered late never overwrites a newer one.
 */
export interface EventCache {
  readonly kind: 'redis' | 'memory'
  /** Call after the commit only: merges into the latest values and appends to the recent series. */
  recordCommitted(events: readonly BiometricEvent[]): Promise<void>
  /** Call after deletions committed: drops the users' latest values and the affected series. */
  forget(deleted: readonly ForgetTarget[]): Promise<void>
  /** A hit only when the cache holds the user's complete latest picture (filled once, kept by writes). */
  getLatest(userId: string): Promise<CacheRead<LatestByMetric>>
  /**
   * Merges a PostgreSQL snapshot read after a miss, with the same newer-wins rule, so a concurrent writer's
   * newer value survives an older snapshot. Refused when the user was forgotten after `token` was issued.
   */
  fillLatest(userId: string, events: readonly BiometricEvent[], token: FillToken): Promise<void>
  /** Up to `limit` points of the metric, newest (start, event_id) first; `limit` ≤ the series cap. */
  recentSeries(userId: string, metric: string, limit: number): Promise<CacheRead<SeriesPoint[]>>
  /**
   * Merges the `limit` newest events of a metric (newest first, as PostgreSQL returned them) after a miss.
   * Fewer than `limit` events means the snapshot holds all of them.
   */
  fillSeries(userId: string, metric: string, newestFirst: readonly BiometricEvent[], limit: number, token: FillToken): Promise<void>
  /**
   * Claims `key` for `ttlSeconds` (SET NX EX): true for the first caller, false for a repeat, undefined when
   * the cache cannot tell, and the caller relies on its durable unique key instead.
   */
  claimOnce(key: string, ttlSeconds: number): Promise<boolean | undefined>
  /**
   * Whether `key` is claimed (no claim is made). With markers claimed only after a commit, a true answer
   * proves the work is already durable; false or undefined prove nothing.
   */
  isClaimed(key: string): Promise<boolean | undefined>
  /** For /readyz: an unreachable Redis is degraded, never failed. */
  state(): Promise<CacheState>
  close(): Promise<void>
}

export type CacheState = 'up' | 'degraded'

export type LatestByMetric = Record<string, BiometricEvent>

/** Opaque: which invalidations a fill must not have missed. */
export type FillToken = string & { readonly fillToken: unique symbol }

/** A miss carries the token for a later fill, or undefined when the cache must not be filled now. */
export type CacheRead<T> = { hit: true, value: T } | { hit: false, fillToken: FillToken | undefined }

export interface ForgetTarget {
  user_id: string
  metric: string
}

/** One point of a recent series. */
export interface SeriesPoint {
  event_id: string
  start: string
  value: number
}

/** An event reduced to what ordering and series need; `updatedMs` is null when the source gave no revision. */
export interface CacheEntry {
  event: BiometricEvent
  startMs: number
  updatedMs: number | null
  ingestedMs: number
}

/** A series point with the keys that order it and pick its newest revision. */
export interface StoredPoint extends SeriesPoint {
  startMs: number
  updatedMs: number | null
  ingestedMs: number
}

/** The hash field that marks a latest picture as complete; metric names never start with an underscore. */
export const COMPLETE_FIELD = '__complete'

export function toEntry(event: BiometricEvent): CacheEntry {
  return {
    event,
    startMs: Date.parse(event.start),
    updatedMs: event.source_updated_at === null ? null : Date.parse(event.source_updated_at),
    ingestedMs: Date.parse(event.ingested_at)
  }
}

export function toStoredPoint(entry: CacheEntry): StoredPoint {
  return {
    event_id: entry.event.event_id,
    start: entry.event.start,
    value: entry.event.value,
    startMs: entry.startMs,
    updatedMs: entry.updatedMs,
    ingestedMs: entry.ingestedMs
  }
}

/** Orders measurements by (start, event_id), ascending; event ids are lower-case UUIDs, as PostgreSQL compares them. */
export function compareMeasurement(a: { startMs: number, eventId: string }, b: { startMs: number, eventId: string }): number {
  if (a.startMs !== b.startMs) return a.startMs < b.startMs ? -1 : 1
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0
}

/** True when revision a is older than revision b: source_updated_at first (absent is oldest), then ingested_at. */
export function isOlderRevision(
  a: { updatedMs: number | null, ingestedMs: number }, b: { updatedMs: number | null, ingestedMs: number }
): boolean {
  const au = a.updatedMs ?? Number.NEGATIVE_INFINITY
  const bu = b.updatedMs ?? Number.NEGATIVE_INFINITY
  if (au !== bu) return au < bu
  return a.ingestedMs < b.ingestedMs
}

function measurementOf(entry: CacheEntry): { startMs: number, eventId: string } {
  return { startMs: entry.startMs, eventId: entry.event.event_id }
}

/**
 * Groups committed events by user and metric, oldest measurement first, one entry per event_id (a later
 * occurrence in `events` is a later revision of the same upload and wins).
 */
export function groupCommitted(events: readonly BiometricEvent[]): Map<string, Map<string, CacheEntry[]>> {
  const byId = new Map<string, CacheEntry>()
  for (const event of events) {
    byId.delete(event.event_id)
    byId.set(event.event_id, toEntry(event))
  }
  const users = new Map<string, Map<string, CacheEntry[]>>()
  for (const entry of byId.values()) {
    let metrics = users.get(entry.event.user_id)
    if (metrics === undefined) users.set(entry.event.user_id, metrics = new Map<string, CacheEntry[]>())
    let entries = metrics.get(entry.event.metric)
    if (entries === undefined) metrics.set(entry.event.metric, entries = [])
    entries.push(entry)
  }
  for (const metrics of users.values()) {
    for (const entries of metrics.values()) entries.sort((a, b) => compareMeasurement(measurementOf(a), measurementOf(b)))
  }
  return users
}

export function groupForget(deleted: readonly ForgetTarget[]): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>()
  for (const target of deleted) {
    let metrics = users.get(target.user_id)
    if (metrics === undefined) users.set(target.user_id, metrics = new Set<string>())
    metrics.add(target.metric)
  }
  return users
}

export type LatestDecision =
  | { kind: 'keep' }
  | { kind: 'set', entry: CacheEntry }
  /** A revision moved the cached measurement to an earlier start: which event is latest is unknown now. */
  | { kind: 'drop' }

/**
 * How a batch of committed entries of one metric (ascending, unique event ids) changes the cached latest value.
 * The Redis adapter's Lua script implements the same decision.
 */
export function decideLatest(current: CacheEntry | undefined, batch: readonly CacheEntry[]): LatestDecision {
  const top = batch.at(-1)
  if (top === undefined) return { kind: 'keep' }
  if (current === undefined) return { kind: 'set', entry: top }
  const currentId = current.event.event_id
  const revision = batch.find((entry) => entry.event.event_id === currentId)
  if (revision !== undefined && !isOlderRevision(revision, current) && revision.startMs < current.startMs) return { kind: 'drop' }
  // A late, older revision of the cached event is no candidate; the next best entry of the batch may be.
  const candidate = top.event.event_id === currentId && isOlderRevision(top, current) ? batch.at(-2) : top
  if (candidate === undefined) return { kind: 'keep' }
  const order = compareMeasurement(measurementOf(candidate), measurementOf(current))
  if (order < 0 || (order === 0 && isOlderRevision(candidate, current))) return { kind: 'keep' }
  return { kind: 'set', entry: candidate }
}

export type FillDecision = { kind: 'keep' } | { kind: 'set' } | { kind: 'conflict' }

/**
 * How one snapshot entry merges into the cached latest value. A snapshot never lowers a value a writer put
 * there; a newer revision that moved earlier means a write is still on its way, so the fill gives up.
 */
export function decideFill(current: CacheEntry | undefined, snapshot: CacheEntry): FillDecision {
  if (current === undefined) return { kind: 'set' }
  if (snapshot.event.event_id === current.event.event_id) {
    if (isOlderRevision(snapshot, current)) return { kind: 'keep' }
    return snapshot.startMs < current.startMs ? { kind: 'conflict' } : { kind: 'set' }
  }
  return compareMeasurement(measurementOf(snapshot), measurementOf(current)) > 0 ? { kind: 'set' } : { kind: 'keep' }
}

/**
 * Reduces points read from a series, newest first, to the answer: one point per event_id (its newest
 * revision), ordered by (start, event_id) descending, at most `limit`.
 */
export function newestPoints(points: readonly StoredPoint[], limit: number): StoredPoint[] {
  const byId = new Map<string, StoredPoint>()
  for (const point of points) {
    const seen = byId.get(point.event_id)
    if (seen === undefined || isOlderRevision(seen, point)) byId.set(point.event_id, point)
  }
  return [...byId.values()]
    .sort((a, b) => compareMeasurement({ startMs: b.startMs, eventId: b.event_id }, { startMs: a.startMs, eventId: a.event_id }))
    .slice(0, limit)
}

export function publicPoint(point: StoredPoint): SeriesPoint {
  return { event_id: point.event_id, start: point.start, value: point.value }
}

/**
 * What a series holds besides its points: `top` — every event from its oldest point up (a contiguous window of
 * the newest events); `all` — every event of the metric, as long as the series was never trimmed.
 */
export type SeriesCompleteness = 'all' | 'top'

/**
 * Collects points from a series read newest first until `limit` distinct events are seen, plus every further
 * point at the same start millisecond (ties are ordered by event_id, not by arrival). `exhausted` says the
 * whole series was read.
 */
export function collectNewest(newestFirst: Iterable<StoredPoint>, limit: number): { points: StoredPoint[], distinct: number, exhausted: boolean } {
  const points: StoredPoint[] = []
  const seen = new Set<string>()
  let boundaryMs: number | undefined
  for (const point of newestFirst) {
    if (boundaryMs !== undefined && point.startMs < boundaryMs) return { points, distinct: seen.size, exhausted: false }
    points.push(point)
    if (!seen.has(point.event_id)) {
      seen.add(point.event_id)
      if (seen.size === limit) boundaryMs = point.startMs
    }
  }
  return { points, distinct: seen.size, exhausted: true }
}

/**
 * Merges a PostgreSQL snapshot (the `limit` newest events, newest first) with what a series already holds.
 * The result is a contiguous window of the newest events: below the snapshot's oldest event only what an
 * existing complete window proves may stay. The Redis adapter's fill script implements the same merge.
 */
export function mergeSeriesFill(
  existing: readonly StoredPoint[], existingCompleteness: SeriesCompleteness | undefined,
  snapshotNewestFirst: readonly StoredPoint[], exhaustive: boolean, cap: number
): { points: StoredPoint[], completeness: SeriesCompleteness } {
  const byId = new Map<string, StoredPoint>()
  for (const point of [...snapshotNewestFirst, ...existing]) {
    const seen = byId.get(point.event_id)
    if (seen === undefined || isOlderRevision(seen, point)) byId.set(point.event_id, point)
  }
  const existingExhaustive = existingCompleteness === 'all' && existing.length < cap
  const oldestSnapshot = snapshotNewestFirst.at(-1)
  let cut = exhaustive || existingExhaustive || oldestSnapshot === undefined
    ? undefined
    : { startMs: oldestSnapshot.startMs, eventId: oldestSnapshot.event_id }
  const oldestExisting = existing[0]
  if (cut !== undefined && existingCompleteness !== undefined && oldestExisting !== undefined) {
    const candidate = { startMs: oldestExisting.startMs, eventId: oldestExisting.event_id }
    if (compareMeasurement(candidate, cut) < 0) cut = candidate
  }
  const keyOf = (point: StoredPoint) => ({ startMs: point.startMs, eventId: point.event_id })
  const merged = [...byId.values()]
    .filter((point) => cut === undefined || compareMeasurement(keyOf(point), cut) >= 0)
    .sort((a, b) => compareMeasurement(keyOf(a), keyOf(b)))
  if (merged.length > cap) return { points: merged.slice(merged.length - cap), completeness: 'top' }
  return { points: merged, completeness: exhaustive || existingExhaustive ? 'all' : 'top' }
}
