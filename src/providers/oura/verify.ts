import { BridgeError } from '../../errors.ts'
import { matchesAnySecret, type SigningSecret } from '../webhooks/signature.ts'

export interface OuraSignatureInput {
  signature: string | undefined
  /** `x-oura-timestamp`: Unix seconds as a decimal string. */
  timestamp: string | undefined
  rawBody: Buffer
}

const HEX_SHA256 = /^[0-9A-Fa-f]{64}$/
const UNIX_SECONDS = /^\d{9,11}$/

/**
 * Verifies an Oura notification on its raw bytes: upper-case hex HMAC-SHA256 of `x-oura-timestamp` + body,
 * keyed with the client secret (any secret of the rotation list), within the tolerance window.
 * Throws BB_SIGNATURE_* errors (401); returns nothing on success.
 */
export function verifyOuraSignature(
  input: OuraSignatureInput, secrets: readonly SigningSecret[], nowMs: number, toleranceSeconds: number
): void {
  const { signature, timestamp, rawBody } = input
  if (signature === undefined || timestamp === undefined) {
    throw new BridgeError('BB_SIGNATURE_MISSING', 'x-oura-signature and x-oura-timestamp are required')
  }
  if (!UNIX_SECONDS.test(timestamp)) throw new BridgeError('BB_SIGNATURE_STALE', 'x-oura-timestamp must be Unix seconds')
  const skewSeconds = Math.abs(nowMs / 1000 - Number(timestamp))
  if (skewSeconds > toleranceSeconds) {
    throw new BridgeError('BB_SIGNATURE_STALE', 'x-oura-timestamp is outside the accepted window')
  }
  // Hex is compared as bytes, so upper- and lower-case spellings of the same signature are equal.
  if (!HEX_SHA256.test(signature) || !matchesAnySecret(secrets, timestamp, rawBody, Buffer.from(signature, 'hex'))) {
    throw new BridgeError('BB_SIGNATURE_MISMATCH', 'the signature does not match')
  }
}
