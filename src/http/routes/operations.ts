import type { HttpContext, HttpServer } from '../context.ts'

export function registerOperationsRoutes(app: HttpServer, context: HttpContext): void {
  app.get('/healthz', { config: { auth: 'public' } }, (_request, reply) => reply.send({
    status: 'ok', version: context.version, uptime_seconds: Math.round((context.now() - context.startedAtMs) / 1000)
  }))

  app.get('/readyz', { config: { auth: 'public' } }, async (_request, reply) => {
    const readiness = await context.readiness()
    const degraded = Object.values(readiness.dependencies).some((dependency) => dependency.state === 'degraded' || dependency.state === 'down')
    const status = !readiness.ready ? 'unavailable' : degraded ? 'degraded' : 'ok'
    return reply.code(readiness.ready ? 200 : 503).send({ status, dependencies: readiness.dependencies })
  })

  app.get('/metrics', { config: { auth: 'public' } }, async (_request, reply) => {
    const body = await context.metrics.registry.metrics()
    return reply.type(context.metrics.registry.contentType).send(body)
  })
}
