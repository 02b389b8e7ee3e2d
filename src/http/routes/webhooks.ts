import type { FastifyRequest } from 'fastify'
import { BridgeError } from '../../errors.ts'
import { secretsEqual } from '../../auth/secrets.ts'
import { webhookDialects } from '../../providers/webhooks/dialects.ts'
import { createBatcher } from '../../lib/batcher.ts'
import { insertReceipts, pendingReceiptCount, type NewReceipt } from '../../storage/receipts-repository.ts'
import type { HttpContext, HttpServer } from '../context.ts'

/** Notifications are a few hundred bytes; anything near this is not one. */
const WEBHOOK_BODY_LIMIT_BYTES = 64 * 1024
/** How long a backlog count is trusted before it is read again (one COUNT per second, not per request). */
const BACKLOG_REFRESH_MS = 1000
/** How long the fast dedup marker lives; the durable unique key catches anything older. */
const DEDUP_TTL_SECONDS = 24 * 3600

/**
 * Provider webhooks: verify the signature on the raw bytes, store a durable, deduplicated receipt, answer 200.
 * Nothing is fetched here; the worker pool does that from the receipts, so a slow or rate-limiting provider
 * never turns into a failed or slow webhook.
 */
export function registerWebhookRoutes(app: HttpServer, context: HttpContext): void {
  const { oura } = context.config
  const dialects = webhookDialects(context.config)
  if (dialects.length === 0) return

  const { maxReceiptBacklog } = context.config
  let backlog = { count: 0, readAtMs: Number.NEGATIVE_INFINITY }
  // One count at a time: requests arriving while it runs use the previous figure instead of piling up counts.
  let counting: Promise<void> | undefined
  const refreshBacklog = async (nowMs: number): Promise<void> => {
    try {
      backlog = { count: await pendingReceiptCount(context.db, maxReceiptBacklog), readAtMs: nowMs }
      context.metrics.receiptBacklog.set(backlog.count)
    } finally {
      counting = undefined
    }
  }
  const ensureCapacity = async (): Promise<void> => {
    const nowMs = context.now()
    if (nowMs - backlog.readAtMs > BACKLOG_REFRESH_MS) {
      counting ??= refreshBacklog(nowMs)
      // The first count must finish before anything is accepted; later ones refresh in the background.
      if (backlog.readAtMs === Number.NEGATIVE_INFINITY) await counting
      else counting.catch(() => {})
    }
    if (backlog.count >= maxReceiptBacklog) {
      throw new BridgeError('BB_OVERLOADED', 'too many notifications wait to be processed; retry later', { retryAfterSeconds: 30 })
    }
  }

  // Concurrent notifications share one INSERT and one commit (see lib/batcher.ts).
  const receipts = createBatcher((batch: NewReceipt[]) => insertReceipts(context.db, batch), { maxBatch: 256, maxInFlight: 2 })

  void app.register((scope, _options, done) => {
    // The signature covers the raw bytes; parsing and re-serializing the JSON would break verification.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT_BYTES }, (_request, body, parsed) => {
      parsed(null, body)
    })

    if (oura !== undefined) {
      scope.get('/webhooks/oura', { config: { auth: 'verification-token' } }, (request, reply) => {
        const query = request.query as Record<string, unknown>
        const token = typeof query.verification_token === 'string' ? query.verification_token : ''
        const challenge = query.challenge
        if (!secretsEqual(token, oura.webhookVerificationToken)) {
          throw new BridgeError('BB_VERIFICATION_TOKEN_MISMATCH', 'verification_token does not match')
        }
        if (typeof challenge !== 'string' || challenge.length === 0 || challenge.length > 512) {
          throw new BridgeError('BB_WEBHOOK_MALFORMED', 'challenge is required')
        }
        return reply.send({ challenge })
      })
    }

    for (const dialect of dialects) {
      const { provider, deviceType } = dialect
      scope.post(`/webhooks/${provider}`, { config: { auth: 'signature' } }, async (request: FastifyRequest) => {
        const rawBody = request.body
        if (!Buffer.isBuffer(rawBody)) throw new BridgeError('BB_UNSUPPORTED_MEDIA_TYPE', 'webhooks must be application/json')
        try {
          dialect.verify((name) => headerOf(request, name), rawBody, context.now())
        } catch (error) {
          context.metrics.webhookEventsFailedTotal.inc({ source: provider, error_type: 'signature_error' })
          throw error
        }
        const notification = dialect.parse(rawBody)

        // Fast path: a redelivery of a receipt already committed needs no database round trip. The marker is
        // set only after the commit, so a hit proves durability; a miss (or Redis being down) falls through to
        // the durable unique key, which is the real guarantee.
        const markerKey = `receipt:${provider}:${notification.dedupKey}`
        if (await context.cache.isClaimed(markerKey) === true) {
          context.metrics.webhookEventsFailedTotal.inc({ source: provider, error_type: 'duplicate_event' })
          return { status: 'duplicate' }
        }
        if (notification.handled) await ensureCapacity()
        const stored = await receipts.submit({
          provider, dedupKey: notification.dedupKey, eventType: notification.eventType, dataType: notification.dataType,
          objectId: notification.objectId, providerUserId: notification.providerUserId, status: notification.handled ? 'pending' : 'ignored'
        })
        await context.cache.claimOnce(markerKey, DEDUP_TTL_SECONDS)
        if (!stored) {
          context.metrics.webhookEventsFailedTotal.inc({ source: provider, error_type: 'duplicate_event' })
          return { status: 'duplicate' }
        }
        if (!notification.handled) {
          // Acknowledged so the provider stops retrying, kept for the record, never worked on.
          context.metrics.webhookEventsIgnoredTotal.inc({ source: provider })
          return { status: 'ignored' }
        }
        backlog.count++
        context.metrics.webhookEventsTotal.inc({ source: provider, device_type: deviceType })
        context.metrics.markWebhookReceived(provider, context.now())
        context.notifyReceipts()
        return { status: 'accepted' }
      })
    }
    done()
  })
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return typeof value === 'string' ? value : undefined
}
