import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { migrate } from '../../src/storage/migrate.ts'
import { insertReceipts, pendingReceiptCount, type NewReceipt } from '../../src/storage/receipts-repository.ts'
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
  })
}
