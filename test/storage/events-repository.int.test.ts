import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { eventIdFor, type BiometricEvent } from '../../src/domain/event.ts'
import type { Database } from '../../src/storage/database.ts'
import { upsertEventsWithOutbox } from '../../src/storage/events-repository.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { ADAPTERS, openTestDatabase } from '../helpers/services.ts'

const USER = 'user-events-repo'

function event(record: string, value: number, sourceUpdatedAt: string | null): BiometricEvent {
  return {
    event_id: eventIdFor({ userId: USER, source: 'oura', sourceRecordId: record, metric: 'heart_rate', context: null }),
    schema_version: 1,
    user_id: USER,
    source: 'oura',
    device_type: 'oura_ring',
    metric: 'heart_rate',
    value,
    unit: 'bpm',
    start: '2026-01-06T22:00:00.000+01:00',
    end: '2026-01-06T22:05:00.000+01:00',
    context: null,
    source_record_id: record,
    source_updated_at: sourceUpdatedAt,
    op: 'upsert',
    ingested_at: '2026-01-07T08:00:00.000Z'
  }
}

const stored = async (db: Database): Promise<Map<string, { value: number, locked: boolean }>> => {
  // xmax is the id of the last transaction that deleted or locked the row version; 0 when none did.
  const { rows } = await db.query<{ source_record_id: string, value: number, locked: boolean }>(
    `SELECT source_record_id, value, xmax::text <> '0' AS locked FROM events WHERE user_id = $1`, [USER])
  return new Map(rows.map((row) => [row.source_record_id, { value: Number(row.value), locked: row.locked }]))
}

const outboxRows = async (db: Database): Promise<number> => {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE user_id = $1', [USER])
  return rows[0]!.n
}

for (const adapter of ADAPTERS) {
  describe(`events repository (${adapter})`, () => {
    for (const skipStored of [false, true]) {
      test(`revision rule${skipStored ? ', probing stored rows first' : ''}: newer or changed rows win, stale and identical ones announce nothing`, async (t) => {
        const db = await openTestDatabase(t, adapter)
        if (db === undefined) return
        await migrate(db)
        const first = [event('same', 60, null), event('newer', 61, '2026-01-07T06:00:00Z'), event('older', 62, '2026-01-07T06:00:00Z'),
          event('changed', 63, null)]
        assert.equal((await upsertEventsWithOutbox(db, first, { skipStored })).size, 4)

        const again = [event('same', 60, null), event('newer', 71, '2026-01-07T07:00:00Z'), event('older', 72, '2026-01-07T05:00:00Z'),
          event('changed', 73, null), event('fresh', 74, null)]
        const written = await upsertEventsWithOutbox(db, again, { skipStored })
        assert.deepEqual([...written].sort(), [again[1]!, again[3]!, again[4]!].map((e) => e.event_id).sort(),
          'the newer revision, the changed value at the same revision and the new row')
        const rows = await stored(db)
        assert.deepEqual([...rows].map(([record, row]) => [record, row.value]).sort(),
          [['changed', 73], ['fresh', 74], ['newer', 71], ['older', 62], ['same', 60]])
        assert.equal(await outboxRows(db), 4 + 3)
      })
    }

    test('probing stored rows first leaves the unchanged ones unlocked (no lock, no WAL record for them)', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const events = [event('a', 60, null), event('b', 61, null)]
      await upsertEventsWithOutbox(db, events)

      assert.equal((await upsertEventsWithOutbox(db, events, { skipStored: true })).size, 0)
      assert.deepEqual([...(await stored(db)).values()].map((row) => row.locked), [false, false])

      // The plain upsert, by contrast, locks every conflicting row even when it leaves it alone.
      assert.equal((await upsertEventsWithOutbox(db, events)).size, 0)
      assert.deepEqual([...(await stored(db)).values()].map((row) => row.locked), [true, true])
      assert.equal(await outboxRows(db), 2)
    })
  })
}
