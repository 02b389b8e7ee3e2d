import assert from 'node:assert/strict'
import type { Queryable } from '../../src/storage/database.ts'
import type { ConsumedMessage } from './kafka.ts'

/**
 * The loss checker of the fault tests (a reduced Jepsen-style history check): senders record what they sent
 * and what they were told, and at the end the checker reconciles that history with PostgreSQL and, when the
 * test publishes, with the Kafka topic.
 *
 * - lost: acknowledged (2xx) but not stored, or stored but never published;
 * - duplicated: one sample stored as more than one row, or a sample stored that was never sent;
 * - corrupted: stored or published with a value other than the one sent, or two messages with the same
 *   event_id and different bodies (at-least-once delivery may repeat a message, never change it).
 *
 * Unacknowledged samples (5xx, reset connection, timeout) may or may not be stored: the sender did not learn
 * the outcome and must retry; the checker only requires that such an upload is stored whole or not at all.
 */
export interface SentSample {
  userId: string
  /** HealthKit uuid or provider document id: the event's source_record_id. */
  recordId: string
  /** Canonical value the event must carry. */
  value: number
}

export interface Reconciliation {
  sent: number
  acknowledged: number
  stored: number
  lost: string[]
  duplicated: string[]
  corrupted: string[]
  /** Unacknowledged uploads that were partly stored (violates "whole or nothing"). */
  torn: string[]
  published?: { messages: number, distinctEvents: number, repeats: number, lost: string[], corrupted: string[] }
}

interface StoredRow {
  event_id: string
  user_id: string
  source_record_id: string
  value: number
}

export class DeliveryChecker {
  private readonly sent = new Map<string, SentSample>()
  private readonly acked = new Set<string>()
  /** Upload attempts that got no 2xx, as groups of record keys (each must be stored whole or not at all). */
  private readonly unacknowledgedUploads: string[][] = []
  readonly source: string
  /**
   * Only rows of these metrics count. A provider document yields one row per metric; the checker follows the one
   * metric each sent document must carry (e.g. an Oura daily_readiness → recovery_score), so one record = one row.
   */
  readonly metrics: readonly string[] | undefined

  constructor(source = 'healthkit', options: { metrics?: readonly string[] } = {}) {
    this.source = source
    this.metrics = options.metrics
  }

  private static key(userId: string, recordId: string): string {
    return `${userId}\u0000${recordId}`
  }

  /** Records an upload attempt and its outcome; call once per attempt, retries included. */
  record(samples: readonly SentSample[], acknowledged: boolean): void {
    const keys = samples.map((sample) => DeliveryChecker.key(sample.userId, sample.recordId))
    samples.forEach((sample, index) => this.sent.set(keys[index]!, sample))
    if (acknowledged) for (const key of keys) this.acked.add(key)
    else this.unacknowledgedUploads.push(keys)
  }

  get acknowledgedCount(): number {
    return this.acked.size
  }

  private users(): string[] {
    return [...new Set([...this.sent.values()].map((sample) => sample.userId))]
  }

  /** Reads what PostgreSQL holds for the senders' users and compares it with the history. */
  async reconcile(db: Pick<Queryable, 'query'>, published?: readonly ConsumedMessage[]): Promise<Reconciliation> {
    const { rows } = await db.query<StoredRow>(
      `SELECT event_id::text AS event_id, user_id, source_record_id, value FROM events
       WHERE source = $1 AND user_id = ANY($2::text[]) AND ($3::text[] IS NULL OR metric = ANY($3::text[]))`,
      [this.source, this.users(), this.metrics === undefined ? null : [...this.metrics]]
    )
    const storedByKey = new Map<string, StoredRow[]>()
    for (const row of rows) {
      const key = DeliveryChecker.key(row.user_id, row.source_record_id)
      storedByKey.set(key, [...(storedByKey.get(key) ?? []), row])
    }
    const result: Reconciliation = {
      sent: this.sent.size, acknowledged: this.acked.size, stored: rows.length, lost: [], duplicated: [], corrupted: [], torn: []
    }
    for (const key of this.acked) if (!storedByKey.has(key)) result.lost.push(readable(key))
    for (const [key, stored] of storedByKey) {
      const sample = this.sent.get(key)
      if (sample === undefined || stored.length > 1) {
        result.duplicated.push(readable(key))
        continue
      }
      if (!sameValue(stored[0]!.value, sample.value)) result.corrupted.push(readable(key))
    }
    for (const upload of this.unacknowledgedUploads) {
      const storedCount = upload.filter((key) => storedByKey.has(key)).length
      // A later acknowledged retry of the same samples makes a partial look whole; only unretried uploads count.
      if (storedCount > 0 && storedCount < upload.length && !upload.every((key) => this.acked.has(key))) {
        result.torn.push(readable(upload[0]!))
      }
    }
    if (published !== undefined) result.published = reconcileTopic(rows, published)
    return result
  }
}

function reconcileTopic(rows: readonly StoredRow[], messages: readonly ConsumedMessage[]): NonNullable<Reconciliation['published']> {
  const bodies = new Map<string, string>()
  const corrupted = new Set<string>()
  let repeats = 0
  for (const message of messages) {
    const eventId = message.headers.event_id
    if (eventId === undefined) continue
    const previous = bodies.get(eventId)
    if (previous === undefined) bodies.set(eventId, message.value)
    else {
      repeats++
      if (previous !== message.value) corrupted.add(eventId)
    }
  }
  const lost: string[] = []
  for (const row of rows) {
    const body = bodies.get(row.event_id)
    if (body === undefined) {
      lost.push(row.event_id)
      continue
    }
    const event = JSON.parse(body) as { value?: unknown, source_record_id?: unknown }
    if (event.source_record_id !== row.source_record_id || typeof event.value !== 'number' || !sameValue(event.value, row.value)) {
      corrupted.add(row.event_id)
    }
  }
  return { messages: messages.length, distinctEvents: bodies.size, repeats, lost, corrupted: [...corrupted] }
}

function sameValue(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))
}

function readable(key: string): string {
  return key.replace('\u0000', '/')
}

/** Fails the test unless the history reconciles with zero loss, duplication, corruption or torn uploads. */
export function assertNothingLost(result: Reconciliation, options: { requireAcknowledged?: number } = {}): void {
  const sample = (list: readonly string[]): string => list.slice(0, 5).join(', ')
  assert.ok(result.acknowledged >= (options.requireAcknowledged ?? 1), `the load was acknowledged (${result.acknowledged} samples)`)
  assert.equal(result.lost.length, 0, `lost after 2xx: ${result.lost.length} (${sample(result.lost)})`)
  assert.equal(result.duplicated.length, 0, `duplicated or never sent: ${sample(result.duplicated)}`)
  assert.equal(result.corrupted.length, 0, `stored with another value: ${sample(result.corrupted)}`)
  assert.equal(result.torn.length, 0, `unacknowledged uploads stored in part: ${sample(result.torn)}`)
  if (result.published !== undefined) {
    assert.equal(result.published.lost.length, 0, `stored but never published: ${result.published.lost.length} (${sample(result.published.lost)})`)
    assert.equal(result.published.corrupted.length, 0, `published with another body: ${sample(result.published.corrupted)}`)
  }
}
