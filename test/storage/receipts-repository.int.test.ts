import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { migrate } from '../../src/storage/migrate.ts'
import { claimDueReceipts, insertReceipts, pendingReceiptCount, type NewReceipt } from '../../src/storage/receipts-repository.ts'
import { ADAPTERS, openTestDatabase } from '../helpers/services.ts'

const receipt = (dedupKey: string, overrides: Partial<NewReceipt> = {}): NewReceipt => ({
  provider: 'oura', dedupKey, eventType: 'update', dataType: 'sleep', objectId: `doc-${dedupKey}`,
  providerUserId: 'oura-user', status: 'pending', ...overrides
})

for (const adapter of ADAPTERS) {
  describe(`receipts repository (${adapter})`, () => {
    test('a multi-row insert reports per receipt whether it was new, also for a key repeated within the batch', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      assert.deepEqual(await insertReceipts(db, [receipt('a'), receipt('b')]), [true, true])
      assert.deepEqual(await insertReceipts(db, [receipt('b'), receipt('c'), receipt('c'), receipt('a', { provider: 'whoop' })]),
        [false, true, false, true], 'stored before; new; its duplicate in the same batch; same key of another provider')
      assert.deepEqual(await insertReceipts(db, []), [])
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_receipts')
      assert.equal(rows[0]?.n, 4)
    })

    test('the backlog count covers live pending receipts only and stops at its limit', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      await insertReceipts(db, [
        ...Array.from({ length: 5 }, (_, i) => receipt(`live-${i}`)),
        receipt('ignored', { status: 'ignored' }),
        receipt('backfill', { priority: 2 })
      ])
      assert.equal(await pendingReceiptCount(db), 5)
      assert.equal(await pendingReceiptCount(db, 3), 3)
    })

    test('a claim reads what it claims, not the whole backlog, also on a table without statistics', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const backlog = 5000
      await insertReceipts(db, [
        ...Array.from({ length: backlog }, (_, i) => receipt(`live-${i}`)),
        ...Array.from({ length: 10 }, (_, i) => receipt(`backfill-${i}`, { priority: 2 }))
      ])
      const { rows: analyzed } = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_statistic WHERE starelid = 'webhook_receipts'::regclass")
      assert.equal(analyzed[0]!.n, 0, 'no statistics: the state of a new database, or of a server with autovacuum off')

      const claimed = await db.transaction(async (tx) => {
        // Rows this transaction fetched from webhook_receipts through index and bitmap scans, so far.
        const fetched = async (): Promise<number> => Number((await tx.query<{ n: string }>(
          "SELECT pg_stat_get_xact_tuples_fetched('webhook_receipts'::regclass)::text AS n")).rows[0]!.n)
        const before = await fetched()
        const receipts = await claimDueReceipts(tx, ['oura'], 40, 60_000)
        return { receipts, fetchedRows: (await fetched()) - before }
      })
      assert.equal(claimed.receipts.length, 40)
      assert.ok(claimed.receipts.every((r) => r.priority === 0), 'live receipts before backfill')
      // Walking the due index in order: the 40 claimed rows, then each again by primary key for the update.
      // A plan that reads every pending receipt and sorts them fetches the whole backlog.
      assert.ok(claimed.fetchedRows <= 200, `fetched ${claimed.fetchedRows} rows to claim 40 of ${backlog}`)
    })
  })
}
