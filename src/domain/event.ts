/**
 * Terminology
 * - sample: one measurement as a source delivers it (a HealthKit sample, an Oura document field).
 * - metric: a kind of measurement from the catalog (`hrv_rmssd`, `steps` …), with one canonical unit.
 * - event (BiometricEvent): a normalized, validated sample in the canonical unit, keyed by its storage key.
 * - storage key: (user_id, source, source_record_id, metric, context); one value per key.
 * - batch: one upload from a device (many samples, some deletions).
 * - receipt: a verified provider notification, stored before it is worked off.
 */
import { createHash } from 'node:crypto'

export const SOURCES = ['oura', 'whoop', 'healthkit'] as const
export type Source = (typeof SOURCES)[number]

export const DEVICE_TYPES = ['oura_ring', 'whoop_band', 'apple_watch', 'iphone', 'other'] as const
export type DeviceType = (typeof DEVICE_TYPES)[number]

export const CONTEXTS = ['sleep', 'rest', 'workout', 'day'] as const
export type EventContext = (typeof CONTEXTS)[number]

export type EventOp = 'upsert' | 'delete'

export const SCHEMA_VERSION = 1

/** The canonical event, as stored, queried and published (design §6). Times are ISO-8601 strings. */
export interface BiometricEvent {
  event_id: string
  schema_version: number
  user_id: string
  source: Source
  device_type: DeviceType
  metric: string
  value: number
  unit: string
  start: string
  end: string
  context: EventContext | null
  source_record_id: string
  source_updated_at: string | null
  op: EventOp
  ingested_at: string
}

export interface StorageKey {
  userId: string
  source: Source
  sourceRecordId: string
  metric: string
  context: EventContext | null
}

// RFC 4122 name-based (v5) ids make event_id a pure function of the storage key, so every node and every
// re-delivery computes the same id and consumers can deduplicate on it.
const EVENT_ID_NAMESPACE = Buffer.from('6f1c7a52c3e84c1f9a3b2d8e5f4a1b07', 'hex')

export function eventIdFor(key: StorageKey): string {
  // JSON keeps the encoding injective: a separator character inside a user or record id cannot shift a field
  // boundary, and lone surrogates are escaped instead of all collapsing to U+FFFD in UTF-8.
  const name = JSON.stringify([key.userId, key.source, key.sourceRecordId, key.metric, key.context])
  const hash = createHash('sha1').update(EVENT_ID_NAMESPACE).update(name).digest()
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}
