import { BridgeError } from '../../errors.ts'
import { isStorableText } from '../../domain/validation.ts'
import { parseWebhookObject } from '../webhooks/body.ts'

export const OURA_EVENT_TYPES = ['create', 'update', 'delete'] as const
export type OuraEventType = (typeof OURA_EVENT_TYPES)[number]


export interface OuraNotification {
  eventType: OuraEventType
  dataType: string
  objectId: string
  eventTime: string
  /** Oura's user id (personal_info.id), not the app's. */
  providerUserId: string
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/

function field(body: Record<string, unknown>, name: string): string {
  const value = body[name]
  // data_type and event_time have no pattern (Oura adds types), but they are stored: they must be storable text.
  if (typeof value !== 'string' || value.length === 0 || value.length > 128 || !isStorableText(value)) {
    throw new BridgeError('BB_WEBHOOK_MALFORMED', `${name} must be a non-empty string`)
  }
  return value
}

/** Parses a verified notification body; throws BB_WEBHOOK_MALFORMED (400) on any shape problem. */
export function parseOuraNotification(rawBody: Buffer): OuraNotification {
  const record = parseWebhookObject(rawBody)
  const eventType = field(record, 'event_type')
  if (!(OURA_EVENT_TYPES as readonly string[]).includes(eventType)) {
    throw new BridgeError('BB_WEBHOOK_MALFORMED', 'event_type must be create, update or delete')
  }
  const objectId = field(record, 'object_id')
  const providerUserId = field(record, 'user_id')
  if (!ID.test(objectId) || !ID.test(providerUserId)) {
    throw new BridgeError('BB_WEBHOOK_MALFORMED', 'object_id and user_id must be provider ids')
  }
  return {
    eventType: eventType as OuraEventType,
    dataType: field(record, 'data_type'),
    objectId,
    eventTime: field(record, 'event_time'),
    providerUserId
  }
}

/**
 * Oura sends no delivery id; its retries repeat the same body. A notification is identified by what changed
 * and when, so a retry is a duplicate while a later change of the same document is new work.
 */
export function ouraDedupKey(notification: OuraNotification): string {
  return [notification.eventType, notification.dataType, notification.objectId, notification.eventTime].join('|')
}
