import Fastify, { LogController } from 'fastify'
import { BridgeError } from '../errors.ts'
import type { HttpContext, HttpServer } from './context.ts'
import { sendError, toBridgeError } from './errors.ts'
import { installRouteAuth, type RouteInfo } from './route-auth.ts'
import { registerConnectionRoutes } from './routes/connections.ts'
import { registerHealthKitRoutes } from './routes/healthkit.ts'
import { registerOperationsRoutes } from './routes/operations.ts'
import { registerUserRoutes } from './routes/users.ts'
import { registerWebhookRoutes } from './routes/webhooks.ts'

/** Body limit of ordinary JSON routes (admin calls); uploads have their own limit. */
const JSON_BODY_LIMIT_BYTES = 64 * 1024

export interface BuiltHttpServer {
  server: HttpServer
  /** Every registered route with its declared auth requirement; complete once `server.ready()` resolved. */
  routes: () => RouteInfo[]
}

export function createHttpServer(context: HttpContext): BuiltHttpServer {
  const app = Fastify({
    loggerInstance: context.logger,
    // Fastify's default request logs contain URLs, and ours carry user ids: one PHI-free line per request
    // is written in onResponse instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    // Slow-loris and stuck clients: a request must arrive within 60 s, headers within 10 s.
    requestTimeout: 60_000,
    connectionTimeout: 0,
    keepAliveTimeout: 5_000,
    // Requests arriving while the server drains get the contract's 503 body (onRequest hook below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 }
  })

  // Once a stop has begun, answers close their connection: kept-alive clients would otherwise hold the stop
  // open until their idle timeout.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onRequest', (_request, _reply, done) => {
    done(closing ? new BridgeError('BB_SHUTTING_DOWN', 'the server is stopping; retry on another node', { retryAfterSeconds: 1 }) : undefined)
  })
  // After the stopping check (a draining node sheds without a credential lookup), before any route is added.
  const routes = installRouteAuth(app, context.authenticator)
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const seconds = reply.elapsedTime / 1000
    context.metrics.httpRequestDurationSeconds.observe({ method: request.method, route, status: String(reply.statusCode) }, seconds)
    request.log.info({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request served')
  })

  app.setErrorHandler((error, request, reply) => {
    const bridgeError = toBridgeError(error)
    if (bridgeError.status === 503 && bridgeError.retryAfterSeconds !== undefined) {
      // Shed on purpose (stopping, overloaded): the client was told when to come back; not a fault of this node.
      request.log.warn({ code: bridgeError.code, route: request.routeOptions.url }, 'request shed')
    } else if (bridgeError.status >= 500) {
      request.log.error({ err: error, code: bridgeError.code, route: request.routeOptions.url }, 'request failed')
    }
    return sendError(reply, bridgeError)
  })
  app.setNotFoundHandler((_request, reply) => sendError(reply, new BridgeError('BB_NOT_FOUND', 'not found')))

  registerOperationsRoutes(app, context)
  registerUserRoutes(app, context)
  if (context.config.healthkitEnabled) registerHealthKitRoutes(app, context)
  registerWebhookRoutes(app, context)
  registerConnectionRoutes(app, context)
  return { server: app, routes }
}
