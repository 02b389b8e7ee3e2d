import type { DeviceType } from '../../domain/event.ts'
import type { Config } from '../../config/load.ts'
import { isOuraDataType } from '../oura/documents.ts'
import { ouraDedupKey, parseOuraNotification } from '../oura/notification.ts'
import { verifyOuraSignature } from '../oura/verify.ts'
import { isWhoopNotificationHandled, parseWhoopNotification } from '../whoop/notification.ts'
import { verifyWhoopSignature } from '../whoop/verify.ts'
import { signingKeys } from './signature.ts'
import type { ReceiptProvider } from '../../storage/receipts-repository.ts'

/** What the intake needs of a verified notification to store its receipt. */
export interface ParsedNotification {
  /** Identifies one delivery of one change; redeliveries repeat it. */
  dedupKey: string
  eventType: string
  dataType: string
  objectId: string
  providerUserId: string
  /** False for types the bridge does not map: acknowledged and kept, never worked on. */
  handled: boolean
}

/** One provider's webhook dialect: how a delivery is signed and what its body says. */
export interface WebhookDialect {
  provider: ReceiptProvider
  deviceType: DeviceType
  /** Throws BB_SIGNATURE_* (401) unless the raw bytes carry a valid signature. */
  verify(header: (name: string) => string | undefined, rawBody: Buffer, nowMs: number): void
  /** Throws BB_WEBHOOK_MALFORMED (400). */
  parse(rawBody: Buffer): ParsedNotification
}

/** The dialects of the configured providers, in the order their routes are registered. */
export function webhookDialects(config: Config): WebhookDialect[] {
  const dialects: WebhookDialect[] = []
  const tolerance = config.webhookToleranceSeconds
  const { oura, whoop } = config
  if (oura !== undefined) {
    const secrets = signingKeys(oura.clientSecrets)
    dialects.push({
      provider: 'oura',
      deviceType: 'oura_ring',
      verify: (header, rawBody, nowMs) => verifyOuraSignature(
        { signature: header('x-oura-signature'), timestamp: header('x-oura-timestamp'), rawBody }, secrets, nowMs, tolerance),
      parse(rawBody) {
        const notification = parseOuraNotification(rawBody)
        return { ...notification, dedupKey: ouraDedupKey(notification), handled: isOuraDataType(notification.dataType) }
      }
    })
  }
  if (whoop !== undefined) {
    const secrets = signingKeys(whoop.clientSecrets)
    dialects.push({
      provider: 'whoop',
      deviceType: 'whoop_band',
      verify: (header, rawBody, nowMs) => verifyWhoopSignature(
        { signature: header('x-whoop-signature'), timestamp: header('x-whoop-signature-timestamp'), rawBody }, secrets, nowMs, tolerance),
      parse(rawBody) {
        const notification = parseWhoopNotification(rawBody)
        // trace_id identifies the triggering event, so WHOOP's retries of one delivery share it (reference §2.5).
        return { ...notification, dedupKey: notification.traceId, handled: isWhoopNotificationHandled(notification) }
      }
    })
  }
  return dialects
}
