import type { FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { BridgeError } from '../../errors.ts'
import { ingestHealthKitUpload, type UploadFormat } from '../../pipeline/healthkit-upload.ts'
import type { HttpContext, HttpServer } from '../context.ts'

/** Events per bulk write: large enough to amortize round trips, small enough to bound memory (~5 MB). */
const FLUSH_EVENTS = 5000

/**
 * HealthKit uploads are parsed as a stream, so this scope replaces Fastify's buffering JSON parser with one
 * that hands the raw body through. Registered only when HEALTHKIT_ENABLED, so disabled routes are plain 404s.
 */
export function registerHealthKitRoutes(app: HttpServer, context: HttpContext): void {
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('application/json', (_request, payload, done) => {
      done(null, payload)
    })

    const handle = (format: UploadFormat) => async (request: FastifyRequest) => {
      const principal = await context.authenticator.authenticate(request.headers.authorization)
      if (principal.kind !== 'device') throw new BridgeError('BB_FORBIDDEN', 'uploads need a device token')
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
        principal.userId, format, request.body,
        { maxSamples: context.config.healthkitMaxSamples, maxBodyBytes: context.config.healthkitMaxBodyBytes, flushEvents: FLUSH_EVENTS })
      context.metrics.webhookProcessDurationSeconds.observe({ source: 'healthkit' }, (performance.now() - startedAt) / 1000)
      request.log.info({ user: context.pseudonymize(principal.userId), device: principal.id, format, accepted: result.accepted, duplicates: result.duplicates, rejected: result.rejectedCount, deleted: result.deleted }, 'healthkit upload stored')
      return {
        accepted: result.accepted,
        duplicates: result.duplicates,
        rejected: result.rejected,
        rejected_count: result.rejectedCount,
        ignored: result.ignored,
        deleted: result.deleted,
        unsupported_metrics: result.unsupportedMetrics
      }
    }

    scope.post('/v1/healthkit/batch', handle('native'))
    scope.post('/v1/healthkit/auto-export', handle('auto-export'))
    done()
  })
}
