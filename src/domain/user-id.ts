import { BridgeError } from '../errors.ts'

/**
 * The app's own user ids: opaque strings without whitespace or slashes, at most 128 characters
 * (emails and UUIDs fit).
 */
const USER_ID = /^[A-Za-z0-9._:@+-]{1,128}$/

export function parseUserId(value: unknown): string {
  if (typeof value !== 'string' || !USER_ID.test(value)) {
    throw new BridgeError('BB_INVALID_REQUEST', 'userId must be 1–128 characters of letters, digits and ._:@+-')
  }
  return value
}
