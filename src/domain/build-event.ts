import type { MetricName } from './catalog.ts'
import { METRICS } from './catalog.ts'
import {
  SCHEMA_VERSION, eventIdFor, type BiometricEvent, type DeviceType, type EventContext, type EventOp, type Source
} from './event.ts'
import { formatInstant, offsetMinutesOf } from './time.ts'
import { toCanonical } from './units.ts'
import { isStorableText, parseInstant, validateSpan, validateValue, type Rejection, type TimeBounds } from './validation.ts'

/** What a provider normalizer produces: one measured value, not yet converted or validated. */
export interface EventDraft {
  metric: MetricName
  value: number
  /** Unit as delivered; undefined means the metric's canonical unit. */
  unit?: string | undefined
  /** ISO-8601 with a zone; the zone offset is kept for presentation. */
  start: string
  end: string
  context: EventContext | null
  sourceRecordId: string
  sourceUpdatedAt?: string | null | undefined
  deviceType: DeviceType
}

export interface EventOrigin {
  userId: string
  source: Source
  /** Ingestion time, ISO-8601 UTC. */
  ingestedAt: string
}

export type BuildResult = { ok: true, event: BiometricEvent } | { ok: false, rejection: Rejection }

/** Converts to the canonical unit, validates, and stamps the storage key's deterministic id. Pure. */
export function buildEvent(draft: EventDraft, origin: EventOrigin, bounds: TimeBounds, op: EventOp = 'upsert'): BuildResult {
  // Record ids come from the client or provider (an export's source name, a workout id) and key the stored row.
  if (!isStorableText(draft.sourceRecordId)) {
    return { ok: false, rejection: { code: 'BB_SAMPLE_MALFORMED', message: 'record id must be text without NUL or unpaired surrogates' } }
  }
  const canonical = toCanonical(draft.metric, draft.value, draft.unit)
  if (!canonical.ok) return { ok: false, rejection: { code: 'BB_SAMPLE_UNIT_UNSUPPORTED', message: canonical.reason } }
  const valueProblem = validateValue(draft.metric, canonical.value)
  if (valueProblem !== undefined) return { ok: false, rejection: valueProblem }
  const startMs = parseInstant(draft.start) ?? Number.NaN
  const endMs = parseInstant(draft.end) ?? Number.NaN
  const spanProblem = validateSpan(startMs, endMs, bounds)
  if (spanProblem !== undefined) return { ok: false, rejection: spanProblem }
  let sourceUpdatedAt: string | null = null
  if (draft.sourceUpdatedAt != null) {
    // Same rule as start and end: a zone-less time would be read in each node's own zone, and nodes in
    // different zones would then disagree on which revision is newer.
    const updatedMs = parseInstant(draft.sourceUpdatedAt)
    if (updatedMs === undefined) {
      return {
        ok: false,
        rejection: { code: 'BB_SAMPLE_BAD_TIME', message: 'source_updated_at must be an ISO-8601 timestamp with a zone' }
      }
    }
    sourceUpdatedAt = new Date(updatedMs).toISOString()
  }
  const offsetMinutes = offsetMinutesOf(draft.start)
  return {
    ok: true,
    event: {
      event_id: eventIdFor({
        userId: origin.userId,
        source: origin.source,
        sourceRecordId: draft.sourceRecordId,
        metric: draft.metric,
        context: draft.context
      }),
      schema_version: SCHEMA_VERSION,
      user_id: origin.userId,
      source: origin.source,
      device_type: draft.deviceType,
      metric: draft.metric,
      value: canonical.value,
      unit: METRICS[draft.metric].unit,
      start: formatInstant(startMs, offsetMinutes),
      end: formatInstant(endMs, offsetMinutes),
      context: draft.context,
      source_record_id: draft.sourceRecordId,
      source_updated_at: sourceUpdatedAt,
      op,
      ingested_at: origin.ingestedAt
    }
  }
}
