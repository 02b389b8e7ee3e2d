import { BridgeError } from '../../errors.ts'
import { parseWebhookObject } from '../webhooks/body.ts'

/**
 * A v2 webhook: `type` is `<data>.<event>` with sleep, recovery and workout, each `updated` (creation too; there is
 * no `created`) or `deleted`.
 */
export interface WhoopNotification {
  /** `sleep`, `recovery`, `workout`, or a type WHOOP adds later (to be acknowledged and ignored). */
  dataType: string
  /** `updated` or `deleted`. */
  eventType: string
  /** The changed object: a sleep or workout UUID; for recovery, the UUID of its SLEEP. */
  objectId: string
  /** WHOOP's user id (int64, kept as its decimal string). */
  providerUserId: string
  /** Identifies the triggering event; redeliveries repeat it, so it is the dedup key. */
  traceId: string
}

/**
 * What a backfill or reconciliation fetches for a WHOOP user (collection names). Cycles come only this way:
 * WHOOP sends no webhook for them.
 */
export const WHOOP_RANGE_DATA_TYPES: readonly string[] = ['sleep', 'recovery', 'workout', 'cycle']

const ID = /^[A-Za-z0-9._:-]{1,128}$/
const TYPE = /^([a-z_]{1,40})\.([a-z_]{1,40})$/

/**
 * A WHOOP user id (int64) as decimal text. A JSON number loses precision past 2^53, so only safe integers or
 * decimal strings pass.
 */
export function parseWhoopUserId(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined
  return typeof value === 'string' && /^\d{1,19}$/.test(value) ? value : undefined
}

/** Parses a verified notification body; throws BB_WEBHOOK_MALFORMED (400) on any shape problem. */
export function parseWhoopNotification(rawBody: Buffer): WhoopNotification {
  const record = parseWebhookObject(rawBody)
  const type = typeof record.type === 'string' ? TYPE.exec(record.type) : null
  if (type === null) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'type must look like `sleep.updated`')
  const providerUserId = parseWhoopUserId(record.user_id)
  if (providerUserId === undefined) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'user_id must be a WHOOP user id')
  // v1 sent integer ids; v2 sends UUIDs. Both are kept as text.
  const id = typeof record.id === 'number' && Number.isSafeInteger(record.id) ? String(record.id) : record.id
  if (typeof id !== 'string' || !ID.test(id)) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'id must be a WHOOP object id')
  const traceId = record.trace_id
  if (typeof traceId !== 'string' || !ID.test(traceId)) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'trace_id is required')
  return { dataType: type[1]!, eventType: type[2]!, objectId: id, providerUserId, traceId }
}

const HANDLED_TYPES = new Set(['sleep', 'recovery', 'workout'])
const HANDLED_EVENTS = new Set(['updated', 'deleted'])

/** Whether the bridge works on this notification; anything else is acknowledged (WHOOP asks for a 2xx) and kept. */
export function isWhoopNotificationHandled(notification: WhoopNotification): boolean {
  return HANDLED_TYPES.has(notification.dataType) && HANDLED_EVENTS.has(notification.eventType)
}
