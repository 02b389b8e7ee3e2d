import type { FastifyInstance, RawServerDefault } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Audit } from '../auth/audit.ts'
import type { Authenticator } from '../auth/principals.ts'
import type { EventCache } from '../cache/cache.ts'
import type { StateSigner } from '../auth/oauth-state.ts'
import type { Pseudonymize } from '../auth/secrets.ts'
import type { TokenCipher } from '../auth/token-crypto.ts'
import type { Config } from '../config/load.ts'
import type { Logger } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { Database } from '../storage/database.ts'

export type DependencyState = 'up' | 'down' | 'degraded' | 'disabled'

export interface Readiness {
  /** `ready` is false only when the bridge cannot accept data (storage down). */
  ready: boolean
  dependencies: Record<string, { state: DependencyState, detail?: string }>
}

/** What the HTTP layer needs from the composition root; routes get nothing else. */
export interface HttpContext {
  config: Config
  db: Database
  /** Latest values and recent series in front of `db`; best effort, never throws. */
  cache: EventCache
  metrics: Metrics
  logger: Logger
  authenticator: Authenticator
  audit: Audit
  /** User ids reach logs only through this keyed pseudonym. */
  pseudonymize: Pseudonymize
  /** Encrypts OAuth tokens at rest. */
  tokenCipher: TokenCipher
  /** Signs and checks the OAuth `state`. */
  stateSigner: StateSigner
  now: () => number
  /** Tells the outbox relay that new rows were committed (publishing then starts without waiting for a poll). */
  notifyCommitted: () => void
  /** Tells the receipt worker that new receipts were stored (work then starts without waiting for a poll). */
  notifyReceipts: () => void
  readiness: () => Promise<Readiness>
  version: string
  startedAtMs: number
}

/** The Fastify instance type with our pino logger. */
export type HttpServer = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>
