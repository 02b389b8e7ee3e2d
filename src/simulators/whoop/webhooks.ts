import { createHmac, randomUUID } from 'node:crypto'

/** WHOOP's webhook sending side (reference §2.5). */

export type WhoopEventType =
  | 'sleep.updated' | 'sleep.deleted' | 'recovery.updated' | 'recovery.deleted' | 'workout.updated' | 'workout.deleted'

export interface WhoopEventInput {
  type: WhoopEventType
  /** Sleep or workout UUID; for recovery.* the UUID of the SLEEP, as WHOOP v2 sends it. */
  id: string
  /** int64 as a decimal string. */
  userId: string
  /** Default: a new UUID. Repeat one to simulate a redelivery. */
  traceId?: string
}

export interface WhoopWebhookDelivery {
  status: number
  /** The receiver's answer. */
  body: string
  /** The exact bytes posted. */
  requestBody: string
  headers: Record<string, string>
}

/** base64 HMAC-SHA256 of the millisecond timestamp followed by the raw body, keyed with the client secret. */
export function signWhoopWebhook(body: string, secret: string, timestampMs: number): Record<string, string> {
  const timestamp = String(timestampMs)
  return {
    'x-whoop-signature': createHmac('sha256', secret).update(timestamp + body, 'utf8').digest('base64'),
    'x-whoop-signature-timestamp': timestamp,
    'content-type': 'application/json'
  }
}

/** Compact JSON in WHOOP's field order; user_id is written from its digits so an int64 beyond 2^53 survives. */
export function whoopWebhookBody(event: WhoopEventInput): string {
  if (!/^\d{1,19}$/.test(event.userId)) throw new RangeError('userId must be a decimal int64')
  const traceId = event.traceId ?? randomUUID()
  return `{"user_id":${event.userId},"id":${JSON.stringify(event.id)},"type":${JSON.stringify(event.type)},"trace_id":${JSON.stringify(traceId)}}`
}

export async function postWhoopWebhook(
  to: string, event: WhoopEventInput, secret: string, nowMs: number, timeoutMs = 5000
): Promise<WhoopWebhookDelivery> {
  const requestBody = whoopWebhookBody(event)
  const headers = signWhoopWebhook(requestBody, secret, nowMs)
  const response = await fetch(to, { method: 'POST', headers, body: requestBody, signal: AbortSignal.timeout(timeoutMs) })
  return { status: response.status, body: await response.text(), requestBody, headers }
}
