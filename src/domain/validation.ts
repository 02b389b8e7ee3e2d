import type { SampleRejectionCode } from '../errors.ts'
import { METRICS, type MetricName } from './catalog.ts'

export interface Rejection {
  code: SampleRejectionCode
  message: string
}

export interface TimeBounds {
  /** Reference "now" in epoch milliseconds; injected so validation stays pure and testable. */
  nowMs: number
}

const HOUR_MS = 3_600_000
/** Largest accepted distance into the future: clocks drift and time zones confuse exporters, not more. */
export const MAX_FUTURE_MS = 24 * HOUR_MS
/** Earliest accepted measurement: no consumer wearable recorded data before this (Jan 1 2000 UTC). */
export const EARLIEST_MS = Date.UTC(2000, 0, 1)
/** Longest accepted span of one value: a WHOOP cycle or a week-long aggregate, never more. */
export const MAX_SPAN_MS = 8 * 24 * HOUR_MS

/**
 * Parses an ISO-8601 timestamp with an explicit zone; returns epoch ms or undefined. The date may be separated
 * from the time by a space, and the zone by a space (Health Auto Export writes `2026-01-07 06:30:00 +0100`).
 */
export function parseInstant(text: unknown): number | undefined {
  if (typeof text !== 'string' || text.length < 10 || text.length > 40) return undefined
  // A timestamp without a zone would be read in the server's local zone: ambiguous, so refused.
  if (!/(?:Z|[+-]\d{2}:?\d{2})$/i.test(text)) return undefined
  // Date.parse falls back to a lenient legacy parser that rolls 2026-02-30 over into March and accepts
  // RFC 2822 dates; require an ISO calendar date that exists.
  const date = /^(\d{4})-(\d{2})-(\d{2})[T ]/i.exec(text)
  if (date === null) return undefined
  const year = Number(date[1])
  const month = Number(date[2])
  const day = Number(date[3])
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined
  const ms = Date.parse(text)
  return Number.isFinite(ms) ? ms : undefined
}

/**
 * Text PostgreSQL can store and compare: no U+0000 (text columns and json → text refuse it) and no unpaired
 * surrogate (it has no UTF-8 encoding). JSON escapes can carry both (`\u0000`, `\ud800`).
 */
export function isStorableText(text: string): boolean {
  return text.isWellFormed() && !text.includes('\u0000')
}

export function validateValue(metric: MetricName, value: number): Rejection | undefined {
  if (!Number.isFinite(value)) return { code: 'BB_SAMPLE_NOT_FINITE', message: 'value must be a finite number' }
  const { min, max, unit } = METRICS[metric]
  if (value < min || value > max) {
    return { code: 'BB_SAMPLE_OUT_OF_RANGE', message: `${metric} must be within ${min}–${max} ${unit}` }
  }
  return undefined
}

export function validateSpan(startMs: number, endMs: number, bounds: TimeBounds): Rejection | undefined {
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
    return { code: 'BB_SAMPLE_BAD_TIME', message: 'start and end must be ISO-8601 timestamps with a zone' }
  }
  if (endMs < startMs) return { code: 'BB_SAMPLE_END_BEFORE_START', message: 'end is before start' }
  if (startMs < EARLIEST_MS) return { code: 'BB_SAMPLE_TOO_OLD', message: 'start is before 2000-01-01' }
  if (endMs > bounds.nowMs + MAX_FUTURE_MS) {
    return { code: 'BB_SAMPLE_IN_FUTURE', message: 'end is more than 24 h in the future' }
  }
  if (endMs - startMs > MAX_SPAN_MS) return { code: 'BB_SAMPLE_SPAN_TOO_LONG', message: 'span is longer than 8 days' }
  return undefined
}
