import type { EventDraft } from '../../domain/build-event.ts'
import type { Rejection } from '../../domain/validation.ts'
import { parseInstant } from '../../domain/validation.ts'
import { deviceTypeOf } from './device.ts'
import { QUANTITY_TYPES, SLEEP_ANALYSIS, SLEEP_STAGES, shortTypeName } from './types.ts'
import { asObject } from '../json-object.ts'

/** What one sample of an upload turned into. */
export type SampleOutcome =
  | { kind: 'drafts', drafts: EventDraft[] }
  | { kind: 'rejected', rejection: Rejection }
  /** Valid input that maps to no catalog metric (e.g. an in-bed span). */
  | { kind: 'ignored' }

const UUID_PATTERN = /^[A-Za-z0-9-]{1,128}$/

const malformed = (message: string): SampleOutcome =>
  ({ kind: 'rejected', rejection: { code: 'BB_SAMPLE_MALFORMED', message } })

/**
 * Maps one sample of the native batch format (design §5) to event drafts. Units and bounds are checked later
 * by buildEvent; this function only understands the shape and the HealthKit type.
 */
export function normalizeNativeSample(input: unknown): SampleOutcome {
  const sample = asObject(input)
  if (sample === undefined) return malformed('sample must be an object')
  const { uuid, type, start, end, value, unit } = sample
  if (typeof uuid !== 'string' || !UUID_PATTERN.test(uuid)) return malformed('uuid must be a HealthKit UUID string')
  if (typeof type !== 'string') return malformed('type must be a HealthKit type identifier')
  if (parseInstant(start) === undefined || parseInstant(end) === undefined) {
    return { kind: 'rejected', rejection: { code: 'BB_SAMPLE_BAD_TIME', message: 'start and end must be ISO-8601 timestamps with a zone' } }
  }
  if (typeof value !== 'number') return malformed('value must be a number')
  if (unit !== undefined && unit !== null && typeof unit !== 'string') return malformed('unit must be a string')
  const updatedAt = sample.updated_at
  if (updatedAt !== undefined && updatedAt !== null && parseInstant(updatedAt) === undefined) {
    return { kind: 'rejected', rejection: { code: 'BB_SAMPLE_BAD_TIME', message: 'updated_at must be an ISO-8601 timestamp with a zone' } }
  }

  const source = asObject(sample.source)
  const device = asObject(sample.device)
  const base = {
    start: start as string,
    end: end as string,
    sourceRecordId: uuid,
    sourceUpdatedAt: (updatedAt as string | null | undefined) ?? null,
    deviceType: deviceTypeOf(device?.model, source?.product_type, device?.name, source?.name)
  }

  const shortType = shortTypeName(type)
  if (shortType === SLEEP_ANALYSIS) {
    if (!Number.isInteger(value) || !Object.hasOwn(SLEEP_STAGES, value)) {
      return { kind: 'rejected', rejection: { code: 'BB_SAMPLE_OUT_OF_RANGE', message: 'sleep analysis value must be 0–5' } }
    }
    const metric = SLEEP_STAGES[value]
    if (metric == null) return { kind: 'ignored' }
    // A stage span becomes its duration in minutes; the span itself stays the event's start and end.
    const minutes = ((parseInstant(end) ?? 0) - (parseInstant(start) ?? 0)) / 60_000
    return { kind: 'drafts', drafts: [{ ...base, metric, value: minutes, unit: 'min', context: 'sleep' }] }
  }
  const metric = Object.hasOwn(QUANTITY_TYPES, shortType) ? QUANTITY_TYPES[shortType] : undefined
  if (metric === undefined) {
    return { kind: 'rejected', rejection: { code: 'BB_SAMPLE_UNKNOWN_TYPE', message: `type ${type.slice(0, 80)} is not supported` } }
  }
  return {
    kind: 'drafts',
    drafts: [{ ...base, metric, value, unit: typeof unit === 'string' ? unit : undefined, context: null }]
  }
}

export interface Deletion {
  uuid: string
}

export function parseDeletion(input: unknown): Deletion | Rejection {
  const entry = asObject(input)
  const uuid = entry?.uuid
  if (typeof uuid !== 'string' || !UUID_PATTERN.test(uuid)) {
    return { code: 'BB_SAMPLE_MALFORMED', message: 'deleted entries need a HealthKit uuid' }
  }
  return { uuid }
}
