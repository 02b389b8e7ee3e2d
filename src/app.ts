import { createAudit } from './auth/audit.ts'
import { createAuthenticator } from './auth/principals.ts'
import { createStateSigner } from './auth/oauth-state.ts'
import { createPseudonymizer, type Pseudonymize } from './auth/secrets.ts'
import { createTokenCipher } from './auth/token-crypto.ts'
import type { EventCache } from './cache/cache.ts'
import { createMemoryCache } from './cache/memory.ts'
import { createRedisCache } from './cache/redis.ts'
import { createMemoryCoordination } from './cache/coordination.ts'
import { createRedisCoordination } from './cache/redis-coordination.ts'
import { resolveSecrets } from './config/dev-keys.ts'
import type { Config } from './config/load.ts'
import type { HttpServer, Readiness } from './http/context.ts'
import type { RouteInfo } from './http/route-auth.ts'
import { createHttpServer } from './http/server.ts'
import { DEFAULT_RELAY_OPTIONS, createOutboxRelay, type OutboxRelay } from './pipeline/outbox-relay.ts'
import { createProviderWork, type ProviderTuning } from './pipeline/provider-work.ts'
import { Releasers } from './lib/lifecycle.ts'
import { createLogger, describeError, type Logger } from './lib/logger.ts'
import { createMetrics, type Metrics } from './metrics/registry.ts'
import type { Database } from './storage/database.ts'
import { migrate } from './storage/migrate.ts'
import { openDatabase } from './storage/open.ts'
import packageJson from '../package.json' with { type: 'json' }

export interface AppOptions {
  logger?: Logger
  now?: () => number
  /** Prefix of every Redis key (default `bb:`); tests isolate themselves with a random one. */
  cacheKeyPrefix?: string
  /** Timing of provider work (backoff, breaker, polls); tests shorten it, production keeps the defaults. */
  providerTuning?: ProviderTuning
}

export interface App {
  config: Config
  db: Database
  cache: EventCache
  metrics: Metrics
  logger: Logger
  http: HttpServer
  pseudonymize: Pseudonymize
  /** Every HTTP route with the auth requirement it declares (read from the server, for audits and tests). */
  routes(): Promise<RouteInfo[]>
  /** Listens on HOST:PORT; returns the bound address (PORT=0 picks a free port). */
  listen(): Promise<string>
  /** Graceful stop: no new requests, in-flight requests and transactions finish, then pools close. */
  stop(): Promise<void>
}

/**
 * The composition root: builds every adapter and service once, in dependency order, and registers their
 * release in reverse order. Nothing else in the code base constructs infrastructure.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat })
  const now = options.now ?? Date.now
  const releasers = new Releasers()
  const secrets = resolveSecrets(config)
  if (secrets.generated) {
    logger.warn({ dataDir: config.dataDir === 'memory://' ? 'memory://' : 'set' }, 'embedded mode: generated development keys for tokens and log pseudonyms; set TOKEN_ENCRYPTION_KEYS and LOG_PSEUDONYM_KEY for production')
  }
  const pseudonymize = createPseudonymizer(secrets.logPseudonymKey)
  const tokenCipher = createTokenCipher(secrets.tokenEncryptionKeys)
  const stateSigner = createStateSigner(secrets.tokenEncryptionKeys[0]!.key)
  const metrics = createMetrics()

  const db = await openDatabase(config)
  releasers.add('database', () => db.close())
  try {
    const applied = await migrate(db)
    if (applied.length > 0) logger.info({ versions: applied }, 'database migrated')
  } catch (error) {
    await releasers.releaseAll(() => {})
    throw error
  }
  logger.info({ storage: db.kind }, 'storage ready')
  // Cache: Redis with REDIS_URL, else in-process (one node only). Never fails start-up; closed after HTTP.
  const cache = config.redisUrl === undefined
    ? createMemoryCache({ ttlSeconds: config.redisTtlSeconds, maxSeriesEntries: config.maxTimeseriesEntries })
    : await createRedisCache({
      url: config.redisUrl, ttlSeconds: config.redisTtlSeconds, maxSeriesEntries: config.maxTimeseriesEntries, metrics, logger,
      ...(options.cacheKeyPrefix === undefined ? {} : { keyPrefix: options.cacheKeyPrefix })
    })
  releasers.add('cache', () => cache.close())
  // Locks and provider request budgets: across nodes through Redis, else in this process.
  const coordination = config.redisUrl === undefined
    ? createMemoryCoordination(now)
    : await createRedisCoordination({
      url: config.redisUrl, logger, now, ...(options.cacheKeyPrefix === undefined ? {} : { keyPrefix: options.cacheKeyPrefix })
    })
  releasers.add('coordination', () => coordination.close())
  // Publishing: the outbox relay runs on every node that has brokers configured; leases decide who publishes.
  let relay: OutboxRelay | undefined
  if (config.kafkaBrokers.length === 0) {
    logger.warn('KAFKA_BROKERS is not set: events stay in the outbox and are not published')
  } else {
    // Loaded only when publishing: the Kafka client instantiates its compression WebAssembly at import, ~48 MB
    // of resident memory a node without brokers should not carry.
    const { createKafkaPublisher } = await import('./bus/kafka.ts')
    const publisher = createKafkaPublisher({ brokers: config.kafkaBrokers, clientId: 'biometric-bridge', requestTimeoutMs: 3000, retries: 2 })
    releasers.add('kafka producer', () => publisher.close())
    const outboxRelay = createOutboxRelay({
      db, publisher, metrics, logger, options: { ...DEFAULT_RELAY_OPTIONS, topic: config.kafkaTopic, dlqTopic: config.kafkaDlqTopic }
    })
    relay = outboxRelay
    outboxRelay.start()
    releasers.add('outbox relay', () => outboxRelay.stop())
  }

  const audit = createAudit(pseudonymize, metrics)
  // Provider receipts: the worker pool (unless MAX_CONCURRENT_WEBHOOKS=0) and the one-node periodic jobs.
  const providerWork = createProviderWork({
    config, db, cache, coordination, metrics, logger, audit, pseudonymize, tokenCipher, now, notifyCommitted: () => relay?.notify(),
    ...(options.providerTuning === undefined ? {} : { tuning: options.providerTuning })
  })
  await providerWork.seedWebhookAge()
  providerWork.start()
  releasers.add('receipt worker and scheduled jobs', () => providerWork.stop(config.shutdownTimeoutMs / 2))

  const readiness = async (): Promise<Readiness> => {
    let database: Readiness['dependencies'][string] = { state: 'up' }
    try {
      await db.query('SELECT 1')
    } catch {
      database = { state: 'down' }
    }
    return {
      ready: database.state === 'up',
      dependencies: {
        database: { ...database, detail: db.kind },
        redis: cache.kind === 'memory' ? { state: 'disabled', detail: 'in-process cache' } : { state: await cache.state() },
        kafka: relay === undefined ? { state: 'disabled', detail: 'KAFKA_BROKERS not set' } : relay.state()
      }
    }
  }

  const { server: http, routes } = createHttpServer({
    config,
    db,
    cache,
    metrics,
    logger,
    authenticator: createAuthenticator(db, config.adminApiToken),
    audit,
    pseudonymize,
    tokenCipher,
    stateSigner,
    now,
    notifyCommitted: () => relay?.notify(),
    notifyReceipts: () => providerWork.notify(),
    readiness,
    version: packageJson.version,
    startedAtMs: now()
  })
  releasers.add('http', () => http.close())

  return {
    config,
    db,
    cache,
    metrics,
    logger,
    http,
    pseudonymize,
    async routes() {
      // Routes inside plugins are added while the server boots.
      await http.ready()
      return routes()
    },
    async listen() {
      return http.listen({ port: config.port, host: config.host })
    },
    async stop() {
      await releasers.releaseAll((name, error) => logger.error({ component: name, err: describeError(error) }, 'stop step failed'))
    }
  }
}
