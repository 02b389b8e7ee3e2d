import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { insertDeadLetter, listDeadLetters, markReplayed } from '../../src/storage/dlq-repository.ts'
import type { Database } from '../../src/storage/database.ts'
import { migrate } from '../../src/storage/migrate.ts'
import {
  acquireLeases, markPublished, pendingCount, pendingRows, pruneFinished, recordAttemptFailure, releaseLeases
} from '../../src/storage/outbox-repository.ts'
import { ADAPTERS, openTestDatabase } from '../helpers/services.ts'

async function addOutboxRows(db: Database, userId: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    await db.query(`INSERT INTO outbox (event_id, user_id, op, payload) VALUES (gen_random_uuid(), $1, 'upsert', $2)`,
      [userId, JSON.stringify({ n: index })])
  }
}

async function laneOf(db: Database, userId: string): Promise<number> {
  const { rows } = await db.query<{ lane: number }>('SELECT (hashtext($1) & 15)::int AS lane', [userId])
  return Number(rows[0]!.lane)
}

for (const adapter of ADAPTERS) {
  describe(`outbox and dead-letter repositories (${adapter})`, () => {
    test('leases: one holder per lane until it expires or is released', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const first = await acquireLeases(db, 'node-a', 60_000)
      assert.deepEqual(first, Array.from({ length: 16 }, (_, lane) => lane), 'alone, a node takes every lane')
      assert.deepEqual(await acquireLeases(db, 'node-b', 60_000), [], 'held lanes are not taken')
      const halfOfA = await acquireLeases(db, 'node-a', 60_000)
      assert.deepEqual(halfOfA, [0, 1, 2, 3, 4, 5, 6, 7], 'with a second node seen, the holder keeps its share and gives back the rest')
      assert.deepEqual(await acquireLeases(db, 'node-b', 60_000), [8, 9, 10, 11, 12, 13, 14, 15], 'which the newcomer takes')
      await acquireLeases(db, 'node-c', 60_000)
      assert.equal((await acquireLeases(db, 'node-a', 60_000)).length, 6, 'three nodes: ⌈16 / 3⌉ each at most')
      assert.equal((await acquireLeases(db, 'node-b', 60_000)).length, 6)
      assert.equal((await acquireLeases(db, 'node-c', 60_000)).length, 4, 'the last one takes what is left')
      const { rows } = await db.query<{ n: number }>('SELECT count(DISTINCT lane)::int AS n FROM relay_leases WHERE holder IS NOT NULL')
      assert.equal(rows[0]?.n, 16, 'every lane has exactly one holder')

      await releaseLeases(db, 'node-c')
      await releaseLeases(db, 'node-b')
      await db.query(`UPDATE relay_leases SET expires_at = now() - interval '1 second' WHERE lane < 4`)
      assert.equal((await acquireLeases(db, 'node-a', 60_000)).length, 16, 'released and expired lanes are free at once; alone again, it takes all')
    })

    test('pending rows come per lane in commit order; published and dead-lettered rows leave the queue', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      await addOutboxRows(db, 'user-one', 5)
      await addOutboxRows(db, 'user-two', 3)
      const lane = await laneOf(db, 'user-one')
      const rows = await pendingRows(db, lane, 100)
      const mine = rows.filter((row) => row.userId === 'user-one')
      assert.deepEqual(mine.map((row) => (JSON.parse(row.payload) as { n: number }).n), [0, 1, 2, 3, 4])
      assert.deepEqual(rows.map((row) => Number(row.id)), rows.map((row) => Number(row.id)).sort((a, b) => a - b), 'id order')
      assert.equal((await pendingRows(db, lane, 2)).length, 2, 'limit')
      assert.equal(await pendingCount(db), 8)

      await markPublished(db, mine.slice(0, 2).map((row) => row.id))
      assert.equal(await pendingCount(db), 6)
      assert.equal(await recordAttemptFailure(db, mine[2]!.id, 'rejected'), 1)
      assert.equal(await recordAttemptFailure(db, mine[2]!.id, 'rejected'), 2)
      const letterId = await db.transaction((tx) => insertDeadLetter(tx, {
        outboxId: mine[2]!.id, originalTopic: 'topic', messageKey: 'user-one', payload: mine[2]!.payload,
        headers: { event_id: 'e' }, errorMessage: 'broker rejected the message (MESSAGE_TOO_LARGE)', retryCount: 2, dlqPublished: true
      }))
      assert.equal(await pendingCount(db), 5)
      const next = (await pendingRows(db, lane, 100)).filter((row) => row.userId === 'user-one')
      assert.deepEqual(next.map((row) => (JSON.parse(row.payload) as { n: number }).n), [3, 4])

      const letters = await listDeadLetters(db, { limit: 10 })
      assert.equal(letters.length, 1)
      assert.equal(letters[0]!.id, letterId)
      assert.deepEqual(letters[0]!.headers, { event_id: 'e' })
      assert.equal(letters[0]!.replayedAt, null)
      assert.equal((await listDeadLetters(db, { limit: 10, sinceMs: Date.now() + 60_000 })).length, 0, 'time filter')
      assert.equal((await listDeadLetters(db, { limit: 10, ids: ['999'] })).length, 0, 'id filter')
      await markReplayed(db, letterId)
      assert.equal((await listDeadLetters(db, { limit: 10, pendingOnly: true })).length, 0)
      assert.notEqual((await listDeadLetters(db, { limit: 10, ids: [letterId] }))[0]!.replayedAt, null)

      assert.equal(await pruneFinished(db, 3_600_000, 100), 0, 'recent rows are kept for inspection')
      assert.equal(await pruneFinished(db, 0, 100), 3, 'finished rows older than the retention go')
      assert.equal(await pendingCount(db), 5)
    })
  })
}
