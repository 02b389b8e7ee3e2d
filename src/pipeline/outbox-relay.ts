import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { deadLetterMessage, eventMessage } from '../bus/messages.ts'
import { SendFailure, type BusMessage, type Publisher } from '../bus/publisher.ts'
import type { Logger } from '../lib/logger.ts'
import { createWakeablePause } from '../lib/wakeable-pause.ts'
import { describeError } from '../lib/logger.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { Database } from '../storage/database.ts'
import { insertDeadLetter } from '../storage/dlq-repository.ts'
import {
  acquireLeases, lanesWithPending, markPublished, pendingCount, pendingRows, pruneFinished, recordAttemptFailure, releaseLeases,
  type OutboxRow
} from '../storage/outbox-repository.ts'

export interface RelayOptions {
  topic: string
  dlqTopic: string
  /** Outbox rows published per lane and round. */
  batchSize: number
  /** Lease lifetime; a node that stops renewing loses its lanes after this long. */
  leaseTtlMs: number
  /** Pause between checks when there is nothing to publish (commits on this node wake the relay at once). */
  idlePollMs: number
  /** Cap of the backoff while the broker is unavailable. */
  maxBackoffMs: number
  /** Attempts of a message the broker keeps rejecting before it is dead-lettered. */
  maxAttempts: number
  /** How long published rows stay in the outbox (for inspection) before they are pruned. */
  retentionMs: number
}

export const DEFAULT_RELAY_OPTIONS: Omit<RelayOptions, 'topic' | 'dlqTopic'> = {
  batchSize: 1000,
  leaseTtlMs: 15_000,
  idlePollMs: 50,
  maxBackoffMs: 5_000,
  maxAttempts: 3,
  retentionMs: 3_600_000
}

export interface RelayState {
  state: 'up' | 'degraded'
  detail: string
}

export interface OutboxRelay {
  start: () => void
  /** Wakes the relay after a commit on this node, so publishing does not wait for the next poll. */
  notify: () => void
  /** Finishes the round in progress, releases the leases and stops. */
  stop: () => Promise<void>
  state: () => RelayState
}

interface RelayDeps {
  db: Database
  publisher: Publisher
  metrics: Metrics
  logger: Logger
  options: RelayOptions
}

const BACKLOG_REFRESH_MS = 5_000
const PRUNE_EVERY_MS = 60_000

/**
 * Publishes the transactional outbox to Kafka. Work is split into lanes by user (migration 0002); a node
 * publishes only lanes it holds a lease on, one batch per lane at a time, in id order — so each user's events
 * reach the topic in commit order, also with several nodes. A row is marked published only after the broker
 * acknowledged it. Guarantee: at least once; a node that stalls past its lease while a send is in flight can
 * repeat messages another node also sent (same event_id), never lose one.
 */
export function createOutboxRelay(deps: RelayDeps): OutboxRelay {
  const { db, publisher, metrics, logger, options } = deps
  // Names the node in relay_leases, so an operator can see who publishes which lanes.
  const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  let running = false
  let loop: Promise<void> | undefined
  // A commit on this node ends the idle pause at once (or skips the next one if it arrives mid-round).
  const idle = createWakeablePause()
  let state: RelayState = { state: 'up', detail: 'starting' }
  let topicsReady = false
  let lastBacklogAt = 0
  let lastPruneAt = Date.now()

  const setState = (next: RelayState, cause?: unknown): void => {
    if (next.state !== state.state) {
      if (next.state === 'degraded') logger.warn({ detail: next.detail, err: describeError(cause) }, 'outbox relay degraded: events stay in the outbox until it recovers')
      else logger.info('kafka reachable again: publishing the outbox')
    }
    state = next
  }


  const deadLetter = async (row: OutboxRow, message: BusMessage, reason: 'serialization' | 'rejected', errorMessage: string): Promise<void> => {
    const failedAt = new Date()
    let dlqPublished = true
    try {
      await publisher.send([deadLetterMessage(options.dlqTopic, message, errorMessage, row.attempts, failedAt)])
    } catch (error) {
      // The table keeps the letter either way; an operator can replay it from there.
      dlqPublished = false
      logger.warn({ outboxId: row.id, err: describeError(error) }, 'dead letter kept in the table only: DLQ topic refused it')
    }
    await db.transaction(async (tx) => {
      await insertDeadLetter(tx, {
        outboxId: row.id, originalTopic: message.topic, messageKey: message.key, payload: message.value,
        headers: message.headers, errorMessage, retryCount: row.attempts, dlqPublished
      })
    })
    metrics.dlqMessagesTotal.inc({ reason })
    logger.warn({ outboxId: row.id, reason }, 'message dead-lettered')
  }

  /**
   * Publishes one batch of a lane; returns the number of rows finished (published or dead-lettered). All of a
   * full batch finished means the lane may hold more right behind it.
   */
  const publishBatch = async (lane: number): Promise<{ finished: number, fetched: number }> => {
    const rows = await pendingRows(db, lane, options.batchSize)
    if (rows.length === 0) return { finished: 0, fetched: 0 }
    const finishedOf = (count: number): { finished: number, fetched: number } => ({ finished: count, fetched: rows.length })
    const sendable: Array<{ row: OutboxRow, message: BusMessage }> = []
    let finished = 0
    for (const row of rows) {
      const message = eventMessage(options.topic, row.userId, row.payload)
      if (message === undefined) {
        await deadLetter(row, { topic: options.topic, key: row.userId, value: row.payload, headers: {} }, 'serialization', 'payload is not a biometric event')
        finished++
      } else {
        sendable.push({ row, message })
      }
    }
    try {
      await publisher.send(sendable.map((entry) => entry.message))
      await markPublished(db, sendable.map((entry) => entry.row.id))
      metrics.kafkaMessagesPublishedTotal.inc({ topic: options.topic }, sendable.length)
      return finishedOf(finished + sendable.length)
    } catch (error) {
      if (!(error instanceof SendFailure) || error.kind !== 'rejected') throw error
    }
    // Something in the batch was refused: send one by one, in order, to find it. Later messages of the lane
    // wait until the culprit is retried or dead-lettered, so per-user order holds.
    for (const { row, message } of sendable) {
      try {
        await publisher.send([message])
        await markPublished(db, [row.id])
        metrics.kafkaMessagesPublishedTotal.inc({ topic: options.topic })
        finished++
      } catch (error) {
        if (!(error instanceof SendFailure) || error.kind !== 'rejected') throw error
        const attempts = await recordAttemptFailure(db, row.id, error.message)
        if (attempts < options.maxAttempts) break
        await deadLetter({ ...row, attempts }, message, 'rejected', error.message)
        finished++
      }
    }
    return finishedOf(finished)
  }

  /**
   * Works off a lane batch after batch, one at a time and in id order, for as long as batches come back full and
   * finished, until `untilMs` (the next lease renewal) or until another lane of the round failed. Lanes do this
   * independently of each other: a lane with a backlog does not wait for the slowest lane after every batch.
   */
  const drainLane = async (lane: number, untilMs: number, round: { failed: boolean }): Promise<number> => {
    let total = 0
    try {
      while (running && !round.failed) {
        const { finished, fetched } = await publishBatch(lane)
        total += finished
        if (fetched < options.batchSize || finished < fetched || Date.now() >= untilMs) break
      }
    } catch (error) {
      round.failed = true
      throw error
    }
    return total
  }

  const housekeeping = async (): Promise<void> => {
    const nowMs = Date.now()
    if (nowMs - lastBacklogAt >= BACKLOG_REFRESH_MS) {
      lastBacklogAt = nowMs
      metrics.outboxBacklog.set(await pendingCount(db))
    }
    if (nowMs - lastPruneAt >= PRUNE_EVERY_MS) {
      lastPruneAt = nowMs
      await pruneFinished(db, options.retentionMs, 10_000)
    }
  }

  const run = async (): Promise<void> => {
    let backoffMs = 0
    let lanes: number[] = []
    let leaseRenewedAt = 0
    while (running) {
      try {
        if (!topicsReady) {
          await publisher.ensureTopics([options.topic, options.dlqTopic])
          topicsReady = true
        }
        // Renew at a third of the lease, so a lease never lapses while this node is healthy.
        if (Date.now() - leaseRenewedAt >= options.leaseTtlMs / 3) {
          lanes = await acquireLeases(db, holder, options.leaseTtlMs)
          leaseRenewedAt = Date.now()
        }
        await housekeeping()
        // A lane keeps publishing full batches until the next renewal is due: its last send still starts within
        // a third of the lease, as a round's only send did before, so it finishes well inside the lease. The round
        // ends only when every lane has settled, so a lane is never worked by two rounds at once.
        const untilMs = leaseRenewedAt + options.leaseTtlMs / 3
        const round = { failed: false }
        const busy = await lanesWithPending(db, lanes)
        const outcomes = await Promise.allSettled(busy.map((lane) => drainLane(lane, untilMs, round)))
        const failure = outcomes.find((outcome) => outcome.status === 'rejected')
        if (failure !== undefined) throw failure.reason
        const published = outcomes.reduce((sum, outcome) => sum + (outcome.status === 'fulfilled' ? outcome.value : 0), 0)
        setState({ state: 'up', detail: `holding ${lanes.length} of 16 lanes` })
        backoffMs = 0
        if (published === 0) await idle.pause(options.idlePollMs)
      } catch (error) {
        backoffMs = Math.min(options.maxBackoffMs, Math.max(100, backoffMs * 2))
        setState({ state: 'degraded', detail: error instanceof SendFailure ? error.message : 'outbox relay failing' }, error)
        logger.debug({ err: describeError(error), backoffMs }, 'outbox relay round failed')
        await idle.pause(backoffMs)
      }
    }
  }

  return {
    start() {
      if (running) return
      running = true
      loop = run()
    },
    notify() {
      idle.wake()
    },
    async stop() {
      if (!running) return
      running = false
      idle.wake()
      await loop
      await releaseLeases(db, holder).catch(() => {})
    },
    state: () => state
  }
}
