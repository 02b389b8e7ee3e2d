import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { HttpError, listen, readBody, send, type Reply } from '../http-server.ts'
import {
  generateWhoopData, type WhoopCycle, type WhoopDataset, type WhoopRecovery, type WhoopScoreState, type WhoopSleep, type WhoopWorkout
} from './data.ts'
import { createRateLimiter, createWhoopFaults, WHOOP_PER_DAY, WHOOP_PER_MINUTE, type WhoopFaults } from './limits.ts'
import { createWhoopOAuth, WHOOP_SCOPES, type WhoopTokenResponse, type WhoopTokenStats } from './oauth.ts'
import { postWhoopWebhook, type WhoopEventInput, type WhoopWebhookDelivery } from './webhooks.ts'

/**
 * An in-process stand-in for WHOOP's developer API v2 (reference §2): OAuth with rotating single-use refresh
 * tokens, profile, sleep/workout/cycle/recovery documents and their paged collections, the per-app rate limit
 * with its headers, signed webhooks and a few fault switches. Point `WHOOP_API_URL` at `baseUrl`.
 */

export interface WhoopSimulatorOptions {
  clientId?: string
  clientSecret?: string
  /** Seeds generated users and the ratio fault. Default 1. */
  seed?: number
  /** The simulator's clock (epoch ms): token and code expiry, rate windows, default collection `end`, signatures. */
  now?: () => number
  /** Default 3600 (reference §2.1). */
  accessTokenTtlSeconds?: number
  /** Default page size of collections; WHOOP's default is 10 and `limit` may ask for up to 25. */
  pageSize?: number
  /** Per-app limits; default 100 and 10,000 (reference §2.6). */
  perMinute?: number
  perDay?: number
  host?: string
  port?: number
  /** Sees every token set minted (code exchange, refresh, issueTokens). */
  onTokensIssued?: (tokens: WhoopTokenResponse) => void
}

export interface WhoopUserOptions {
  /** int64 as a decimal string; default derived from the seed. */
  userId?: string
  /** Default 7. */
  days?: number
  /** Default: the simulator's clock. */
  nowMs?: number
  /** Minutes east of UTC; default -300. */
  offsetMinutes?: number
}

export type WhoopDocumentKind = 'sleep' | 'workout' | 'recovery'

export interface WhoopSimulator {
  /** For `WHOOP_API_URL`: `/developer/v2/...` and `/oauth/oauth2/token` live under it. */
  readonly baseUrl: string
  readonly authorizeUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly faults: WhoopFaults

  addUser(options?: WhoopUserOptions): WhoopDataset
  userIds(): string[]
  /** Copies, oldest first. */
  cycles(userId: string): WhoopCycle[]
  sleeps(userId: string): WhoopSleep[]
  recoveries(userId: string): WhoopRecovery[]
  workouts(userId: string): WhoopWorkout[]
  /**
   * Moves a document to another score state (`score` goes away unless SCORED, and comes back when re-scored) and
   * bumps `updated_at`. A recovery is named by its sleep id, as webhooks name it. Returns a copy.
   */
  setScoreState(kind: WhoopDocumentKind, id: string, state: WhoopScoreState): WhoopSleep | WhoopWorkout | WhoopRecovery
  /** Applies `patch`, bumps `updated_at`; returns a copy. */
  updateSleep(id: string, patch: Partial<Omit<WhoopSleep, 'id' | 'user_id'>>): WhoopSleep
  /** Removes the sleep and its recovery (reference §2.5); false when absent. */
  deleteSleep(id: string): boolean
  deleteWorkout(id: string): boolean

  issueCode(userId: string, scopes?: readonly string[], redirectUri?: string): string
  /** Tokens without the consent round trip; default scopes: all, `offline` included. */
  issueTokens(userId: string, scopes?: readonly string[]): WhoopTokenResponse
  tokenStats(userId: string): WhoopTokenStats
  /** Every access token issued so far answers 401 from now on; refresh tokens keep working. */
  expireAccessTokens(): void
  /** Forgets the rate windows. */
  resetRateLimit(): void

  /** Posts the event signed with the client secret (or `secret`). */
  sendWebhook(event: WhoopEventInput, options: { to: string, secret?: string, timeoutMs?: number }): Promise<WhoopWebhookDelivery>

  /** Requests per route, e.g. `POST /oauth/oauth2/token`, `GET /developer/v2/activity/sleep/{id}`; no key: all. */
  requestCount(route?: string): number
  close(): Promise<void>
}

const MAX_LIMIT = 25
const DEFAULT_SCOPES: readonly string[] = WHOOP_SCOPES

interface Context {
  request: IncomingMessage
  url: URL
  params: string[]
}

interface Route {
  method: string
  pattern: RegExp
  key: string
  /** Scope a bearer token needs; undefined: not an authenticated API route. */
  scope?: string
  api: boolean
  handle: (context: Context, userId: string) => Reply | Promise<Reply>
}

/** WHOOP's error body: `{"error": …}`, with a message for bad requests. */
const whoopError = (status: number, error: string, message?: string): HttpError =>
  new HttpError(status, message === undefined ? { error } : { error, message })

const readRequestBody = (request: IncomingMessage): Promise<string> =>
  readBody(request, 100_000, () => whoopError(413, 'payload_too_large'))

function parseInstant(value: string | null, name: string): number | undefined {
  if (value === null || value === '') return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw whoopError(400, 'bad_request', `${name} must be an ISO-8601 date-time`)
  return ms
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** The cursor names the last record served, so a page boundary survives inserts and deletes. */
const encodeCursor = (startMs: number, key: string): string => Buffer.from(JSON.stringify([startMs, key])).toString('base64url')
function decodeCursor(token: string): [number, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') return [value[0], value[1]]
  } catch {
    // Falls through to the 400 below.
  }
  throw whoopError(400, 'bad_request', 'nextToken is not valid')
}

export async function startWhoopSimulator(options: WhoopSimulatorOptions = {}): Promise<WhoopSimulator> {
  const clientId = options.clientId ?? 'whoop-sim-client'
  const clientSecret = options.clientSecret ?? 'whoop-sim-client-secret'
  const seed = options.seed ?? 1
  const now = options.now ?? Date.now
  const pageSize = options.pageSize ?? 10
  if (!(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= MAX_LIMIT)) throw new RangeError('pageSize must be 1–25')

  const oauth = createWhoopOAuth({
    clientId, clientSecret, now, accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600, codeTtlSeconds: 600,
    ...(options.onTokensIssued === undefined ? {} : { onTokensIssued: options.onTokensIssued })
  })
  const limiter = createRateLimiter(options.perMinute ?? WHOOP_PER_MINUTE, options.perDay ?? WHOOP_PER_DAY)
  const faults = createWhoopFaults(seed ^ 0x5eed)
  /** In creation order; the first logs in at /oauth/oauth2/auth unless `sim_user_id` names another. */
  const users = new Map<string, WhoopDataset>()
  /** Scores taken away by setScoreState, restored when the document is scored again. */
  const stashedScores = new WeakMap<object, unknown>()
  const routeCounts = new Map<string, number>()
  const closing = new AbortController()

  const userOf = (userId: string): WhoopDataset => {
    const user = users.get(userId)
    if (user === undefined) throw new RangeError(`no simulated WHOOP user ${userId}`)
    return user
  }
  const allUsers = (): WhoopDataset[] => [...users.values()]
  const findSleep = (id: string): { user: WhoopDataset, sleep: WhoopSleep } | undefined => {
    for (const user of allUsers()) {
      const sleep = user.sleeps.find((s) => s.id === id)
      if (sleep !== undefined) return { user, sleep }
    }
    return undefined
  }
  const findWorkout = (id: string): WhoopWorkout | undefined => {
    for (const user of allUsers()) {
      const workout = user.workouts.find((w) => w.id === id)
      if (workout !== undefined) return workout
    }
    return undefined
  }
  const bumpUpdatedAt = (document: { updated_at: string }): void => {
    // A revision is always newer than the last one, even when the clock has not moved.
    document.updated_at = new Date(Math.max(now(), Date.parse(document.updated_at) + 1000)).toISOString()
  }

  // ---- OAuth ----

  const authorize = (context: Context): Reply => {
    const query = context.url.searchParams
    if (query.get('client_id') !== clientId) throw whoopError(400, 'invalid_client')
    let redirect: URL
    try {
      redirect = new URL(query.get('redirect_uri') ?? '')
    } catch {
      throw whoopError(400, 'invalid_request', 'redirect_uri must be an absolute URL')
    }
    const state = query.get('state')
    const back = (params: Record<string, string>): Reply => {
      for (const [name, value] of Object.entries(params)) redirect.searchParams.set(name, value)
      if (state !== null) redirect.searchParams.set('state', state)
      return { status: 302, headers: { location: redirect.toString() } }
    }
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' })
    const userId = query.get('sim_user_id') ?? users.keys().next().value
    if (userId === undefined || !users.has(userId)) throw whoopError(400, 'invalid_request', 'no simulated user to log in')
    const scopes = (query.get('scope') ?? DEFAULT_SCOPES.join(' ')).split(' ').filter((s) => s !== '')
    return back({ code: oauth.issueCode(userId, scopes, query.get('redirect_uri') ?? undefined), scope: scopes.join(' ') })
  }

  const token = async (context: Context): Promise<Reply> => {
    const type = context.request.headers['content-type'] ?? ''
    const body = await readRequestBody(context.request)
    if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) throw whoopError(400, 'invalid_request')
    const result = oauth.token(new URLSearchParams(body))
    if (!result.ok) return { status: result.status, body: { error: result.error } }
    return { status: 200, body: result.tokens, headers: { 'cache-control': 'no-store' } }
  }

  // ---- Data API ----

  const cycleStartMs = (user: WhoopDataset, cycleId: number): number =>
    Date.parse(user.cycles.find((c) => c.id === cycleId)?.start ?? '1970-01-01T00:00:00Z')

  /** `start` inclusive, `end` exclusive (default now), newest first, keyset-paged. */
  const collection = <T>(context: Context, items: readonly T[], startOf: (item: T) => number, keyOf: (item: T) => string): Reply => {
    const query = context.url.searchParams
    const fromMs = parseInstant(query.get('start'), 'start') ?? Number.NEGATIVE_INFINITY
    const toMs = parseInstant(query.get('end'), 'end') ?? now()
    const limitText = query.get('limit')
    const limit = limitText === null || limitText === '' ? pageSize : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw whoopError(400, 'bad_request', 'limit must be 1–25')
    const nextToken = query.get('nextToken')
    const after = nextToken === null || nextToken === '' ? undefined : decodeCursor(nextToken)
    const sorted = items
      .map((item) => ({ item, startMs: startOf(item), key: keyOf(item) }))
      .filter((row) => row.startMs >= fromMs && row.startMs < toMs)
      .sort((a, b) => b.startMs - a.startMs || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0))
    const rest = after === undefined
      ? sorted
      : sorted.filter((row) => row.startMs < after[0] || (row.startMs === after[0] && row.key < after[1]))
    const page = rest.slice(0, limit)
    const last = page.at(-1)
    return {
      status: 200,
      body: {
        records: page.map((row) => row.item),
        ...(rest.length > limit && last !== undefined ? { next_token: encodeCursor(last.startMs, last.key) } : {})
      }
    }
  }

  const notFound = (): HttpError => whoopError(404, 'not_found')
  const cycleOf = (user: WhoopDataset, idText: string): WhoopCycle => {
    const cycle = /^\d{1,19}$/.test(idText) ? user.cycles.find((c) => c.id === Number(idText)) : undefined
    if (cycle === undefined) throw notFound()
    return cycle
  }

  const routes: Route[] = [
    { method: 'GET', pattern: /^\/oauth\/oauth2\/auth$/, key: 'GET /oauth/oauth2/auth', api: false, handle: authorize },
    { method: 'POST', pattern: /^\/oauth\/oauth2\/token$/, key: 'POST /oauth/oauth2/token', api: false, handle: token },
    {
      method: 'GET', pattern: /^\/developer\/v2\/user\/profile\/basic$/, key: 'GET /developer/v2/user/profile/basic',
      scope: 'read:profile', api: true, handle: (_, userId) => ({ status: 200, body: userOf(userId).profile })
    },
    {
      method: 'DELETE', pattern: /^\/developer\/v2\/user\/access$/, key: 'DELETE /developer/v2/user/access', api: true,
      scope: '', handle: (_, userId) => {
        oauth.revokeUser(userId)
        return { status: 204 }
      }
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/activity\/sleep$/, key: 'GET /developer/v2/activity/sleep', scope: 'read:sleep',
      api: true, handle: (context, userId) => collection(context, userOf(userId).sleeps, (s) => Date.parse(s.start), (s) => s.id)
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/activity\/sleep\/([^/]+)$/, key: 'GET /developer/v2/activity/sleep/{id}',
      scope: 'read:sleep', api: true, handle: (context, userId) => {
        const sleep = userOf(userId).sleeps.find((s) => s.id === context.params[0])
        if (sleep === undefined) throw notFound()
        return { status: 200, body: sleep }
      }
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/activity\/workout$/, key: 'GET /developer/v2/activity/workout', scope: 'read:workout',
      api: true, handle: (context, userId) => collection(context, userOf(userId).workouts, (w) => Date.parse(w.start), (w) => w.id)
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/activity\/workout\/([^/]+)$/, key: 'GET /developer/v2/activity/workout/{id}',
      scope: 'read:workout', api: true, handle: (context, userId) => {
        const workout = userOf(userId).workouts.find((w) => w.id === context.params[0])
        if (workout === undefined) throw notFound()
        return { status: 200, body: workout }
      }
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/cycle$/, key: 'GET /developer/v2/cycle', scope: 'read:cycles', api: true,
      // Keys compare as text, so zero-padding keeps int64 ids in numeric order.
      handle: (context, userId) => collection(context, userOf(userId).cycles, (c) => Date.parse(c.start), (c) => String(c.id).padStart(20, '0'))
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/cycle\/([^/]+)$/, key: 'GET /developer/v2/cycle/{id}', scope: 'read:cycles',
      api: true, handle: (context, userId) => ({ status: 200, body: cycleOf(userOf(userId), context.params[0] ?? '') })
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/cycle\/([^/]+)\/recovery$/, key: 'GET /developer/v2/cycle/{id}/recovery',
      scope: 'read:recovery', api: true, handle: (context, userId) => {
        const user = userOf(userId)
        const cycle = cycleOf(user, context.params[0] ?? '')
        const recovery = user.recoveries.find((r) => r.cycle_id === cycle.id)
        if (recovery === undefined) throw notFound()
        return { status: 200, body: recovery }
      }
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/cycle\/([^/]+)\/sleep$/, key: 'GET /developer/v2/cycle/{id}/sleep',
      scope: 'read:sleep', api: true, handle: (context, userId) => {
        const user = userOf(userId)
        const cycle = cycleOf(user, context.params[0] ?? '')
        const sleep = user.sleeps.find((s) => s.cycle_id === cycle.id && !s.nap)
        if (sleep === undefined) throw notFound()
        return { status: 200, body: sleep }
      }
    },
    {
      method: 'GET', pattern: /^\/developer\/v2\/recovery$/, key: 'GET /developer/v2/recovery', scope: 'read:recovery', api: true,
      handle: (context, userId) => {
        const user = userOf(userId)
        // A recovery has no start of its own; it pages by its cycle's.
        return collection(context, user.recoveries, (r) => cycleStartMs(user, r.cycle_id), (r) => r.sleep_id)
      }
    }
  ]

  const bump = (key: string): void => { routeCounts.set(key, (routeCounts.get(key) ?? 0) + 1) }

  const handleApi = async (route: Route, context: Context): Promise<Reply> => {
    const delayMs = faults.delayMs()
    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs)
        closing.signal.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        }, { once: true })
      })
    }
    // Every API answer carries the rate headers, failures included.
    const rate = limiter.check(now())
    const withRate = (reply: Reply): Reply => ({ ...reply, headers: { ...rate.headers, ...reply.headers } })
    if (!rate.admitted) return withRate({ status: 429, body: { error: 'too_many_requests' } })
    const failure = faults.serverError()
    if (failure !== undefined) return withRate({ status: failure, body: { error: 'internal_server_error' } })
    try {
      const match = /^Bearer\s+(\S+)$/i.exec(context.request.headers.authorization ?? '')
      const access = match === null ? undefined : oauth.checkAccess(match[1] ?? '')
      if (access === undefined || !access.ok) throw whoopError(401, 'unauthorized')
      if (route.scope !== undefined && route.scope !== '' && !access.scopes.has(route.scope)) throw whoopError(403, 'forbidden')
      return withRate(await route.handle(context, access.userId))
    } catch (error) {
      if (error instanceof HttpError) return withRate({ status: error.status, body: error.body })
      throw error
    }
  }

  const dispatch = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://whoop.invalid')
    let reply: Reply | undefined
    for (const route of routes) {
      if (route.method !== request.method) continue
      const match = route.pattern.exec(url.pathname)
      if (match === null) continue
      const params = match.slice(1).map(decodeSegment)
      // Malformed percent-encoding names no document: no route matches.
      if (!params.every((p): p is string => p !== undefined)) break
      bump(route.key)
      const context = { request, url, params }
      if (route.api) {
        reply = await handleApi(route, context)
      } else {
        try {
          reply = await route.handle(context, '')
        } catch (error) {
          if (!(error instanceof HttpError)) throw error
          reply = { status: error.status, body: error.body }
        }
      }
      break
    }
    if (closing.signal.aborted) return
    if (reply === undefined) {
      bump(`${request.method ?? 'GET'} (unmatched)`)
      reply = { status: 404, body: { error: 'not_found' } }
    }
    // Drain what the handler did not read, so keep-alive connections stay usable.
    if (!request.readableEnded) request.resume()
    send(response, reply)
  }

  const server = createServer((request, response) => {
    dispatch(request, response).catch((error: unknown) => {
      send(response, { status: 500, body: { error: 'internal_server_error', message: (error as Error).message } })
    })
  })
  const baseUrl = await listen(server, options.port, options.host)

  const setScoreState = (kind: 'sleep' | 'workout' | 'recovery', id: string, state: WhoopScoreState): WhoopSleep | WhoopWorkout | WhoopRecovery => {
    const document = kind === 'sleep'
      ? findSleep(id)?.sleep
      : kind === 'workout'
        ? findWorkout(id)
        : allUsers().flatMap((u) => u.recoveries).find((r) => r.sleep_id === id || String(r.cycle_id) === id)
    if (document === undefined) throw new RangeError(`no ${kind} ${id}`)
    const target = document as { score_state: WhoopScoreState, score?: unknown, updated_at: string }
    if (state === 'SCORED') {
      const stashed = stashedScores.get(target)
      if (target.score === undefined && stashed !== undefined) target.score = stashed
    } else if (target.score !== undefined) {
      stashedScores.set(target, target.score)
      delete target.score
    }
    target.score_state = state
    bumpUpdatedAt(target)
    return structuredClone(document)
  }

  const simulator: WhoopSimulator = {
    baseUrl,
    authorizeUrl: `${baseUrl}/oauth/oauth2/auth`,
    clientId,
    clientSecret,
    faults,

    addUser(userOptions = {}) {
      const dataset = generateWhoopData({
        seed: (seed * 7919 + users.size * 104_729) >>> 0,
        days: userOptions.days ?? 7,
        nowMs: userOptions.nowMs ?? now(),
        ...(userOptions.userId === undefined ? {} : { userId: userOptions.userId }),
        ...(userOptions.offsetMinutes === undefined ? {} : { offsetMinutes: userOptions.offsetMinutes })
      })
      if (users.has(dataset.userId)) throw new RangeError(`user ${dataset.userId} exists already`)
      users.set(dataset.userId, dataset)
      return structuredClone(dataset)
    },
    userIds: () => [...users.keys()],
    cycles: (userId) => structuredClone(userOf(userId).cycles),
    sleeps: (userId) => structuredClone(userOf(userId).sleeps),
    recoveries: (userId) => structuredClone(userOf(userId).recoveries),
    workouts: (userId) => structuredClone(userOf(userId).workouts),
    setScoreState,
    updateSleep(id, patch) {
      const found = findSleep(id)
      if (found === undefined) throw new RangeError(`no sleep ${id}`)
      Object.assign(found.sleep, patch, { id, user_id: found.sleep.user_id })
      bumpUpdatedAt(found.sleep)
      return structuredClone(found.sleep)
    },
    deleteSleep(id) {
      const found = findSleep(id)
      if (found === undefined) return false
      found.user.sleeps = found.user.sleeps.filter((s) => s.id !== id)
      found.user.recoveries = found.user.recoveries.filter((r) => r.sleep_id !== id)
      return true
    },
    deleteWorkout(id) {
      for (const user of allUsers()) {
        const before = user.workouts.length
        user.workouts = user.workouts.filter((w) => w.id !== id)
        if (user.workouts.length !== before) return true
      }
      return false
    },

    issueCode: (userId, scopes = DEFAULT_SCOPES, redirectUri) => {
      userOf(userId)
      return oauth.issueCode(userId, scopes, redirectUri)
    },
    issueTokens: (userId, scopes = DEFAULT_SCOPES) => {
      userOf(userId)
      return oauth.issueTokens(userId, scopes)
    },
    tokenStats: (userId) => oauth.stats(userId),
    expireAccessTokens: () => { oauth.expireAccessTokens() },
    resetRateLimit: () => { limiter.reset() },

    sendWebhook: (event, sendOptions) =>
      postWhoopWebhook(sendOptions.to, event, sendOptions.secret ?? clientSecret, now(), sendOptions.timeoutMs),

    requestCount: (route) => route === undefined
      ? [...routeCounts.values()].reduce((sum, n) => sum + n, 0)
      : routeCounts.get(route) ?? 0,
    async close() {
      closing.abort()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
  return simulator
}
