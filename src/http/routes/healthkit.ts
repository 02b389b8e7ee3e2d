import type { FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { BridgeError } from '../../errors.ts'
import { ingestHealthKitUpload, type UploadFormat } from '../../pipeline/healthkit-upload.ts'
import type { HttpContext, HttpServer } from '../context.ts'
import { deviceOf, type DevicePrincipal } from '../route-auth.ts'

/** Events per bulk write: large enough to amortize round trips, small enough to bound memory (~5 MB). */
const FLUSH_EVENTS = 5000

/**
 * HealthKit uploads are parsed as a stream, so this scope replaces Fastify's buffering body parsers with one
 * that hands the raw JSON body through. Registered only when HEALTHKIT_ENABLED, so disabled routes are 404s.
 */
export function registerHealthKitRoutes(app: HttpServer, context: HttpContext): void {
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('application/json', (_request, payload, parsed) => {
      parsed(null, payload)
    })

    // Uploads beyond twice the connection pool would only queue for a connection while their clients wait;
    // shedding them early with 503 + Retry-After keeps latency bounded and loses nothing.
    const maxUploadsInFlight = context.config.dbPoolSize * 2
    let uploadsInFlight = 0

    const ingest = async (format: UploadFormat, request: FastifyRequest, device: DevicePrincipal) => {
      if (!(request.body instanceof Readable)) {
        throw new BridgeError('BB_UNSUPPORTED_MEDIA_TYPE', 'uploads must be sent as application/json')
      }
      const declaredBytes = Number(request.headers['content-length'] ?? 0)
      if (declaredBytes > context.config.healthkitMaxBodyBytes) {
        throw new BridgeError('BB_BODY_TOO_LARGE', `an upload may be at most ${context.config.healthkitMaxBodyBytes} bytes`)
      }
      const startedAt = performance.now()
      const result = await ingestHealthKitUpload(
        { db: context.db, metrics: context.metrics, now: context.now },
        device.userId, format, request.body,
        { maxSamples: context.config.healthkitMaxSamples, maxBodyBytes: context.config.healthkitMaxBodyBytes, flushEvents: FLUSH_EVENTS })
      if (result.written.length > 0 || result.removed.length > 0) context.notifyCommitted()
      context.metrics.webhookProcessDurationSeconds.observe({ source: 'healthkit' }, (performance.now() - startedAt) / 1000)
      // Only after the commit, and best effort: the cache never throws and waits at most its command timeout.
      await context.cache.recordCommitted(result.written)
      if (result.removed.length > 0) await context.cache.forget(result.removed)
      request.log.info({
        user: context.pseudonymize(device.userId), device: device.id, format,
        accepted: result.written.length, duplicates: result.duplicates, rejected: result.rejectedCount, deleted: result.removed.length
      }, 'healthkit upload stored')
      return {
        accepted: result.written.length,
        duplicates: result.duplicates,
        rejected: result.rejected,
        rejected_count: result.rejectedCount,
        ignored: result.ignored,
        deleted: result.removed.length,
        unsupported_metrics: result.unsupportedMetrics
      }
    }

    const handle = (format: UploadFormat) => async (request: FastifyRequest) => {
      // The user comes from the device token only (the auth hook checked it); nothing in the request can name one.
      const principal = deviceOf(request)
      if (uploadsInFlight >= maxUploadsInFlight) {
        throw new BridgeError('BB_OVERLOADED', 'too many uploads in progress; retry later', { retryAfterSeconds: 1 })
      }
      uploadsInFlight++
      context.metrics.healthkitUploadsInFlight.set(uploadsInFlight)
      try {
        return await ingest(format, request, principal)
      } finally {
        uploadsInFlight--
        context.metrics.healthkitUploadsInFlight.set(uploadsInFlight)
      }
    }

    scope.post('/v1/healthkit/batch', { config: { auth: 'device' } }, handle('native'))
    scope.post('/v1/healthkit/auto-export', { config: { auth: 'device' } }, handle('auto-export'))
    done()
  })
}
