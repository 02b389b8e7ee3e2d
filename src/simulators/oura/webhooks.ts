import { createHmac, randomBytes } from 'node:crypto'
import { formatInstant } from '../../domain/time.ts'

/**
 * Oura's side of webhooks: the verification handshake it runs against a callback URL on subscription create and
 * update, and signed notification delivery (reference §1.3, §1.4).
 */

export type OuraEventType = 'create' | 'update' | 'delete'

export interface OuraNotificationInput {
  event_type: OuraEventType
  /** Webhook spelling (`vo2_max`, not the path's `vO2_max`). */
  data_type: string
  object_id: string
  user_id: string
  /** ISO-8601 with offset; default: now in UTC. */
  event_time?: string
}

/** The body Oura posts, in Oura's field order. */
export interface OuraNotification {
  event_type: OuraEventType
  data_type: string
  object_id: string
  event_time: string
  user_id: string
}

/**
 * `valid`: what Oura sends. The rest break it the ways a receiver must refuse (or, for `lowercase`, accept):
 * signed with another secret, cut short, lower-case hex of the right HMAC, header absent, not hex at all.
 */
export type SignatureMode = 'valid' | 'wrong-secret' | 'truncated' | 'lowercase' | 'missing' | 'garbage'

export interface SignOptions {
  signature?: SignatureMode
  /** Added to the current Unix time in `x-oura-timestamp`: negative makes it stale, positive from the future. */
  timestampSkewSeconds?: number
  /** Leaves out `x-oura-timestamp`. */
  omitTimestamp?: boolean
}

export interface SignedNotification {
  /** The exact bytes sent, compact JSON. */
  body: string
  headers: Record<string, string>
  timestamp: string
  signature: string | undefined
}

export interface Delivery {
  url: string
  /** HTTP status of the last attempt; 0 when no answer arrived (refused, reset, timed out). */
  status: number
  ok: boolean
  responseBody: string
  attempts: number
  /** Why the last attempt got no answer. */
  error?: string
  request: SignedNotification
}

export interface DeliveryOptions {
  /** Oura expects an answer within 10 s. */
  timeoutMs?: number
  /** Further attempts after a non-2xx answer or none; Oura retries up to 10 times over about an hour. Default 0. */
  retries?: number
  retryDelayMs?: number
  signal?: AbortSignal
}

export const DELIVERY_TIMEOUT_MS = 10_000

/** Upper-case hex HMAC-SHA256 of `timestamp` + body, keyed with the client secret. */
export function signOuraPayload(secret: string, timestamp: string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(timestamp, 'utf8').update(rawBody).digest('hex').toUpperCase()
}

export function toNotification(input: OuraNotificationInput, nowMs: number): OuraNotification {
  return {
    event_type: input.event_type,
    data_type: input.data_type,
    object_id: input.object_id,
    event_time: input.event_time ?? `${formatInstant(Math.floor(nowMs / 1000) * 1000, 0).slice(0, -1)}+00:00`,
    user_id: input.user_id
  }
}

export function signNotification(
  notification: OuraNotification, secret: string, nowMs: number, options: SignOptions = {}
): SignedNotification {
  const body = JSON.stringify(notification)
  const timestamp = String(Math.floor(nowMs / 1000) + (options.timestampSkewSeconds ?? 0))
  const mode = options.signature ?? 'valid'
  let signature: string | undefined
  switch (mode) {
    case 'valid': signature = signOuraPayload(secret, timestamp, body); break
    case 'wrong-secret': signature = signOuraPayload(`${secret}-not-the-secret`, timestamp, body); break
    case 'truncated': signature = signOuraPayload(secret, timestamp, body).slice(0, 32); break
    case 'lowercase': signature = signOuraPayload(secret, timestamp, body).toLowerCase(); break
    case 'missing': signature = undefined; break
    case 'garbage': signature = 'Z'.repeat(64); break
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.omitTimestamp !== true) headers['x-oura-timestamp'] = timestamp
  if (signature !== undefined) headers['x-oura-signature'] = signature
  return { body, headers, timestamp, signature }
}

const pause = (ms: number, signal: AbortSignal | undefined): Promise<void> => new Promise((resolve) => {
  if (signal?.aborted === true) {
    resolve()
    return
  }
  const timer = setTimeout(done, ms)
  function done(): void {
    clearTimeout(timer)
    signal?.removeEventListener('abort', done)
    resolve()
  }
  signal?.addEventListener('abort', done, { once: true })
})

/**
 * POSTs one notification. `sign` is called per attempt, so a retry carries a fresh timestamp over the same body.
 */
export async function postNotification(
  url: string, sign: () => SignedNotification, options: DeliveryOptions = {}
): Promise<Delivery> {
  const attemptsAllowed = 1 + (options.retries ?? 0)
  let delivery: Delivery | undefined
  for (let attempt = 1; attempt <= attemptsAllowed; attempt++) {
    if (attempt > 1) await pause(options.retryDelayMs ?? 1000, options.signal)
    if (options.signal?.aborted === true) break
    const request = sign()
    const timeout = AbortSignal.timeout(options.timeoutMs ?? DELIVERY_TIMEOUT_MS)
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
      })
      const responseBody = await response.text()
      delivery = { url, status: response.status, ok: response.ok, responseBody, attempts: attempt, request }
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown } }).cause
      const reason = typeof cause?.code === 'string' ? cause.code : (error as Error).message
      delivery = { url, status: 0, ok: false, responseBody: '', attempts: attempt, error: reason, request }
    }
    // 410 Gone cancels the subscription: retrying it is pointless.
    if (delivery.ok || delivery.status === 410) break
  }
  if (delivery === undefined) throw new Error('delivery aborted before the first attempt')
  return delivery
}

export type HandshakeResult = { ok: true } | { ok: false, reason: string }

/**
 * GET {callback_url}?verification_token=…&challenge=…; passes only on 200 with JSON `{"challenge": <the same>}`.
 */
export async function verifyCallback(
  callbackUrl: string, verificationToken: string, timeoutMs: number
): Promise<HandshakeResult> {
  const challenge = randomBytes(12).toString('base64url')
  const url = new URL(callbackUrl)
  url.searchParams.set('verification_token', verificationToken)
  url.searchParams.set('challenge', challenge)
  let status: number
  let text: string
  try {
    const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    status = response.status
    text = await response.text()
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause
    return { ok: false, reason: `callback_url did not answer (${typeof cause?.code === 'string' ? cause.code : (error as Error).message})` }
  }
  if (status !== 200) return { ok: false, reason: `callback_url answered ${status}` }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'callback_url did not answer JSON' }
  }
  const echoed = (body as { challenge?: unknown } | null)?.challenge
  if (echoed !== challenge) return { ok: false, reason: 'callback_url did not echo the challenge' }
  return { ok: true }
}
