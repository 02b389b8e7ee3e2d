import { BridgeError } from '../../errors.ts'
import { asObject } from '../json-object.ts'

/** What V8 passes a JSON.parse reviver as third argument for primitives (the JSON.parse source text proposal). */
interface ReviverContext {
  source?: string
}

/**
 * Integers a double cannot hold exactly (WHOOP's int64 user and cycle ids past 2^53) come back as their decimal
 * text instead of a rounded number, so an id is never silently turned into another user's.
 */
function keepExactIntegers(this: unknown, _key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
    return context.source
  }
  return value
}

const LONG_DIGIT_RUN = /\d{16}/
/** JSON is UTF-8 (RFC 8259 §8.1); replacing invalid bytes with U+FFFD would make distinct bodies parse alike. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The JSON object of a verified webhook body; anything else is BB_WEBHOOK_MALFORMED (400). */
export function parseWebhookObject(rawBody: Buffer): Record<string, unknown> {
  let body: unknown
  try {
    const text = UTF8.decode(rawBody)
    // The reviver costs ~2 µs a body; only a run of 16+ digits can be an integer past 2^53 (UUIDs have ≤ 12).
    body = LONG_DIGIT_RUN.test(text) ? JSON.parse(text, keepExactIntegers) : JSON.parse(text)
  } catch {
    throw new BridgeError('BB_WEBHOOK_MALFORMED', 'body is not valid JSON')
  }
  const record = asObject(body)
  if (record === undefined) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'body must be a JSON object')
  return record
}
