import type { FastifyRequest } from 'fastify'
import { requireScope, type Authenticator, type Principal } from '../auth/principals.ts'
import { BridgeError } from '../errors.ts'
import type { HttpServer } from './context.ts'

/**
 * How a route authenticates its caller, declared as `config: { auth }` on every route. The bearer kinds are
 * enforced here, before the body is read; the others are proofs only the route can check on what it receives.
 */
export const ROUTE_AUTH = [
  /** API key with the `admin` scope, or ADMIN_API_TOKEN. */
  'admin',
  /** API key with `read:events` (or `admin`), or ADMIN_API_TOKEN. */
  'read:events',
  /** A device token; the principal binds the user whose data is written. */
  'device',
  /** Provider webhook: HMAC over timestamp and raw body, verified by the route. */
  'signature',
  /** Oura's subscription handshake: the configured verification token, checked by the route. */
  'verification-token',
  /** OAuth callback: the signed, expiring, single-use `state`, checked by the route. */
  'oauth-state',
  /** No credential: liveness, readiness, metrics. */
  'public'
] as const
export type RouteAuth = (typeof ROUTE_AUTH)[number]

export interface RouteInfo {
  method: string
  url: string
  auth: RouteAuth
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
  interface FastifyRequest {
    /** Set by the auth hook on `admin`, `read:events` and `device` routes; null elsewhere. */
    principal: Principal | null
  }
}

function isRouteAuth(value: unknown): value is RouteAuth {
  return typeof value === 'string' && (ROUTE_AUTH as readonly string[]).includes(value)
}

/**
 * Deny by default: a route that declares no requirement cannot be registered, and bearer requirements are checked
 * in `onRequest` for every route from its declaration, so no handler can forget one. Must run before any route
 * is added; returns the route table (complete once the server is ready, since plugins register lazily).
 */
export function installRouteAuth(app: HttpServer, authenticator: Authenticator): () => RouteInfo[] {
  const routes: RouteInfo[] = []
  app.decorateRequest('principal', null)
  app.addHook('onRoute', (route) => {
    const auth: unknown = route.config?.auth
    if (!isRouteAuth(auth)) throw new Error(`route ${String(route.method)} ${route.url} declares no auth requirement (config.auth)`)
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, auth })
  })
  app.addHook('onRequest', async (request) => {
    const auth = request.routeOptions.config.auth
    if (auth === undefined) {
      // Only the not-found handler has no declaration (onRoute refuses every other route without one).
      if (request.is404) return
      throw new BridgeError('BB_INTERNAL', 'route without an auth requirement')
    }
    if (auth === 'admin' || auth === 'read:events') {
      const principal = await authenticator.authenticate(request.headers.authorization)
      requireScope(principal, auth)
      request.principal = principal
    } else if (auth === 'device') {
      const principal = await authenticator.authenticate(request.headers.authorization)
      if (principal.kind !== 'device') throw new BridgeError('BB_FORBIDDEN', 'uploads need a device token')
      request.principal = principal
    }
  })
  return () => routes.map((route) => ({ ...route }))
}

/** The caller of a bearer route, as the auth hook established it. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new BridgeError('BB_INTERNAL', 'route reads a principal it does not declare')
  return request.principal
}

export type DevicePrincipal = Extract<Principal, { kind: 'device' }>

export function deviceOf(request: FastifyRequest): DevicePrincipal {
  const principal = principalOf(request)
  if (principal.kind !== 'device') throw new BridgeError('BB_INTERNAL', 'route reads a device it does not declare')
  return principal
}
