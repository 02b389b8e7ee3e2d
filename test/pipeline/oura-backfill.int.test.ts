import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OURA_DATA_TYPES } from '../../src/providers/oura/documents.ts'
import { buildOuraApp, connectOura, drainReceipts, receiptStatuses, startTestOuraSimulator } from '../helpers/oura.ts'
import { ADAPTERS } from '../helpers/services.ts'

for (const adapter of ADAPTERS) {
  describe(`Oura backfill (${adapter})`, () => {
    test('connecting fetches BACKFILL_DAYS of every collection, page by page, and heart rate', async (t) => {
      // Pages of 2 documents force the bridge through next_token on every collection.
      const sim = await startTestOuraSimulator(t, { pageSize: 2, heartRatePageSize: 200 })
      sim.addUser({ userId: 'oura-backfill-user', days: 5 })
      const harness = await buildOuraApp(t, adapter, sim, { BACKFILL_DAYS: '10' })
      if (harness === undefined) return
      const { app } = harness
      await connectOura(harness, 'backfill-user', 'oura-backfill-user')
      await drainReceipts(app.db)
      assert.deepEqual(await receiptStatuses(app.db), { done: OURA_DATA_TYPES.length + 1 })

      const documentIds = OURA_DATA_TYPES.flatMap((dataType) => sim.documents('oura-backfill-user', dataType).map((doc) => doc.id))
      const { rows } = await app.db.query<{ source_record_id: string }>(
        "SELECT DISTINCT source_record_id FROM events WHERE user_id = 'backfill-user' AND source = 'oura' AND context IS DISTINCT FROM ''")
      const stored = new Set(rows.map((row) => row.source_record_id))
      const missing = documentIds.filter((id) => !stored.has(id))
      assert.deepEqual(missing, [], 'every document of the history is stored')
      assert.ok(sim.requestCount('GET /v2/usercollection/sleep') > 1, 'the sleep collection was paged')

      const heartRate = sim.heartRate('oura-backfill-user').filter((row) => row.bpm !== null)
      const { rows: hr } = await app.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM events WHERE user_id = 'backfill-user' AND metric = 'heart_rate' AND context = ''")
      assert.equal(hr[0]?.n, heartRate.length, 'every heart-rate row is stored once')
      assert.ok(sim.requestCount('GET /v2/usercollection/heartrate') > 1, 'heart rate was paged')
    })
  })
}
