import type { EventCache } from '../cache/cache.ts'
import type { BiometricEvent, Source } from '../domain/event.ts'
import { createBatcher } from '../lib/batcher.ts'
import type { Metrics } from '../metrics/registry.ts'
import type { Database, Queryable } from '../storage/database.ts'
import {
  deleteClearedEventsWithOutbox, deleteRecordsWithOutbox, upsertEventsWithOutbox, type CompleteRecord
} from '../storage/events-repository.ts'
import { finishReceipts } from '../storage/receipts-repository.ts'

/** Everything one worked-off receipt changes, ready to commit with it. */
export interface ReceiptOutcome {
  receiptId: string
  userId: string
  source: Source
  events: BiometricEvent[]
  /** Records whose events all go. */
  retracted: string[]
  /** Records described completely at a revision: their other events go (cleared fields). */
  complete: CompleteRecord[]
  ingestedAt: string
}

export interface ReceiptCommitter {
  /** Resolves once the receipt is `done` together with its events; rejects if that commit failed. */
  commit(outcome: ReceiptOutcome): Promise<void>
}

export interface ReceiptCommitterOptions {
  db: Database
  cache: EventCache
  metrics: Metrics
  notifyCommitted: () => void
}

type Settled = { ok: true } | { ok: false, error: unknown }

/**
 * Commits worked-off receipts in groups: the receipts finishing at about the same time share one transaction
 * (events upserted with their outbox rows, retractions, receipts marked done), so a busy worker pool pays a
 * handful of round trips per group instead of per receipt — on a small machine, each round trip to PostgreSQL
 * costs more CPU than the work itself. A receipt is still done exactly when its events are stored. If a group
 * fails, its receipts are committed one by one, so one bad receipt cannot hold the others back.
 */
export function createReceiptCommitter(options: ReceiptCommitterOptions): ReceiptCommitter {
  const { db, cache, metrics } = options

  const writeGroup = async (tx: Queryable, outcomes: readonly ReceiptOutcome[]): Promise<{ written: BiometricEvent[], removed: BiometricEvent[] }> => {
    // One row per event: when two receipts carry the same event, the newer revision goes in (the upsert keeps
    // the newest anyway; PostgreSQL refuses to touch a row twice in one statement).
    const byId = new Map<string, BiometricEvent>()
    for (const outcome of outcomes) {
      for (const event of outcome.events) {
        const held = byId.get(event.event_id)
        if (held === undefined || (event.source_updated_at ?? '') >= (held.source_updated_at ?? '')) byId.set(event.event_id, event)
      }
    }
    const events = [...byId.values()]
    // A receipt fetches its document whole, and a document announced as updated mostly repeats what is stored.
    const writtenIds = await upsertEventsWithOutbox(tx, events, { skipStored: true })
    const ingestedAt = outcomes[0]!.ingestedAt
    const removed: BiometricEvent[] = []
    for (const outcome of outcomes) {
      if (outcome.retracted.length > 0) {
        removed.push(...await deleteRecordsWithOutbox(tx, outcome.userId, outcome.source, outcome.retracted, ingestedAt))
      }
    }
    const retracted = new Set(outcomes.flatMap((outcome) => outcome.retracted.map((id) => `${outcome.userId}\n${outcome.source}\n${id}`)))
    const complete = outcomes.flatMap((outcome) => outcome.complete)
      .filter((record) => !retracted.has(`${record.userId}\n${record.source}\n${record.sourceRecordId}`))
    removed.push(...await deleteClearedEventsWithOutbox(tx, complete, ingestedAt))
    await finishReceipts(tx, outcomes.map((outcome) => outcome.receiptId), 'done')
    return { written: events.filter((event) => writtenIds.has(event.event_id)), removed }
  }

  const afterCommit = async (changes: { written: BiometricEvent[], removed: BiometricEvent[] }): Promise<void> => {
    for (const event of changes.written) metrics.biometricValues.observe({ metric_type: event.metric, device_type: event.device_type }, event.value)
    if (changes.written.length > 0 || changes.removed.length > 0) options.notifyCommitted()
    // The cache follows the commit; its failures are its own (it degrades, the data is stored).
    if (changes.written.length > 0) await cache.recordCommitted(changes.written)
    if (changes.removed.length > 0) await cache.forget(changes.removed)
  }

  const commitAlone = async (outcome: ReceiptOutcome): Promise<Settled> => {
    try {
      await afterCommit(await db.transaction((tx) => writeGroup(tx, [outcome])))
      return { ok: true }
    } catch (error) {
      return { ok: false, error }
    }
  }

  const batcher = createBatcher<ReceiptOutcome, Settled>(async (outcomes) => {
    if (outcomes.length === 1) return [await commitAlone(outcomes[0]!)]
    try {
      await afterCommit(await db.transaction((tx) => writeGroup(tx, outcomes)))
      return outcomes.map(() => ({ ok: true }))
    } catch {
      const settled: Settled[] = []
      for (const outcome of outcomes) settled.push(await commitAlone(outcome))
      return settled
    }
  }, { maxBatch: 64, maxInFlight: 2 })

  return {
    async commit(outcome) {
      const settled = await batcher.submit(outcome)
      if (!settled.ok) throw settled.error
    }
  }
}
