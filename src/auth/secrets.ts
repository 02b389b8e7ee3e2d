import { createHash, createHmac, createSecretKey, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

/** Bearer credentials carry 256 random bits, so a fast hash is enough: there is nothing to brute-force. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}

/** A new credential, prefixed so leaked ones are recognizable (`bbd_` device, `bbk_` API key). */
export function generateSecret(prefix: 'bbd' | 'bbk'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`
}

export function newId(): string {
  return randomUUID()
}

/** Constant-time comparison of two secrets of any length (compares their hashes). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashSecret(a), hashSecret(b))
}

export type Pseudonymize = (userId: string) => string

/**
 * User ids appear in logs and audit subjects only as keyed HMAC-SHA256 pseudonyms: stable for correlation,
 * useless without the key. 32 hex characters = 128 bits.
 */
export function createPseudonymizer(key: string): Pseudonymize {
  // One KeyObject: a string key would be imported anew on every call (~11 µs against ~1.6 µs, measured).
  const keyObject = createSecretKey(Buffer.from(key, 'utf8'))
  return (userId) => createHmac('sha256', keyObject).update(userId, 'utf8').digest('hex').slice(0, 32)
}
