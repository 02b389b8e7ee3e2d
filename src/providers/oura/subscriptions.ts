import type { Config } from '../../config/load.ts'
import { BridgeError } from '../../errors.ts'
import { asObject } from '../json-object.ts'
import { OURA_DATA_TYPES, type OuraDataType } from './documents.ts'
import { OURA_EVENT_TYPES, type OuraEventType } from './notification.ts'

/**
 * Oura's webhook subscriptions (reference §1.2). They are app-level, so one covers every connected user, and each
 * names one (event_type, data_type) pair: the bridge needs OURA_EVENT_TYPES × OURA_DATA_TYPES of them for its
 * callback URL. A subscription is "ours" when its callback_url is exactly this bridge's; subscriptions of other
 * URLs (another deployment, a former PUBLIC_BASE_URL) are listed but never changed by sync, renew or delete-all.
 */

type OuraConfig = NonNullable<Config['oura']>

export interface OuraSubscription {
  id: string
  callbackUrl: string
  /** As Oura reports them: others' subscriptions may name types the bridge does not map. */
  eventType: string
  dataType: string
  /** Epoch ms. */
  expiresAtMs: number
}

export interface SubscriptionPair {
  eventType: OuraEventType
  dataType: OuraDataType
}

export interface SubscriptionPlan {
  /** Pairs the callback has no subscription for. */
  create: SubscriptionPair[]
  /** Ours, expired or expiring within the renewal window. */
  renew: OuraSubscription[]
  /** Ours, with more time left than the window. */
  keep: OuraSubscription[]
}

export interface RequestOptions {
  /** Upper bound of each call to Oura; a create includes Oura's handshake against the callback. */
  timeoutMs: number
}

export interface RenewOptions extends RequestOptions {
  nowMs: number
  /** Renew what expires within this many ms of `nowMs`; default DEFAULT_RENEW_BEFORE_MS. */
  renewBeforeMs?: number
}

export interface SyncSummary {
  created: OuraSubscription[]
  renewed: OuraSubscription[]
  kept: OuraSubscription[]
}

/** The lifetime Oura grants is unconfirmed (reference §1.2); a week ahead survives a missed daily renewal run. */
export const DEFAULT_RENEW_BEFORE_MS = 7 * 86_400_000

const BASE_PATH = '/v2/webhook/subscription'

/** Where Oura delivers to and runs its GET handshake against (src/http/routes/webhooks.ts). */
export function ouraCallbackUrl(publicBaseUrl: string): string {
  return `${publicBaseUrl}/webhooks/oura`
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** One call with the app credentials (no user token); any failure is BB_PROVIDER_REQUEST_FAILED naming the route. */
async function callOura(oura: OuraConfig, method: string, path: string, options: RequestOptions, body?: unknown): Promise<unknown> {
  const route = `${method} ${BASE_PATH}${path}`
  let status: number
  let text: string
  const send = (): Promise<Response> => fetch(`${oura.apiUrl}${BASE_PATH}${path}`, {
    method,
    headers: {
      'x-client-id': oura.clientId,
      'x-client-secret': oura.clientSecrets[0]!,
      ...(body === undefined ? {} : { 'content-type': 'application/json' })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(options.timeoutMs)
  })
  try {
    let response: Response
    try {
      response = await send()
    } catch (error) {
      // A pooled keep-alive connection the server closed while idle fails at once (ECONNRESET); everything but a
      // create is idempotent, so one more try on a fresh connection is safe. A timeout is not retried.
      if (method === 'POST' || (error as Error).name === 'TimeoutError') throw error
      response = await send()
    }
    status = response.status
    text = await response.text()
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError' ? `did not answer within ${options.timeoutMs} ms` : 'could not be reached'
    throw new BridgeError('BB_PROVIDER_REQUEST_FAILED', `Oura ${reason}: ${route}`, { cause: error })
  }
  const parsed = parseJson(text)
  if (status < 200 || status > 299) {
    // Oura's problem bodies carry a human-readable `detail`, e.g. why the handshake failed.
    const detail = asObject(parsed)?.detail
    throw new BridgeError('BB_PROVIDER_REQUEST_FAILED', `Oura answered ${status} to ${route}${typeof detail === 'string' ? `: ${detail}` : ''}`)
  }
  return parsed
}

function toSubscription(value: unknown, route: string): OuraSubscription {
  const record = asObject(value)
  const expiresAtMs = typeof record?.expiration_time === 'string' ? Date.parse(record.expiration_time) : Number.NaN
  if (record === undefined || typeof record.id !== 'string' || typeof record.callback_url !== 'string' ||
    typeof record.event_type !== 'string' || typeof record.data_type !== 'string' || !Number.isFinite(expiresAtMs)) {
    throw new BridgeError('BB_PROVIDER_REQUEST_FAILED', `Oura answered ${route} with something other than a subscription`)
  }
  return { id: record.id, callbackUrl: record.callback_url, eventType: record.event_type, dataType: record.data_type, expiresAtMs }
}

export async function listSubscriptions(oura: OuraConfig, options: RequestOptions): Promise<OuraSubscription[]> {
  const body = await callOura(oura, 'GET', '', options)
  if (!Array.isArray(body)) throw new BridgeError('BB_PROVIDER_REQUEST_FAILED', `Oura answered GET ${BASE_PATH} with something other than a list`)
  return body.map((item) => toSubscription(item, `GET ${BASE_PATH}`))
}

/** Oura answers only after its GET handshake against `callbackUrl` succeeded, so the bridge must be up there. */
export async function createSubscription(
  oura: OuraConfig, subscription: SubscriptionPair & { callbackUrl: string }, options: RequestOptions
): Promise<OuraSubscription> {
  const body = await callOura(oura, 'POST', '', options, {
    callback_url: subscription.callbackUrl,
    verification_token: oura.webhookVerificationToken,
    event_type: subscription.eventType,
    data_type: subscription.dataType
  })
  return toSubscription(body, `POST ${BASE_PATH}`)
}

export async function renewSubscription(oura: OuraConfig, id: string, options: RequestOptions): Promise<OuraSubscription> {
  const path = `/renew/${encodeURIComponent(id)}`
  return toSubscription(await callOura(oura, 'PUT', path, options), `PUT ${BASE_PATH}${path}`)
}

/** Any id, ours or not: removing a former callback's subscriptions is an explicit operator decision. */
export async function deleteSubscription(oura: OuraConfig, id: string, options: RequestOptions): Promise<void> {
  await callOura(oura, 'DELETE', `/${encodeURIComponent(id)}`, options)
}

/** What sync has to do, from the current list alone. Ours of types the bridge does not map are renewed all the same. */
export function planSubscriptions(
  existing: readonly OuraSubscription[], callbackUrl: string, nowMs: number, renewBeforeMs = DEFAULT_RENEW_BEFORE_MS
): SubscriptionPlan {
  const ours = existing.filter((s) => s.callbackUrl === callbackUrl)
  const create = OURA_EVENT_TYPES.flatMap((eventType) => OURA_DATA_TYPES
    .filter((dataType) => !ours.some((s) => s.eventType === eventType && s.dataType === dataType))
    .map((dataType) => ({ eventType, dataType })))
  const renew = ours.filter((s) => s.expiresAtMs - nowMs <= renewBeforeMs)
  return { create, renew, keep: ours.filter((s) => !renew.includes(s)) }
}

// Calls run one at a time and stop at the first failure: 18 requests are no burden, and every step is idempotent
// when repeated, so a rerun finishes the job.
async function renewAll(oura: OuraConfig, subscriptions: readonly OuraSubscription[], options: RequestOptions): Promise<OuraSubscription[]> {
  const renewed: OuraSubscription[] = []
  for (const subscription of subscriptions) renewed.push(await renewSubscription(oura, subscription.id, options))
  return renewed
}

/** Renews our subscriptions expiring within the window and creates none; for a scheduled job. */
export async function renewExpiringSubscriptions(oura: OuraConfig, callbackUrl: string, options: RenewOptions): Promise<OuraSubscription[]> {
  const plan = planSubscriptions(await listSubscriptions(oura, options), callbackUrl, options.nowMs, options.renewBeforeMs)
  return renewAll(oura, plan.renew, options)
}

/** Makes the callback's subscriptions complete and current. Renews first: unlike a create, a renew needs no handshake. */
export async function syncSubscriptions(oura: OuraConfig, callbackUrl: string, options: RenewOptions): Promise<SyncSummary> {
  const plan = planSubscriptions(await listSubscriptions(oura, options), callbackUrl, options.nowMs, options.renewBeforeMs)
  const renewed = await renewAll(oura, plan.renew, options)
  const created: OuraSubscription[] = []
  for (const pair of plan.create) created.push(await createSubscription(oura, { ...pair, callbackUrl }, options))
  return { created, renewed, kept: plan.keep }
}

/** Deletes every subscription of the callback, leaving others' alone; returns what was deleted. */
export async function deleteOurSubscriptions(oura: OuraConfig, callbackUrl: string, options: RequestOptions): Promise<OuraSubscription[]> {
  const ours = (await listSubscriptions(oura, options)).filter((s) => s.callbackUrl === callbackUrl)
  for (const subscription of ours) await deleteSubscription(oura, subscription.id, options)
  return ours
}
