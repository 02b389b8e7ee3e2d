import { principalLabel } from '../../auth/principals.ts'
import { createDevice } from '../../auth/credentials-repository.ts'
import type { SeriesPoint } from '../../cache/cache.ts'
import type { BiometricEvent } from '../../domain/event.ts'
import { METRICS, isMetricName } from '../../domain/catalog.ts'
import { BridgeError } from '../../errors.ts'
import { latestEvents, queryEvents, recentEvents } from '../../storage/events-repository.ts'
import type { HttpContext, HttpServer } from '../context.ts'
import { principalOf } from '../route-auth.ts'
import { parseUserId } from '../../domain/user-id.ts'

const DEFAULT_PAGE = 100
const MAX_PAGE = 1000
/** Points in one recent-series answer; also never more than the cache keeps (MAX_TIMESERIES_ENTRIES). */
const DEFAULT_RECENT = 100
const MAX_RECENT = 5000

interface Cursor {
  startMs: number
  eventId: string
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.startMs, cursor.eventId])).toString('base64url')
}

export function decodeCursor(text: string): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && Number.isFinite(value[0]) && typeof value[1] === 'string' &&
      /^[0-9a-f-]{36}$/.test(value[1])) {
      return { startMs: value[0] as number, eventId: value[1] }
    }
  } catch {
    // fall through to the coded error below
  }
  throw new BridgeError('BB_INVALID_CURSOR', 'cursor is not one this API returned')
}

function parseTime(name: string, value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN
  if (!Number.isFinite(ms)) throw new BridgeError('BB_INVALID_REQUEST', `${name} must be an ISO-8601 timestamp`)
  return ms
}

function optionalText(name: string, value: unknown, maxLength = 64): string | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string' || value.length > maxLength) throw new BridgeError('BB_INVALID_REQUEST', `${name} is invalid`)
  return value
}

export function registerUserRoutes(app: HttpServer, context: HttpContext): void {
  app.get('/v1/users/:userId/events', { config: { auth: 'read:events' } }, async (request) => {
    const principal = principalOf(request)
    const params = request.params as Record<string, unknown>
    const query = request.query as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const limitText = query.limit
    const limit = limitText === undefined ? DEFAULT_PAGE : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new BridgeError('BB_INVALID_REQUEST', `limit must be an integer from 1 to ${MAX_PAGE}`)
    }
    const cursorText = optionalText('cursor', query.cursor, 256)
    const metric = optionalText('metric', query.metric)
    const rows = await queryEvents(context.db, {
      userId,
      metric,
      source: optionalText('source', query.source),
      fromMs: parseTime('from', query.from),
      toMs: parseTime('to', query.to),
      after: cursorText === undefined ? undefined : decodeCursor(cursorText),
      limit: limit + 1
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    await context.audit(context.db, {
      principal: principalLabel(principal), action: 'events.read', userId, detail: { count: page.length, metric: metric ?? null }
    })
    return {
      data: page,
      next_cursor: rows.length > limit && last !== undefined
        ? encodeCursor({ startMs: Date.parse(last.start), eventId: last.event_id })
        : null
    }
  })

  app.get('/v1/users/:userId/latest', { config: { auth: 'read:events' } }, async (request) => {
    const principal = principalOf(request)
    const userId = parseUserId((request.params as Record<string, unknown>).userId)
    const cached = await context.cache.getLatest(userId)
    context.metrics.cacheLookupsTotal.inc({ kind: 'latest', result: cached.hit ? 'hit' : 'miss' })
    let latest: Record<string, BiometricEvent>
    if (cached.hit) {
      latest = cached.value
    } else {
      const events = await latestEvents(context.db, userId)
      latest = Object.fromEntries(events.map((event) => [event.metric, event]))
      if (cached.fillToken !== undefined) await context.cache.fillLatest(userId, events, cached.fillToken)
    }
    await context.audit(context.db, {
      principal: principalLabel(principal), action: 'latest.read', userId, detail: { count: Object.keys(latest).length }
    })
    return { data: latest }
  })

  app.get('/v1/users/:userId/metrics/:metric/recent', { config: { auth: 'read:events' } }, async (request) => {
    const principal = principalOf(request)
    const params = request.params as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const metric = params.metric
    if (typeof metric !== 'string' || !isMetricName(metric)) throw new BridgeError('BB_INVALID_REQUEST', 'metric is not in the catalog')
    const maxLimit = Math.min(MAX_RECENT, context.config.maxTimeseriesEntries)
    const limitText = (request.query as Record<string, unknown>).limit
    const limit = limitText === undefined ? Math.min(DEFAULT_RECENT, maxLimit) : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
      throw new BridgeError('BB_INVALID_REQUEST', `limit must be an integer from 1 to ${maxLimit}`)
    }
    const cached = await context.cache.recentSeries(userId, metric, limit)
    context.metrics.cacheLookupsTotal.inc({ kind: 'recent', result: cached.hit ? 'hit' : 'miss' })
    let points: SeriesPoint[]
    if (cached.hit) {
      points = cached.value
    } else {
      const events = await recentEvents(context.db, userId, metric, limit)
      points = events.map((event) => ({ event_id: event.event_id, start: event.start, value: event.value }))
      if (cached.fillToken !== undefined) await context.cache.fillSeries(userId, metric, events, limit, cached.fillToken)
    }
    await context.audit(context.db, {
      principal: principalLabel(principal), action: 'recent.read', userId, detail: { count: points.length, metric }
    })
    return { metric, unit: METRICS[metric].unit, data: points }
  })

  app.post('/v1/users/:userId/devices', { config: { auth: 'admin' } }, async (request, reply) => {
    const principal = principalOf(request)
    const userId = parseUserId((request.params as Record<string, unknown>).userId)
    const body = (request.body ?? {}) as Record<string, unknown>
    const name = body.name
    if (name !== undefined && (typeof name !== 'string' || name.length > 100)) {
      throw new BridgeError('BB_INVALID_REQUEST', 'name must be a string of at most 100 characters')
    }
    const device = await createDevice(context.db, userId, name)
    await context.audit(context.db, { principal: principalLabel(principal), action: 'device.create', userId, detail: { device_id: device.id } })
    return reply.code(201).send({ device_id: device.id, token: device.token })
  })
}
