import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createScheduler } from '../../src/pipeline/scheduler.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { ADAPTERS, openTestDatabase } from '../helpers/services.ts'

const silent = pino({ level: 'silent' })

for (const adapter of ADAPTERS) {
  describe(`scheduler (${adapter})`, () => {
    test('runs a job once per period across nodes sharing the database', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const runs: string[] = []
      const intervalMs = 400
      const nodes = ['node-a', 'node-b', 'node-c'].map((holder) => createScheduler({
        db, logger: silent, holder, tickMs: 20,
        jobs: [{ name: 'test-job', intervalMs, run: () => { runs.push(holder); return Promise.resolve() } }]
      }))
      for (const node of nodes) node.start()
      await sleep(intervalMs * 2.5)
      await Promise.all(nodes.map((node) => node.stop()))
      // Periods start at 0, 400 and 800 ms: three runs, whichever nodes won them.
      assert.ok(runs.length >= 2 && runs.length <= 3, `runs: ${runs.join(', ')}`)
      const { rows } = await db.query<{ last_holder: string }>("SELECT last_holder FROM scheduled_jobs WHERE name = 'test-job'")
      assert.equal(rows[0]?.last_holder, runs.at(-1))
    })

    test('a failing job runs again next period', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      let attempts = 0
      const scheduler = createScheduler({
        db, logger: silent, holder: 'node', tickMs: 10,
        jobs: [{ name: 'failing', intervalMs: 50, run: () => { attempts++; return Promise.reject(new Error('provider down')) } }]
      })
      scheduler.start()
      await sleep(300)
      await scheduler.stop()
      assert.ok(attempts >= 2, `attempts: ${attempts}`)
    })

    test('stop does not wait for a hung job', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      let started = false
      const scheduler = createScheduler({
        db, logger: silent, holder: 'node', tickMs: 10,
        jobs: [{ name: 'hung', intervalMs: 60_000, run: () => { started = true; return new Promise(() => {}) } }]
      })
      scheduler.start()
      while (!started) await sleep(5)
      const stopStartedMs = performance.now()
      await scheduler.stop()
      assert.ok(performance.now() - stopStartedMs < 3000, 'stop is bounded')
    })
  })
}
