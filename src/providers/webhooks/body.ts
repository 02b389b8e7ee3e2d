import { BridgeError } from '../../errors.ts'
import { asObject } from '../json-object.ts'

/** The JSON object of a verified webhook body; anything else is BB_WEBHOOK_MALFORMED (400). */
export function parseWebhookObject(rawBody: Buffer): Record<string, unknown> {
  let body: unknown
  try {
    body = JSON.parse(rawBody.toString('utf8'))
  } catch {
    throw new BridgeError('BB_WEBHOOK_MALFORMED', 'body is not valid JSON')
  }
  const record = asObject(body)
  if (record === undefined) throw new BridgeError('BB_WEBHOOK_MALFORMED', 'body must be a JSON object')
  return record
}
