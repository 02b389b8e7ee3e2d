/**
 * Workload of the Kafka benchmark: realistic events of many users, built by the bridge's own HealthKit
 * normalizer and event builder from the HealthKit benchmark's sample mix, and the outbox rows the bridge writes
 * for them.
 */
import { buildEvent } from '../../src/domain/build-event.ts'
import type { BiometricEvent } from '../../src/domain/event.ts'
import { normalizeNativeSample } from '../../src/providers/healthkit/native.ts'
import type { Queryable } from '../../src/storage/database.ts'
import { upsertEventsWithOutbox } from '../../src/storage/events-repository.ts'
import { freshUuidPrefix, sample } from '../healthkit/workload.ts'

export const userIdOf = (index: number): string => `bench-user-${String(index).padStart(5, '0')}`

/** `count` new events of one user, as one HealthKit upload of theirs would produce them. */
export function userEvents(userId: string, count: number, nowMs = Date.now()): BiometricEvent[] {
  const prefix = freshUuidPrefix()
  const origin = { userId, source: 'healthkit' as const, ingestedAt: new Date(nowMs).toISOString() }
  const events: BiometricEvent[] = []
  for (let i = 0; events.length < count; i++) {
    const outcome = normalizeNativeSample(sample(`${prefix}${String(i).padStart(12, '0')}`, i))
    if (outcome.kind !== 'drafts') throw new Error(`workload sample not accepted: ${JSON.stringify(outcome)}`)
    for (const draft of outcome.drafts) {
      const built = buildEvent(draft, origin, { nowMs })
      if (!built.ok) throw new Error(`workload sample rejected: ${built.rejection.code}`)
      if (events.length < count) events.push(built.event)
    }
  }
  return events
}

/**
 * Fills the outbox with `users × perUser` events through the bridge's own bulk write (events upsert + outbox rows
 * in one statement), ten users' uploads per statement, two statements in flight. Untimed preparation.
 */
export async function prefillOutbox(db: Queryable, users: number, perUser: number): Promise<void> {
  const usersPerStatement = Math.max(1, Math.floor(1000 / perUser))
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < users) {
      const from = next
      next = Math.min(users, next + usersPerStatement)
      const events: BiometricEvent[] = []
      for (let user = from; user < next; user++) events.push(...userEvents(userIdOf(user), perUser))
      const written = await upsertEventsWithOutbox(db, events)
      if (written.size !== events.length) throw new Error(`prefill wrote ${written.size} of ${events.length} events`)
    }
  }
  await Promise.all([worker(), worker()])
}
