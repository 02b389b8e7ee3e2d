import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { HttpError, listen, readBody, send, type Reply } from '../http-server.ts'
import type { OuraDataType } from '../../providers/oura/documents.ts'
import {
  generateOuraData, type OuraDataset, type OuraDocument, type OuraDocumentsByType, type OuraHeartRateRow, type OuraPersonalInfo
} from './data.ts'
import { createFaults, type OuraFaults, type RouteGroup } from './faults.ts'
import { createOAuthServer, OURA_SCOPES, type TokenResponse, type TokenStats } from './oauth.ts'
import { createDocumentStore, QueryError, type RangeSemantics } from './store.ts'
import {
  DELIVERY_TIMEOUT_MS, postNotification, signNotification, toNotification, verifyCallback,
  type Delivery, type DeliveryOptions, type OuraEventType, type OuraNotificationInput, type SignOptions
} from './webhooks.ts'

/**
 * An in-process stand-in for Oura's cloud (API v2): OAuth, personal info, documents and collections with
 * paging, heart rate, webhook subscriptions with the verification handshake, signed notifications, and fault
 * switches. Point `OURA_API_URL` at `baseUrl` and `OURA_AUTHORIZE_URL` at `authorizeUrl`.
 */

export interface SimulatedUserOptions {
  /** Whole days of data, ending at the last local midnight. Default 7. */
  days?: number
  /** Default: derived from the simulator's seed and the user's position. */
  seed?: number
  /** Oura user id; default derived from the seed. */
  userId?: string
  /** Minutes east of UTC; default 60. */
  offsetMinutes?: number
  email?: string
  /** Default: the simulator's clock. */
  nowMs?: number
}

export interface OuraSimulatorOptions {
  clientId?: string
  clientSecret?: string
  /** Seeds the generated users and the ratio faults. Default 1. */
  seed?: number
  /** The simulator's clock (epoch ms): token and code expiry, subscription lifetimes, signatures, the budget. */
  now?: () => number
  host?: string
  port?: number
  /** Documents per collection page; small values make clients page. Default 50. */
  pageSize?: number
  /** Heart-rate rows per page. Default 1000. */
  heartRatePageSize?: number
  /** `expires_in` of access tokens, seconds. Default 86,400 (the docs also say 30 days; unconfirmed). */
  accessTokenTtlSeconds?: number
  /** Default 600 (10 minutes, reference §1.1). */
  authorizationCodeTtlSeconds?: number
  /** Lifetime of a subscription from create or renew, seconds (real value unconfirmed). Default 30 days. */
  subscriptionLifetimeSeconds?: number
  /** When set, /oauth/authorize refuses any other redirect_uri, as an app's registered list does. */
  redirectUris?: readonly string[]
  /** Timeout of the handshake GET against a callback URL. Default 5,000 ms. */
  handshakeTimeoutMs?: number
  rangeSemantics?: RangeSemantics
  /** Users created at start. */
  users?: readonly SimulatedUserOptions[]
  /** Sees every token pair minted (code exchange, refresh, issueTokens). */
  onTokensIssued?: (tokens: TokenResponse) => void
}

/** How the simulated user answers the consent screen of /oauth/authorize. */
export interface ConsentSettings {
  /** Who logs in; default the first user. A `sim_user_id` query parameter on the authorize URL wins. */
  userId?: string
  /** Scopes the user unticks on the consent screen. */
  withhold?: readonly string[]
  /** The user presses "deny": the redirect carries `error=access_denied`. */
  deny?: boolean
}

/** `WebhookSubscriptionModel`; Oura does not echo `verification_token`. */
export interface OuraSubscription {
  id: string
  callback_url: string
  event_type: OuraEventType
  data_type: string
  expiration_time: string
}

export interface SendOptions extends SignOptions, DeliveryOptions {
  /** Key of the signature; default the simulator's client secret. */
  secret?: string
}

export interface EmitOptions extends SendOptions {
  /** A fixed receiver instead of every matching, unexpired subscription. */
  to?: string
  /** Notifications in flight at once. Default 8. */
  concurrency?: number
}

export interface OuraSimulator {
  /** For `OURA_API_URL`: `/v2/...` and `/oauth/token` live under it. */
  readonly baseUrl: string
  /** For `OURA_AUTHORIZE_URL`. */
  readonly authorizeUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly faults: OuraFaults

  addUser(options?: SimulatedUserOptions): OuraDataset
  userIds(): string[]
  personalInfo(userId: string): OuraPersonalInfo
  setConsent(consent: ConsentSettings | undefined): void
  /** An authorization code as the consent redirect would carry it. */
  issueCode(userId: string, scopes?: readonly string[], redirectUri?: string): string
  issueTokens(userId: string, scopes?: readonly string[]): TokenResponse
  tokenStats(userId: string): TokenStats
  /** Every access token issued so far answers 401 from now on; refresh tokens still work. */
  expireAccessTokens(): void

  /** Copies of the user's current documents of a type. */
  documents<T extends OuraDataType>(userId: string, dataType: T): Array<OuraDocumentsByType[T]>
  document<T extends OuraDataType>(dataType: T, id: string): OuraDocumentsByType[T] | undefined
  heartRate(userId: string): OuraHeartRateRow[]
  /** Stores a new document (its id must be new); returns the `create` notification to send. */
  addDocument<T extends OuraDataType>(userId: string, dataType: T, document: OuraDocumentsByType[T]): OuraNotificationInput
  /** Applies `patch`, bumps meta.version and meta.updated_at; returns the new document and its `update` notification. */
  updateDocument<T extends OuraDataType>(
    dataType: T, id: string, patch?: Partial<OuraDocumentsByType[T]>
  ): { document: OuraDocumentsByType[T], notification: OuraNotificationInput }
  /** Removes a document (GET answers 404 afterwards); returns its `delete` notification, or undefined if absent. */
  deleteDocument(dataType: OuraDataType, id: string): OuraNotificationInput | undefined
  /** One notification per current document of the user, e.g. `create` for a freshly generated history. */
  notificationsFor(userId: string, eventType?: OuraEventType, dataTypes?: readonly OuraDataType[]): OuraNotificationInput[]

  subscriptions(): OuraSubscription[]
  setSubscriptionLifetime(seconds: number): void
  /** Sets a subscription's expiration_time directly, e.g. into the past. */
  setSubscriptionExpiration(id: string, expiresAtMs: number): void

  sendNotification(notification: OuraNotificationInput, options: SendOptions & { to: string }): Promise<Delivery>
  /** Delivers to every unexpired subscription of the notification's (event_type, data_type); 410 deletes it. */
  publish(notification: OuraNotificationInput, options?: SendOptions): Promise<Delivery[]>
  emit(notifications: readonly OuraNotificationInput[], options?: EmitOptions): Promise<Delivery[]>

  /** Requests per route, e.g. `POST /oauth/token`, `GET /v2/usercollection/sleep/{document_id}`; no key: all. */
  requestCount(route?: string): number
  requestCounts(): Record<string, number>
  /** Responses per status code. */
  statusCounts(): Record<string, number>
  resetRequestCounts(): void
  close(): Promise<void>
}

/** Path segment under /v2/usercollection/ → webhook data_type. VO2 max is the one spelled differently. */
const PATH_TYPES: Readonly<Record<string, OuraDataType>> = {
  sleep: 'sleep',
  daily_sleep: 'daily_sleep',
  daily_readiness: 'daily_readiness',
  daily_activity: 'daily_activity',
  daily_spo2: 'daily_spo2',
  vO2_max: 'vo2_max'
}
const TYPE_PATHS: Readonly<Record<OuraDataType, string>> = {
  sleep: 'sleep',
  daily_sleep: 'daily_sleep',
  daily_readiness: 'daily_readiness',
  daily_activity: 'daily_activity',
  daily_spo2: 'daily_spo2',
  vo2_max: 'vO2_max'
}
const DATA_TYPES = Object.keys(TYPE_PATHS) as OuraDataType[]

/** The scope each collection needs (unconfirmed per route; these follow the scope descriptions). */
const REQUIRED_SCOPE: Readonly<Record<string, string>> = {
  sleep: 'daily',
  daily_sleep: 'daily',
  daily_readiness: 'daily',
  daily_activity: 'daily',
  daily_spo2: 'spo2Daily',
  vO2_max: 'daily',
  heartrate: 'heartrate',
  workout: 'workout',
  session: 'session',
  tag: 'tag',
  enhanced_tag: 'tag',
  sleep_time: 'daily',
  rest_mode_period: 'daily',
  ring_configuration: 'daily',
  daily_stress: 'daily',
  daily_resilience: 'daily',
  daily_cardiovascular_age: 'daily',
  interbeat_interval: 'heartrate',
  ring_battery_level: 'daily'
}

/** `ExtApiV2DataType` (spec 1.29): what a subscription may name. */
const WEBHOOK_DATA_TYPES = new Set([
  'tag', 'enhanced_tag', 'workout', 'session', 'sleep', 'daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2',
  'sleep_time', 'rest_mode_period', 'ring_configuration', 'daily_stress', 'daily_cycle_phases', 'activation_status',
  'daily_cardiovascular_age', 'daily_resilience', 'vo2_max', 'period_start', 'pregnancy', 'fertile_window',
  'ovulation_confirmed', 'blood_glucose'
])
const EVENT_TYPES = new Set<string>(['create', 'update', 'delete'])

const MAX_BODY_BYTES = 1_000_000
const DAY_SECONDS = 86_400

interface StoredSubscription {
  id: string
  callbackUrl: string
  eventType: OuraEventType
  dataType: string
  verificationToken: string
  expiresAtMs: number
}

/** RFC 7807-style error body (reference §1.7). */
const problem = (status: number, title: string, detail: string): HttpError => new HttpError(status, { status, title, detail })

/** FastAPI's validation error shape (422). */
const invalid = (field: string, message: string): HttpError =>
  new HttpError(422, { detail: [{ loc: ['body', field], msg: message, type: 'value_error' }] })

interface Context {
  request: IncomingMessage
  url: URL
  params: string[]
}

interface Route {
  method: string
  pattern: RegExp
  /** Request-count key; `$1` stands for the first captured segment. */
  key: string
  group: RouteGroup | undefined
  handle: (context: Context) => Reply | Promise<Reply>
}

const readRequestBody = (request: IncomingMessage): Promise<string> =>
  readBody(request, MAX_BODY_BYTES, () => problem(413, 'Payload Too Large', 'request body too large'))

const sleepFor = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  const timer = setTimeout(done, ms)
  function done(): void {
    clearTimeout(timer)
    signal.removeEventListener('abort', done)
    resolve()
  }
  signal.addEventListener('abort', done, { once: true })
})

/** undefined for malformed percent-encoding, which then matches no route. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

async function inBatches<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker))
  return results
}

export async function startOuraSimulator(options: OuraSimulatorOptions = {}): Promise<OuraSimulator> {
  const clientId = options.clientId ?? 'oura-sim-client'
  const clientSecret = options.clientSecret ?? 'oura-sim-client-secret'
  const seed = options.seed ?? 1
  const now = options.now ?? Date.now
  const pageSize = options.pageSize ?? 50
  const heartRatePageSize = options.heartRatePageSize ?? 1000
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000
  let subscriptionLifetimeSeconds = options.subscriptionLifetimeSeconds ?? 30 * DAY_SECONDS
  if (!(pageSize >= 1 && heartRatePageSize >= 1)) throw new RangeError('page sizes must be at least 1')

  const store = createDocumentStore(options.rangeSemantics ?? 'oura')
  const oauth = createOAuthServer({
    clientId,
    clientSecret,
    now,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? DAY_SECONDS,
    authorizationCodeTtlSeconds: options.authorizationCodeTtlSeconds ?? 600,
    ...(options.onTokensIssued === undefined ? {} : { onTokensIssued: options.onTokensIssued })
  })
  const faults = createFaults(seed ^ 0x5eed)
  /** In creation order; the first is the default consenting user. */
  const users = new Map<string, OuraDataset>()
  const subscriptions = new Map<string, StoredSubscription>()
  const routeCounts = new Map<string, number>()
  const statusCounts = new Map<string, number>()
  let consent: ConsentSettings | undefined
  const closing = new AbortController()
  // Activity documents carry 1,440 MET values; benchmarks fetch the same documents many times over.
  const jsonCache = new WeakMap<object, string>()
  const serialized = (document: object): string => {
    let text = jsonCache.get(document)
    if (text === undefined) {
      text = JSON.stringify(document)
      jsonCache.set(document, text)
    }
    return text
  }

  const userOf = (userId: string): OuraDataset => {
    const user = users.get(userId)
    if (user === undefined) throw new RangeError(`no simulated Oura user ${userId}`)
    return user
  }
  const publicSubscription = (s: StoredSubscription): OuraSubscription => ({
    id: s.id,
    callback_url: s.callbackUrl,
    event_type: s.eventType,
    data_type: s.dataType,
    expiration_time: new Date(s.expiresAtMs).toISOString()
  })

  // ---- OAuth ----

  const authorize = (context: Context): Reply => {
    const query = context.url.searchParams
    if (query.get('client_id') !== clientId) throw problem(400, 'Bad Request', 'unknown client_id')
    const redirectUri = query.get('redirect_uri')
    let redirect: URL
    try {
      redirect = new URL(redirectUri ?? '')
    } catch {
      throw problem(400, 'Bad Request', 'redirect_uri must be an absolute URL')
    }
    if (options.redirectUris !== undefined && !options.redirectUris.includes(redirectUri ?? '')) {
      throw problem(400, 'Bad Request', 'redirect_uri is not registered for this application')
    }
    const state = query.get('state')
    const back = (params: Record<string, string>): Reply => {
      for (const [name, value] of Object.entries(params)) redirect.searchParams.set(name, value)
      if (state !== null) redirect.searchParams.set('state', state)
      return { status: 302, headers: { location: redirect.toString() } }
    }
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' })
    if (consent?.deny === true) return back({ error: 'access_denied' })
    const userId = query.get('sim_user_id') ?? consent?.userId ?? users.keys().next().value
    if (userId === undefined || !users.has(userId)) {
      throw problem(400, 'Bad Request', 'no simulated user to log in')
    }
    const requested = (query.get('scope') ?? OURA_SCOPES.join(' ')).split(' ').filter((s) => s !== '')
    const withheld = new Set(consent?.withhold ?? [])
    const granted = requested.filter((scope) => !withheld.has(scope))
    const code = oauth.issueCode(userId, granted, redirectUri ?? undefined)
    return back({ code, scope: granted.join(' ') })
  }

  const token = async (context: Context): Promise<Reply> => {
    const type = context.request.headers['content-type'] ?? ''
    const body = await readRequestBody(context.request)
    if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return { status: 400, body: { error: 'invalid_request' } }
    }
    const result = oauth.token(new URLSearchParams(body))
    if (!result.ok) return { status: result.status, body: { error: result.error } }
    return { status: 200, body: result.tokens, headers: { 'cache-control': 'no-store' } }
  }

  const revoke = async (context: Context): Promise<Reply> => {
    const body = await readRequestBody(context.request)
    const form = new URLSearchParams(body)
    const presented = context.url.searchParams.get('access_token') ?? form.get('access_token') ?? form.get('token')
    if (presented === null) return { status: 400, body: { error: 'invalid_request' } }
    // RFC 7009: an unknown token is not an error.
    oauth.revoke(presented)
    return { status: 200, body: {} }
  }

  // ---- Data API ----

  const authenticate = (context: Context, scope: string): { userId: string, scopes: ReadonlySet<string> } => {
    const header = context.request.headers.authorization ?? ''
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (match === null) throw problem(401, 'Unauthorized', 'Missing or malformed bearer token')
    const access = oauth.checkAccess(match[1] ?? '')
    if (!access.ok) {
      throw problem(401, 'Unauthorized', access.reason === 'expired' ? 'Access token has expired' : 'Invalid access token')
    }
    if (!access.scopes.has(scope)) throw problem(403, 'Forbidden', `The token lacks the ${scope} scope`)
    return access
  }

  const personalInfo = (context: Context): Reply => {
    const access = authenticate(context, 'personal')
    const info = userOf(access.userId).personalInfo
    return { status: 200, body: { ...info, email: access.scopes.has('email') ? info.email : null } }
  }

  const queryValue = (context: Context, name: string): string | undefined => {
    const value = context.url.searchParams.get(name)
    return value === null || value === '' ? undefined : value
  }

  const asQueryError = <T>(work: () => T): T => {
    try {
      return work()
    } catch (error) {
      if (error instanceof QueryError) throw problem(400, 'Bad Request', error.message)
      throw error
    }
  }

  const collection = (context: Context): Reply => {
    const segment = context.params[0] ?? ''
    const access = authenticate(context, REQUIRED_SCOPE[segment] ?? 'daily')
    const dataType = PATH_TYPES[segment]
    if (dataType === undefined) return { status: 200, body: { data: [], next_token: null } }
    const page = asQueryError(() => store.queryDocuments(access.userId, dataType, {
      startDate: queryValue(context, 'start_date'),
      endDate: queryValue(context, 'end_date'),
      nextToken: queryValue(context, 'next_token')
    }, pageSize, now()))
    return { status: 200, body: page }
  }

  const singleDocument = (context: Context): Reply => {
    const segment = context.params[0] ?? ''
    const id = context.params[1] ?? ''
    const access = authenticate(context, REQUIRED_SCOPE[segment] ?? 'daily')
    const dataType = PATH_TYPES[segment]
    const found = dataType === undefined ? undefined : store.get(dataType, id)
    // Another user's document is as absent as a deleted one.
    if (found === undefined || found.userId !== access.userId) throw problem(404, 'Not Found', 'Document not found')
    return { status: 200, json: serialized(found.document) }
  }

  const heartRate = (context: Context): Reply => {
    const access = authenticate(context, 'heartrate')
    const page = asQueryError(() => store.queryHeartRate(access.userId, {
      startDatetime: queryValue(context, 'start_datetime'),
      endDatetime: queryValue(context, 'end_datetime'),
      nextToken: queryValue(context, 'next_token')
    }, heartRatePageSize, now()))
    return { status: 200, body: page }
  }

  // ---- Webhook subscriptions ----

  const authenticateApp = (context: Context): void => {
    const id = context.request.headers['x-client-id']
    const secret = context.request.headers['x-client-secret']
    if (id !== clientId || secret !== clientSecret) {
      throw problem(401, 'Unauthorized', 'x-client-id and x-client-secret must name this application')
    }
  }

  const readJson = async (context: Context): Promise<Record<string, unknown>> => {
    const text = await readRequestBody(context.request)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new HttpError(422, { detail: [{ loc: ['body'], msg: 'body must be JSON', type: 'value_error.jsondecode' }] })
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'body must be an object')
    return body as Record<string, unknown>
  }

  const subscriptionOf = (context: Context): StoredSubscription => {
    const found = subscriptions.get(context.params[0] ?? '')
    if (found === undefined) throw problem(403, 'Forbidden', 'Webhook with specified id does not exist')
    return found
  }

  const checkCallbackUrl = (value: unknown): string => {
    if (typeof value !== 'string') throw invalid('callback_url', 'field required')
    try {
      const url = new URL(value)
      if (url.protocol === 'http:' || url.protocol === 'https:') return value
    } catch {
      // Reported below.
    }
    throw invalid('callback_url', 'invalid or missing URL scheme')
  }
  const checkEventType = (value: unknown): OuraEventType => {
    if (typeof value !== 'string' || !EVENT_TYPES.has(value)) throw invalid('event_type', 'must be create, update or delete')
    return value as OuraEventType
  }
  const checkDataType = (value: unknown): string => {
    if (typeof value !== 'string' || !WEBHOOK_DATA_TYPES.has(value)) throw invalid('data_type', 'not a valid data type')
    return value
  }
  const handshake = async (callbackUrl: string, verificationToken: string): Promise<void> => {
    const result = await verifyCallback(callbackUrl, verificationToken, handshakeTimeoutMs)
    if (!result.ok) throw problem(400, 'Bad Request', `Webhook verification failed: ${result.reason}`)
  }

  const createSubscription = async (context: Context): Promise<Reply> => {
    authenticateApp(context)
    const body = await readJson(context)
    const callbackUrl = checkCallbackUrl(body.callback_url)
    if (typeof body.verification_token !== 'string' || body.verification_token === '') {
      throw invalid('verification_token', 'field required')
    }
    const verificationToken = body.verification_token
    const eventType = checkEventType(body.event_type)
    const dataType = checkDataType(body.data_type)
    await handshake(callbackUrl, verificationToken)
    const subscription: StoredSubscription = {
      id: randomUUID(), callbackUrl, eventType, dataType, verificationToken,
      expiresAtMs: now() + subscriptionLifetimeSeconds * 1000
    }
    subscriptions.set(subscription.id, subscription)
    return { status: 201, body: publicSubscription(subscription) }
  }

  const updateSubscription = async (context: Context): Promise<Reply> => {
    authenticateApp(context)
    const existing = subscriptionOf(context)
    const body = await readJson(context)
    if (typeof body.verification_token !== 'string' || body.verification_token === '') {
      throw invalid('verification_token', 'field required')
    }
    const verificationToken = body.verification_token
    const callbackUrl = body.callback_url == null ? existing.callbackUrl : checkCallbackUrl(body.callback_url)
    const eventType = body.event_type == null ? existing.eventType : checkEventType(body.event_type)
    const dataType = body.data_type == null ? existing.dataType : checkDataType(body.data_type)
    await handshake(callbackUrl, verificationToken)
    Object.assign(existing, { callbackUrl, eventType, dataType, verificationToken })
    return { status: 200, body: publicSubscription(existing) }
  }

  const routes: Route[] = [
    { method: 'GET', pattern: /^\/oauth\/authorize$/, key: 'GET /oauth/authorize', group: undefined, handle: authorize },
    { method: 'POST', pattern: /^\/oauth\/token$/, key: 'POST /oauth/token', group: 'oauth', handle: token },
    { method: 'POST', pattern: /^\/oauth\/revoke$/, key: 'POST /oauth/revoke', group: 'oauth', handle: revoke },
    {
      method: 'GET', pattern: /^\/v2\/usercollection\/personal_info$/,
      key: 'GET /v2/usercollection/personal_info', group: 'data', handle: personalInfo
    },
    {
      method: 'GET', pattern: /^\/v2\/usercollection\/heartrate$/,
      key: 'GET /v2/usercollection/heartrate', group: 'data', handle: heartRate
    },
    {
      method: 'GET', pattern: /^\/v2\/usercollection\/([A-Za-z0-9_]+)$/,
      key: 'GET /v2/usercollection/$1', group: 'data', handle: collection
    },
    {
      method: 'GET', pattern: /^\/v2\/usercollection\/([A-Za-z0-9_]+)\/([^/]+)$/,
      key: 'GET /v2/usercollection/$1/{document_id}', group: 'data', handle: singleDocument
    },
    {
      method: 'GET', pattern: /^\/v2\/webhook\/subscription$/, key: 'GET /v2/webhook/subscription', group: 'subscriptions',
      handle: (context) => {
        authenticateApp(context)
        return { status: 200, body: [...subscriptions.values()].map(publicSubscription) }
      }
    },
    {
      method: 'POST', pattern: /^\/v2\/webhook\/subscription$/, key: 'POST /v2/webhook/subscription', group: 'subscriptions',
      handle: createSubscription
    },
    {
      method: 'PUT', pattern: /^\/v2\/webhook\/subscription\/renew\/([^/]+)$/, key: 'PUT /v2/webhook/subscription/renew/{id}',
      group: 'subscriptions',
      handle: (context) => {
        authenticateApp(context)
        const subscription = subscriptionOf(context)
        subscription.expiresAtMs = now() + subscriptionLifetimeSeconds * 1000
        return { status: 200, body: publicSubscription(subscription) }
      }
    },
    {
      method: 'GET', pattern: /^\/v2\/webhook\/subscription\/([^/]+)$/, key: 'GET /v2/webhook/subscription/{id}',
      group: 'subscriptions',
      handle: (context) => {
        authenticateApp(context)
        return { status: 200, body: publicSubscription(subscriptionOf(context)) }
      }
    },
    {
      method: 'PUT', pattern: /^\/v2\/webhook\/subscription\/([^/]+)$/, key: 'PUT /v2/webhook/subscription/{id}',
      group: 'subscriptions', handle: updateSubscription
    },
    {
      method: 'DELETE', pattern: /^\/v2\/webhook\/subscription\/([^/]+)$/, key: 'DELETE /v2/webhook/subscription/{id}',
      group: 'subscriptions',
      handle: (context) => {
        authenticateApp(context)
        subscriptions.delete(subscriptionOf(context).id)
        return { status: 204 }
      }
    }
  ]

  const bump = (map: Map<string, number>, key: string): void => { map.set(key, (map.get(key) ?? 0) + 1) }

  const dispatch = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://oura.simulator')
    let matched: { route: Route, params: string[] } | undefined
    for (const route of routes) {
      if (route.method !== request.method) continue
      const match = route.pattern.exec(url.pathname)
      if (match !== null) {
        const params = match.slice(1).map(decodeSegment)
        if (params.every((p): p is string => p !== undefined)) matched = { route, params }
        break
      }
    }
    let reply: Reply
    if (matched === undefined) {
      bump(routeCounts, `${request.method ?? 'GET'} (unmatched)`)
      reply = { status: 404, body: { detail: 'Not Found' } }
    } else {
      const { route, params } = matched
      bump(routeCounts, route.key.replace('$1', params[0] ?? ''))
      try {
        const decision = route.group === undefined ? undefined : faults.decide(route.group, now())
        if (decision !== undefined && decision.delayMs > 0) await sleepFor(decision.delayMs, closing.signal)
        if (closing.signal.aborted) return
        if (decision?.reject !== undefined) {
          const { status, retryAfterSeconds, detail } = decision.reject
          reply = {
            status,
            body: { status, title: status === 429 ? 'Too Many Requests' : 'Server Error', detail },
            ...(retryAfterSeconds === null ? {} : { headers: { 'retry-after': String(retryAfterSeconds) } })
          }
        } else {
          reply = await route.handle({ request, url, params })
        }
      } catch (error) {
        if (!(error instanceof HttpError)) throw error
        reply = { status: error.status, body: error.body }
      }
    }
    bump(statusCounts, String(reply.status))
    // Drain what the handler did not read, so keep-alive connections stay usable.
    if (!request.readableEnded) request.resume()
    send(response, reply)
  }

  const server = createServer((request, response) => {
    dispatch(request, response).catch((error: unknown) => {
      bump(statusCounts, '500')
      send(response, { status: 500, body: { status: 500, title: 'Server Error', detail: (error as Error).message } })
    })
  })
  const baseUrl = await listen(server, options.port, options.host)

  const addUser = (userOptions: SimulatedUserOptions = {}): OuraDataset => {
    const dataset = generateOuraData({
      seed: userOptions.seed ?? ((seed * 7919 + users.size * 104_729) >>> 0),
      days: userOptions.days ?? 7,
      nowMs: userOptions.nowMs ?? now(),
      ...(userOptions.offsetMinutes === undefined ? {} : { offsetMinutes: userOptions.offsetMinutes }),
      ...(userOptions.userId === undefined ? {} : { userId: userOptions.userId }),
      ...(userOptions.email === undefined ? {} : { email: userOptions.email })
    })
    store.addUser(dataset)
    users.set(dataset.userId, dataset)
    return dataset
  }
  for (const user of options.users ?? []) addUser(user)

  const notification = (eventType: OuraEventType, dataType: OuraDataType, objectId: string, userId: string): OuraNotificationInput =>
    ({ event_type: eventType, data_type: dataType, object_id: objectId, user_id: userId })

  const sendNotification = (input: OuraNotificationInput, sendOptions: SendOptions & { to: string }): Promise<Delivery> => {
    const body = toNotification(input, now())
    return postNotification(
      sendOptions.to,
      () => signNotification(body, sendOptions.secret ?? clientSecret, now(), sendOptions),
      { timeoutMs: sendOptions.timeoutMs ?? DELIVERY_TIMEOUT_MS, ...sendOptions }
    )
  }

  const publish = async (input: OuraNotificationInput, sendOptions: SendOptions = {}): Promise<Delivery[]> => {
    const targets = [...subscriptions.values()].filter((s) =>
      s.eventType === input.event_type && s.dataType === input.data_type && s.expiresAtMs > now())
    return Promise.all(targets.map(async (subscription) => {
      const delivery = await sendNotification(input, { ...sendOptions, to: subscription.callbackUrl })
      if (delivery.status === 410) subscriptions.delete(subscription.id)
      return delivery
    }))
  }

  const simulator: OuraSimulator = {
    baseUrl,
    authorizeUrl: `${baseUrl}/oauth/authorize`,
    clientId,
    clientSecret,
    faults,

    addUser,
    userIds: () => [...users.keys()],
    personalInfo: (userId) => ({ ...userOf(userId).personalInfo }),
    setConsent(value) { consent = value === undefined ? undefined : { ...value } },
    issueCode: (userId, scopes = OURA_SCOPES, redirectUri) => {
      userOf(userId)
      return oauth.issueCode(userId, scopes, redirectUri)
    },
    issueTokens: (userId, scopes = OURA_SCOPES) => {
      userOf(userId)
      return oauth.issueTokens(userId, scopes)
    },
    tokenStats: (userId) => oauth.stats(userId),
    expireAccessTokens: () => { oauth.expireAccessTokens() },

    documents: (userId, dataType) => structuredClone(store.all(userId, dataType)),
    document: (dataType, id) => {
      const found = store.get(dataType, id)
      return found === undefined ? undefined : structuredClone(found.document)
    },
    heartRate: (userId) => structuredClone(store.heartRate(userId)),
    addDocument(userId, dataType, document) {
      userOf(userId)
      store.add(userId, dataType, structuredClone(document))
      return notification('create', dataType, document.id, userId)
    },
    updateDocument(dataType, id, patch) {
      const found = store.get(dataType, id)
      if (found === undefined) throw new RangeError(`no ${dataType} document ${id}`)
      const { document } = found
      jsonCache.delete(document)
      // A revision is always newer than the last one, even when the clock has not moved past it.
      const previousMs = Date.parse(document.meta.updated_at)
      const updatedMs = Math.max(now(), previousMs + 1000)
      Object.assign(document, patch ?? {}, {
        id,
        meta: { updated_at: new Date(Math.floor(updatedMs / 1000) * 1000).toISOString(), version: document.meta.version + 1 }
      })
      return { document: structuredClone(document), notification: notification('update', dataType, id, found.userId) }
    },
    deleteDocument(dataType, id) {
      const removed = store.remove(dataType, id)
      return removed === undefined ? undefined : notification('delete', dataType, id, removed.userId)
    },
    notificationsFor(userId, eventType = 'create', dataTypes = DATA_TYPES) {
      userOf(userId)
      return dataTypes.flatMap((dataType) =>
        store.all(userId, dataType).map((document: OuraDocument) => notification(eventType, dataType, document.id, userId)))
    },

    subscriptions: () => [...subscriptions.values()].map(publicSubscription),
    setSubscriptionLifetime(seconds) {
      if (!(seconds > 0)) throw new RangeError('seconds must be positive')
      subscriptionLifetimeSeconds = seconds
    },
    setSubscriptionExpiration(id, expiresAtMs) {
      const subscription = subscriptions.get(id)
      if (subscription === undefined) throw new RangeError(`no subscription ${id}`)
      subscription.expiresAtMs = expiresAtMs
    },

    sendNotification,
    publish,
    async emit(notifications, emitOptions = {}) {
      const { to, concurrency = 8, ...sendOptions } = emitOptions
      const batches = await inBatches(notifications, concurrency, async (input) =>
        to === undefined ? publish(input, sendOptions) : [await sendNotification(input, { ...sendOptions, to })])
      return batches.flat()
    },

    requestCount: (route) => route === undefined
      ? [...routeCounts.values()].reduce((sum, n) => sum + n, 0)
      : routeCounts.get(route) ?? 0,
    requestCounts: () => Object.fromEntries(routeCounts),
    statusCounts: () => Object.fromEntries(statusCounts),
    resetRequestCounts() {
      routeCounts.clear()
      statusCounts.clear()
    },
    async close() {
      closing.abort()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
  return simulator
}
