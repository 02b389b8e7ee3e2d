import { BridgeError } from '../../errors.ts'
import { matchesAnySecret, type SigningSecret } from '../webhooks/signature.ts'

export interface WhoopSignatureInput {
  /** `X-WHOOP-Signature`: base64 of the HMAC. */
  signature: string | undefined
  /** `X-WHOOP-Signature-Timestamp`: Unix time in MILLISECONDS as a decimal string. */
  timestamp: string | undefined
  rawBody: Buffer
}

// 32 bytes of HMAC-SHA256 are 44 base64 characters with one `=` of padding.
const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/
// Milliseconds since the epoch have 13 digits until the year 2286; 10 digits are seconds — the common mistake.
const UNIX_MILLISECONDS = /^\d{12,14}$/

/**
 * Verifies a WHOOP notification on its raw bytes: base64 HMAC-SHA256 of `X-WHOOP-Signature-Timestamp` + body,
 * keyed with the client secret (any secret of the rotation list), within the tolerance window. WHOOP documents
 * no replay window, so the bridge applies its own (WEBHOOK_TOLERANCE_SECONDS). A timestamp in seconds is
 * refused as stale rather than read as a date in 1970. Throws BB_SIGNATURE_* errors (401).
 */
export function verifyWhoopSignature(
  input: WhoopSignatureInput, secrets: readonly SigningSecret[], nowMs: number, toleranceSeconds: number
): void {
  const { signature, timestamp, rawBody } = input
  if (signature === undefined || timestamp === undefined) {
    throw new BridgeError('BB_SIGNATURE_MISSING', 'X-WHOOP-Signature and X-WHOOP-Signature-Timestamp are required')
  }
  if (!UNIX_MILLISECONDS.test(timestamp)) {
    throw new BridgeError('BB_SIGNATURE_STALE', 'X-WHOOP-Signature-Timestamp must be Unix milliseconds')
  }
  if (Math.abs(nowMs - Number(timestamp)) > toleranceSeconds * 1000) {
    throw new BridgeError('BB_SIGNATURE_STALE', 'X-WHOOP-Signature-Timestamp is outside the accepted window')
  }
  if (!BASE64_SHA256.test(signature) || !matchesAnySecret(secrets, timestamp, rawBody, Buffer.from(signature, 'base64'))) {
    throw new BridgeError('BB_SIGNATURE_MISMATCH', 'the signature does not match')
  }
}
