import { setTimeout as sleep } from 'node:timers/promises'
import type { TokenCipher } from '../auth/token-crypto.ts'
import type { EventCache } from '../cache/cache.ts'
import { buildEvent } from '../domain/build-event.ts'
import type { BiometricEvent, Source } from '../domain/event.ts'
import { BridgeError } from '../errors.ts'
import type { Logger } from '../lib/logger.ts'
import { createWakeablePause } from '../lib/wakeable-pause.ts'
import { describeError } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import { backoffDelayMs, type BackoffPolicy } from '../providers/client/backoff.ts'
import { ProviderRequestError, type ProviderClient } from '../providers/client/provider-client.ts'
import type { RequestPriority } from '../providers/client/rate-budget.ts'
import { classifyFailure } from './receipt-failure.ts'
import type { Database } from '../storage/database.ts'
import { loadConnectionsByProviderUsers, type LoadedConnection } from '../storage/connections-repository.ts'
import {
  claimDueReceipts, finishReceipt, RECEIPT_PRIORITY, pendingReceiptCount, pruneFinishedReceipts, releaseReceipts, rescheduleReceipt,
  type ClaimedReceipt, type ReceiptProvider
} from '../storage/receipts-repository.ts'
import type { AuthorizedApi, ReceiptChanges, ReceiptHandler } from './receipt-work.ts'
import { createReceiptCommitter } from './receipt-commit.ts'
import { createSemaphore } from './semaphore.ts'
import type { TokenManager } from './token-manager.ts'

export interface ProviderWork {
  client: ProviderClient
  handle: ReceiptHandler
}

export interface ReceiptWorkerOptions {
  db: Database
  cipher: TokenCipher
  cache: EventCache
  metrics: Metrics
  logger: Logger
  tokens: TokenManager
  providers: Partial<Record<ReceiptProvider, ProviderWork>>
  /** MAX_CONCURRENT_WEBHOOKS: receipts worked on at once by this process. */
  concurrency: number
  /** receipt_backlog counts pending live receipts up to this many (MAX_RECEIPT_BACKLOG), so counting stays cheap. */
  backlogCountLimit: number
  /** MAX_RECEIPT_ATTEMPTS: a receipt still failing after this many attempts is dead-lettered. */
  maxAttempts: number
  backoff: BackoffPolicy
  /** A claimed receipt is this process's for this long; longer than any one receipt's work. */
  leaseMs: number
  /** Pause between claims when nothing is due (intake on this node wakes the worker at once). */
  idlePollMs: number
  /** Finished receipts are kept this long (the dedup window for late redeliveries), then pruned. */
  retentionMs: number
  /** Called after a commit that wrote events, e.g. to wake the outbox relay. */
  notifyCommitted: () => void
  random: () => number
  now: () => number
}

export interface ReceiptWorker {
  start(): void
  /** Wakes the worker after intake stored a receipt. */
  notify(): void
  /**
   * Stops claiming, waits up to `drainMs` for receipts in progress, then gives back the leases of the rest so
   * another process picks them up at once. Nothing is lost either way: unfinished receipts stay pending.
   */
  stop(drainMs?: number): Promise<void>
}

/** Live notifications draw on the whole request budget, reconciliation and backfill on their shares of it. */
const priorityOf = (receipt: ClaimedReceipt): RequestPriority =>
  receipt.priority <= RECEIPT_PRIORITY.live ? 'live' : receipt.priority === RECEIPT_PRIORITY.reconcile ? 'reconcile' : 'backfill'

const HOUSEKEEPING_EVERY_MS = 5_000
const PRUNE_EVERY_MS = 60_000

/**
 * Works off webhook receipts: claims due ones (several processes may run this at once; see claimDueReceipts),
 * runs each under a permit of the MAX_CONCURRENT_WEBHOOKS semaphore, and commits the resulting events, their
 * outbox rows and the receipt's end in ONE transaction, so a receipt is done exactly when its events are stored.
 * A retryable failure reschedules the receipt durably with backoff; nothing waits in memory.
 */
export function createReceiptWorker(options: ReceiptWorkerOptions): ReceiptWorker {
  const { db, metrics, logger } = options
  const providers = Object.keys(options.providers) as ReceiptProvider[]
  const semaphore = createSemaphore(options.concurrency, {
    waited: (seconds) => metrics.semaphoreWaitSeconds.observe(seconds),
    activeChanged: (active) => metrics.activeWebhookTasks.set(active)
  })
  const committer = createReceiptCommitter({ db, cache: options.cache, metrics, notifyCommitted: options.notifyCommitted })
  const inProgress = new Map<string, Promise<void>>()
  // Cancels provider requests still running when a stop's drain time is up.
  const abandon = new AbortController()
  let running = false
  let loop: Promise<void> | undefined
  // Intake on this node ends the idle pause at once (or skips the next one if it arrives mid-claim).
  const idle = createWakeablePause()
  let lastHousekeepingAt = 0
  let lastPruneAt = options.now()

  const authorizedApi = (work: ProviderWork, initial: LoadedConnection, priority: RequestPriority): AuthorizedApi => {
    const requestOptions = { signal: abandon.signal, priority }
    let connection = initial
    let renewedAfterRefusal = false
    return {
      async getJson(path, query) {
        const url = query === undefined ? path : `${path}?${new URLSearchParams(query).toString()}`
        connection = await options.tokens.fresh(connection)
        try {
          return await work.client.getJson(url, connection.accessToken, requestOptions)
        } catch (error) {
          // A 401 earns one refresh and one retry per receipt; a second 401 is the provider's problem.
          if (!(error instanceof ProviderRequestError) || error.status !== 401 || renewedAfterRefusal) throw error
          renewedAfterRefusal = true
          connection = await options.tokens.renew(connection)
          return work.client.getJson(url, connection.accessToken, requestOptions)
        }
      }
    }
  }

  const commit = async (receipt: ClaimedReceipt, connection: LoadedConnection, changes: ReceiptChanges): Promise<void> => {
    const nowMs = options.now()
    const source: Source = receipt.provider
    const origin = { userId: connection.userId, source, ingestedAt: new Date(nowMs).toISOString() }
    const events = new Map<string, BiometricEvent>()
    let rejected = changes.rejected.length
    for (const draft of changes.drafts) {
      const built = buildEvent(draft, origin, { nowMs })
      if (built.ok) events.set(built.event.event_id, built.event)
      else rejected++
    }
    const batch = [...events.values()]
    const idsByRecord = new Map<string, string[]>()
    for (const event of batch) {
      const ids = idsByRecord.get(event.source_record_id)
      if (ids === undefined) idsByRecord.set(event.source_record_id, [event.event_id])
      else ids.push(event.event_id)
    }
    await committer.commit({
      receiptId: receipt.id,
      userId: connection.userId,
      source,
      events: batch,
      retracted: [...new Set(changes.retracted)],
      complete: changes.complete.map((record) => ({
        ...record, userId: connection.userId, source, keepEventIds: idsByRecord.get(record.sourceRecordId) ?? []
      })),
      ingestedAt: origin.ingestedAt
    })
    if (rejected > 0) {
      metrics.webhookEventsFailedTotal.inc({ source, error_type: 'validation_error' }, rejected)
      logger.debug({ receipt: receipt.id, rejected, codes: [...new Set(changes.rejected.map((r) => r.code))] }, 'provider data rejected')
    }
  }

  const fail = async (receipt: ClaimedReceipt, error: unknown): Promise<void> => {
    const failure = classifyFailure(error)
    metrics.webhookEventsFailedTotal.inc({ source: receipt.provider, error_type: failure.errorType })
    const log = { receipt: receipt.id, provider: receipt.provider, dataType: receipt.dataType, attempt: receipt.attempts, code: failure.code }
    if (failure.retryable && (receipt.attempts < options.maxAttempts || !failure.countsAsAttempt)) {
      const delayMs = backoffDelayMs(options.backoff, receipt.attempts, options.random, failure.retryAfterMs)
      await rescheduleReceipt(db, receipt.id, delayMs, failure.code, { refundAttempt: !failure.countsAsAttempt })
      logger.info({ ...log, delayMs, err: describeError(error) }, 'receipt will be retried')
      return
    }
    if (failure.code === 'BB_NO_CONNECTION' || failure.code === 'BB_REAUTH_REQUIRED') {
      // Nobody to fetch for; the backfill after a (re)connect brings what was missed.
      await finishReceipt(db, receipt.id, 'skipped', failure.code)
      logger.info(log, 'receipt skipped: no usable connection')
      return
    }
    await finishReceipt(db, receipt.id, 'dead', failure.code)
    metrics.dlqMessagesTotal.inc({ reason: failure.retryable ? 'receipt_attempts_exhausted' : 'receipt_not_retryable' })
    logger.warn({ ...log, err: describeError(error) }, 'receipt dead-lettered; replay it with `bridge receipts replay`')
  }

  const work = async (receipt: ClaimedReceipt, preloaded: Promise<Map<string, LoadedConnection | BridgeError>>): Promise<void> => {
    const release = await semaphore.acquire()
    const stopTimer = metrics.webhookProcessDurationSeconds.startTimer({ source: receipt.provider })
    try {
      const provider = options.providers[receipt.provider]
      if (provider === undefined) throw new BridgeError('BB_NO_CONNECTION', `${receipt.provider} is not configured`)
      const connection = (await preloaded).get(receipt.providerUserId)
      if (connection instanceof BridgeError) throw connection
      if (connection?.status !== 'active') throw new BridgeError('BB_NO_CONNECTION', 'no active connection for this provider user')
      const changes = await provider.handle(receipt, authorizedApi(provider, connection, priorityOf(receipt)))
      await commit(receipt, connection, changes)
    } catch (error) {
      // Abandoned by a stop: not a failure of the receipt; stop() gives its lease back.
      if (abandon.signal.aborted) return
      try {
        await fail(receipt, error)
      } catch (storageError) {
        // The receipt stays leased and pending: another claim after the lease retries it.
        logger.warn({ receipt: receipt.id, err: describeError(storageError) }, 'could not record a receipt failure')
      }
    } finally {
      stopTimer()
      release()
    }
  }

  const housekeeping = async (): Promise<void> => {
    const nowMs = options.now()
    if (nowMs - lastHousekeepingAt >= HOUSEKEEPING_EVERY_MS) {
      lastHousekeepingAt = nowMs
      metrics.receiptBacklog.set(await pendingReceiptCount(db, options.backlogCountLimit))
    }
    if (nowMs - lastPruneAt >= PRUNE_EVERY_MS) {
      lastPruneAt = nowMs
      await pruneFinishedReceipts(db, options.retentionMs, 10_000)
    }
  }

  const run = async (): Promise<void> => {
    while (running) {
      try {
        await housekeeping()
        const free = semaphore.available - semaphore.waiting
        if (free <= 0) {
          await idle.pause(options.idlePollMs)
          continue
        }
        const claimed = await claimDueReceipts(db, providers, free, options.leaseMs)
        // One query for the connections of the whole claim, not one per receipt.
        const connections = new Map<ReceiptProvider, Promise<Map<string, LoadedConnection | BridgeError>>>()
        for (const provider of new Set(claimed.map((receipt) => receipt.provider))) {
          const loading = loadConnectionsByProviderUsers(db, options.cipher, provider,
            claimed.filter((receipt) => receipt.provider === provider).map((receipt) => receipt.providerUserId))
          loading.catch(() => {})
          connections.set(provider, loading)
        }
        for (const receipt of claimed) {
          const task = work(receipt, connections.get(receipt.provider)!).finally(() => {
            inProgress.delete(receipt.id)
            idle.wake()
          })
          inProgress.set(receipt.id, task)
        }
        if (claimed.length === 0) await idle.pause(options.idlePollMs)
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'claiming receipts failed; retrying')
        await idle.pause(Math.max(options.idlePollMs, 1000))
      }
    }
  }

  return {
    start() {
      if (running || providers.length === 0 || options.concurrency === 0) return
      running = true
      loop = run()
    },
    notify() {
      idle.wake()
    },
    async stop(drainMs = 10_000) {
      if (!running) return
      running = false
      idle.wake()
      await loop
      const drained = await Promise.race([
        Promise.allSettled([...inProgress.values()]).then(() => true),
        sleep(drainMs, undefined, { ref: false }).then(() => false)
      ])
      if (!drained) {
        const unfinished = [...inProgress.keys()]
        abandon.abort()
        await Promise.allSettled([...inProgress.values()])
        await releaseReceipts(db, unfinished).catch((error: unknown) => {
          logger.warn({ err: describeError(error), receipts: unfinished.length }, 'could not give receipts back; they return after their lease')
        })
        logger.warn({ receipts: unfinished.length }, 'stopped with receipts in progress; they stay pending for the next worker')
      }
    }
  }
}
