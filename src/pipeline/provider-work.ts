import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Audit } from '../auth/audit.ts'
import type { Pseudonymize } from '../auth/secrets.ts'
import type { TokenCipher } from '../auth/token-crypto.ts'
import type { EventCache } from '../cache/cache.ts'
import type { Config } from '../config/load.ts'
import type { Logger } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../providers/client/backoff.ts'
import { createProviderClient, type ProviderClient } from '../providers/client/provider-client.ts'
import type { RateWindow } from '../providers/client/rate-budget.ts'
import { refreshOuraToken } from '../providers/oura/oauth.ts'
import { refreshWhoopToken } from '../providers/whoop/oauth.ts'
import { handleWhoopReceipt } from '../providers/whoop/receipts.ts'
import { WHOOP_RANGE_DATA_TYPES } from '../providers/whoop/notification.ts'
import type { Coordination } from '../cache/coordination.ts'
import { handleOuraReceipt, OURA_RANGE_DATA_TYPES } from '../providers/oura/receipts.ts'
import { ouraCallbackUrl, renewExpiringSubscriptions } from '../providers/oura/subscriptions.ts'
import { listActiveConnections } from '../storage/connections-repository.ts'
import type { Database } from '../storage/database.ts'
import { lastLiveReceiptAt, type ReceiptProvider } from '../storage/receipts-repository.ts'
import { createReceiptWorker, type ProviderWork } from './receipt-worker.ts'
import { createScheduler, type ScheduledJob } from './scheduler.ts'
import { enqueueRange, RECONCILE_DAYS } from './sync-ranges.ts'
import { createTokenManager, type RefreshTokens } from './token-manager.ts'

export interface ProviderWorkDeps {
  config: Config
  db: Database
  cache: EventCache
  /** Locks and the providers' request budgets, shared by every node with Redis. */
  coordination: Coordination
  metrics: Metrics
  logger: Logger
  audit: Audit
  pseudonymize: Pseudonymize
  tokenCipher: TokenCipher
  now: () => number
  notifyCommitted: () => void
  tuning?: ProviderTuning
}

export interface ProviderTuning {
  backoff?: BackoffPolicy
  breakerThreshold?: number
  breakerHalfOpenAfterMs?: number
  /** Pause of an idle worker between claims. */
  idlePollMs?: number
  /** How often a node checks for due scheduled jobs. */
  schedulerTickMs?: number
}

export interface ProviderWorkRuntime {
  /** Shows the age of the last webhook from before a restart, so silence across restarts stays visible. */
  seedWebhookAge(): Promise<void>
  start(): void
  notify(): void
  stop(drainMs: number): Promise<void>
}

/** Oura counts its budget (OURA_REQUESTS_PER_5_MIN, documented 5,000) over 5 minutes. */
const OURA_BUDGET_WINDOW_MS = 300_000
const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
const PROVIDER_TIMEOUT_MS = 10_000
const BREAKER = { threshold: 5, halfOpenAfterMs: 30_000 }
const RECEIPT_LEASE_MS = 120_000
const RECEIPT_RETENTION_MS = 7 * 86_400_000
const SUBSCRIPTION_RENEW_INTERVAL_MS = 3_600_000

/**
 * Assembles the provider side of the pipeline for the composition root: one API client per configured provider
 * (budget, timeout, breaker), the token manager, the receipt worker pool and the periodic jobs.
 */
export function createProviderWork(deps: ProviderWorkDeps): ProviderWorkRuntime {
  const { config, db, metrics, logger, now } = deps
  const tuning = deps.tuning ?? {}
  const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  const providers: Partial<Record<ReceiptProvider, ProviderWork>> = {}
  const refreshers: Partial<Record<ReceiptProvider, RefreshTokens>> = {}
  const rangeTypes: Partial<Record<ReceiptProvider, readonly string[]>> = {}

  const client = (provider: ReceiptProvider, baseUrl: string, windows: readonly RateWindow[]): ProviderClient => createProviderClient({
    provider, baseUrl, timeoutMs: PROVIDER_TIMEOUT_MS,
    // One budget per provider app, whichever node asks (the limits are the app's, not a node's).
    budget: deps.coordination.budget(provider, windows),
    breakerThreshold: tuning.breakerThreshold ?? BREAKER.threshold,
    breakerHalfOpenAfterMs: tuning.breakerHalfOpenAfterMs ?? BREAKER.halfOpenAfterMs,
    metrics, now
  })

  const { oura, whoop } = config
  if (oura !== undefined) {
    providers.oura = {
      client: client('oura', oura.apiUrl, [{ requests: oura.requestsPer5Min, windowMs: OURA_BUDGET_WINDOW_MS }]),
      handle: handleOuraReceipt
    }
    refreshers.oura = (refreshToken) => refreshOuraToken(oura, refreshToken, now())
    rangeTypes.oura = OURA_RANGE_DATA_TYPES
  }
  if (whoop !== undefined) {
    providers.whoop = {
      client: client('whoop', whoop.apiUrl, [
        { requests: whoop.requestsPerMinute, windowMs: MINUTE_MS }, { requests: whoop.requestsPerDay, windowMs: DAY_MS }
      ]),
      handle: handleWhoopReceipt
    }
    refreshers.whoop = (refreshToken) => refreshWhoopToken(whoop, refreshToken, now())
    rangeTypes.whoop = WHOOP_RANGE_DATA_TYPES
  }

  const tokens = createTokenManager({
    db, cipher: deps.tokenCipher, metrics, audit: deps.audit, logger, pseudonymize: deps.pseudonymize, holder, refreshers,
    locks: deps.coordination, now
  })
  const worker = createReceiptWorker({
    db, cipher: deps.tokenCipher, cache: deps.cache, metrics, logger, tokens, providers,
    concurrency: config.maxConcurrentWebhooks, backlogCountLimit: config.maxReceiptBacklog, maxAttempts: config.maxReceiptAttempts, backoff: tuning.backoff ?? { ...DEFAULT_BACKOFF, baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
    leaseMs: RECEIPT_LEASE_MS, idlePollMs: tuning.idlePollMs ?? 100, retentionMs: RECEIPT_RETENTION_MS,
    notifyCommitted: deps.notifyCommitted, random: Math.random, now
  })

  const jobs: ScheduledJob[] = []
  if (config.reconcileIntervalMinutes > 0) {
    const intervalMs = config.reconcileIntervalMinutes * 60_000
    for (const [provider, dataTypes] of Object.entries(rangeTypes) as Array<[ReceiptProvider, readonly string[]]>) {
      jobs.push({
        name: `reconcile:${provider}`,
        intervalMs,
        run: async () => {
          const endMs = now()
          let queued = 0
          for (const connection of await listActiveConnections(db, provider)) {
            queued += await enqueueRange(db, {
              provider, providerUserId: connection.providerUserId, dataTypes, kind: 'reconcile',
              endMs, days: RECONCILE_DAYS, dedupSuffix: String(Math.floor(endMs / intervalMs))
            })
          }
          logger.info({ provider, receipts: queued }, 'reconciliation queued')
          worker.notify()
        }
      })
    }
  }
  if (oura !== undefined) {
    // Subscriptions are per app, not per node: one node renews them, well before Oura's expiration_time.
    jobs.push({
      name: 'oura:subscriptions-renew',
      intervalMs: SUBSCRIPTION_RENEW_INTERVAL_MS,
      run: async () => {
        const renewed = await renewExpiringSubscriptions(oura, ouraCallbackUrl(config.publicBaseUrl), { nowMs: now(), timeoutMs: 30_000 })
        if (renewed.length > 0) logger.info({ renewed: renewed.length }, 'oura webhook subscriptions renewed')
      }
    })
  }
  const scheduler = createScheduler({ db, logger, holder, jobs, ...(tuning.schedulerTickMs === undefined ? {} : { tickMs: tuning.schedulerTickMs }) })

  return {
    async seedWebhookAge() {
      for (const provider of Object.keys(providers) as ReceiptProvider[]) {
        const at = await lastLiveReceiptAt(db, provider)
        if (at !== undefined) metrics.markWebhookReceived(provider, at.getTime())
      }
    },
    start() {
      worker.start()
      scheduler.start()
    },
    notify: () => worker.notify(),
    async stop(drainMs) {
      await scheduler.stop()
      await worker.stop(drainMs)
    }
  }
}
