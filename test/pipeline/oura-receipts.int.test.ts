import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { OuraDataType } from '../../src/providers/oura/documents.ts'
import { OURA_RANGE_DATA_TYPES } from '../../src/providers/oura/receipts.ts'
import type { OuraDocumentsByType, OuraNotificationInput, OuraSimulator } from '../../src/simulators/oura/index.ts'
import type { Queryable } from '../../src/storage/database.ts'
import {
  OURA_USER_ID, USER_ID, deliver, finishedReceipt, outboxFor, receiptsFor, recordEvents, startReceiptBridge, startSecondNode,
  valuesByMetric, waitFor, type ReceiptBridge
} from '../helpers/oura-receipts.ts'
import { FAST_TUNING, connectOura, drainReceipts, receiptStatuses } from '../helpers/oura.ts'
import { ADAPTERS } from '../helpers/services.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

/** The user's document of `dataType` with the latest day: the template a new document is copied from. */
function newest<T extends OuraDataType>(sim: OuraSimulator, dataType: T): OuraDocumentsByType[T] {
  const documents = sim.documents(OURA_USER_ID, dataType).sort((a, b) => a.day.localeCompare(b.day))
  const last = documents.at(-1)
  assert.ok(last !== undefined, `the simulated user has ${dataType} documents`)
  return last
}

/** `+01:00` of a LocalizedDateTime (Z reads as +00:00). */
function offsetOf(timestamp: string): string {
  const zone = /(Z|[+-]\d{2}:\d{2})$/i.exec(timestamp)?.[1] ?? 'Z'
  return zone.toUpperCase() === 'Z' ? '+00:00' : zone
}

/** The provider day as the catalog defines it: `day` from `startHour` local time, 24 hours. */
function daySpan(day: string, offset: string, startHour: number): { startMs: number, endMs: number } {
  const startMs = Date.parse(`${day}T${String(startHour).padStart(2, '0')}:00:00${offset}`)
  return { startMs, endMs: startMs + DAY_MS }
}

interface Added {
  id: string
  notification: OuraNotificationInput
  /** Catalog metric → value in the catalog unit, as the design's Oura column maps the document. */
  metrics: Record<string, number>
  context: 'sleep' | 'day'
  startMs: number
  endMs: number
}

interface TypeCase {
  dataType: OuraDataType
  /** Adds a copy of the user's newest document of the type, with a new id and distinctive values. */
  add(sim: OuraSimulator): Added
}

const TYPE_CASES: readonly TypeCase[] = [
  {
    dataType: 'sleep',
    add(sim) {
      const id = randomUUID()
      const base = newest(sim, 'sleep')
      const document = {
        ...base, id, type: 'long_sleep' as const, average_hrv: 47, average_heart_rate: 58.5, lowest_heart_rate: 49, average_breath: 14.25,
        deep_sleep_duration: 4980, rem_sleep_duration: 5730, light_sleep_duration: 14_400, awake_time: 2310, total_sleep_duration: 25_110
      }
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'sleep', document), context: 'sleep',
        startMs: Date.parse(document.bedtime_start), endMs: Date.parse(document.bedtime_end),
        metrics: {
          hrv_rmssd: 47, heart_rate: 58.5, resting_heart_rate: 49, respiratory_rate: 14.25,
          deep_sleep_minutes: 4980 / 60, rem_sleep_minutes: 5730 / 60, light_sleep_minutes: 240, awake_minutes: 2310 / 60,
          total_sleep_minutes: 25_110 / 60
        }
      }
    }
  },
  {
    dataType: 'daily_sleep',
    add(sim) {
      const id = randomUUID()
      const document = { ...newest(sim, 'daily_sleep'), id, score: 83 }
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'daily_sleep', document), context: 'day',
        ...daySpan(document.day, offsetOf(document.timestamp), 0), metrics: { sleep_score: 83 }
      }
    }
  },
  {
    dataType: 'daily_readiness',
    add(sim) {
      const id = randomUUID()
      const base = newest(sim, 'daily_readiness')
      const document = {
        ...base, id, score: 77, temperature_deviation: -0.35,
        contributors: { ...base.contributors, hrv_balance: 81, body_temperature: 93, activity_balance: 64 }
      }
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'daily_readiness', document), context: 'day',
        ...daySpan(document.day, offsetOf(document.timestamp), 0),
        metrics: { recovery_score: 77, temperature_deviation: -0.35, hrv_balance: 81, temperature_score: 93, activity_balance: 64 }
      }
    }
  },
  {
    dataType: 'daily_activity',
    add(sim) {
      const id = randomUUID()
      const document = { ...newest(sim, 'daily_activity'), id, score: 71, active_calories: 612, steps: 9876, equivalent_walking_distance: 8123 }
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'daily_activity', document), context: 'day',
        // Oura's activity day runs from 04:00 local time.
        ...daySpan(document.day, offsetOf(document.timestamp), 4),
        metrics: { activity_score: 71, active_calories: 612, steps: 9876, distance_meters: 8123 }
      }
    }
  },
  {
    dataType: 'daily_spo2',
    add(sim) {
      const id = randomUUID()
      const document = { ...newest(sim, 'daily_spo2'), id, spo2_percentage: { average: 96.375 } }
      // No timestamp in SpO2 documents: the wearer's offset is unknown, the day is taken in UTC.
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'daily_spo2', document), context: 'day',
        ...daySpan(document.day, '+00:00', 0), metrics: { spo2: 96.375 }
      }
    }
  },
  {
    dataType: 'vo2_max',
    add(sim) {
      const id = randomUUID()
      const document = { ...newest(sim, 'vo2_max'), id, vo2_max: 44.7 }
      return {
        id, notification: sim.addDocument(OURA_USER_ID, 'vo2_max', document), context: 'day',
        ...daySpan(document.day, offsetOf(document.timestamp), 0), metrics: { vo2_max: 44.7 }
      }
    }
  }
]

/** Heart-rate rows stored as instant samples (context ''), as [epoch ms, bpm], time-ordered. */
async function storedHeartRate(db: Queryable): Promise<Array<[number, number]>> {
  const { rows } = await db.query<{ at_ms: number, value: number }>(
    `SELECT (extract(epoch FROM start_at) * 1000)::float8 AS at_ms, value FROM events
     WHERE user_id = $1 AND metric = 'heart_rate' AND context = '' ORDER BY start_at`, [USER_ID])
  return rows.map((row) => [Number(row.at_ms), Number(row.value)])
}

/** Delivers one notification and waits until no receipt is pending. */
async function createAndDrain(bridge: ReceiptBridge, notification: OuraNotificationInput): Promise<void> {
  await deliver(bridge, notification)
  await drainReceipts(bridge.app.db)
}

for (const adapter of ADAPTERS) {
  describe(`Oura receipts: notifications to stored events (${adapter})`, () => {
    test('a create notification of every data type stores its catalog metrics, each with one outbox row', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      const added = TYPE_CASES.map((typeCase) => ({ dataType: typeCase.dataType, ...typeCase.add(sim) }))
      for (const { notification } of added) await deliver(bridge, notification)
      await drainReceipts(app.db)
      assert.deepEqual(await receiptStatuses(app.db), { done: TYPE_CASES.length })

      for (const expected of added) {
        const events = await recordEvents(app.db, expected.id)
        const values = valuesByMetric(events)
        assert.deepEqual(Object.keys(values).sort(), Object.keys(expected.metrics).sort(), `${expected.dataType}: the mapped metrics`)
        for (const [metric, value] of Object.entries(expected.metrics)) {
          assert.ok(Math.abs((values[metric] ?? Number.NaN) - value) < 1e-9, `${expected.dataType} ${metric}: stored ${values[metric]}, expected ${value}`)
        }
        for (const event of events) {
          assert.equal(event.context, expected.context, `${expected.dataType} ${event.metric} context`)
          assert.equal(event.start_ms, expected.startMs, `${expected.dataType} ${event.metric} start`)
          assert.equal(event.end_ms, expected.endMs, `${expected.dataType} ${event.metric} end`)
        }
        const outbox = await outboxFor(app.db, events.map((event) => event.event_id))
        assert.deepEqual(outbox.map((row) => [row.event_id, row.op]).sort(), events.map((event) => [event.event_id, 'upsert']).sort(),
          `${expected.dataType}: one upsert outbox row per event`)
        for (const row of outbox) {
          assert.equal(row.payload.source_record_id, expected.id)
          assert.equal(row.payload.value, values[row.payload.metric], `${expected.dataType}: the outbox payload carries the stored value`)
        }
      }

      // The sleep brought the heart-rate rows of its bedtime window, as instant samples with their own outbox rows.
      const sleep = added.find((entry) => entry.dataType === 'sleep')!
      const expectedRows = sim.heartRate(OURA_USER_ID)
        .filter((row) => row.timestamp_unix >= sleep.startMs && row.timestamp_unix <= sleep.endMs)
        .map((row): [number, number] => [row.timestamp_unix, row.bpm])
      assert.ok(expectedRows.length > 50, 'the night has heart-rate rows')
      assert.deepEqual(await storedHeartRate(app.db), expectedRows)
      const { rows: hrOutbox } = await app.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox o JOIN events e USING (event_id)
         WHERE e.user_id = $1 AND e.metric = 'heart_rate' AND e.context = '' AND o.op = 'upsert'`, [USER_ID])
      assert.equal(hrOutbox[0]?.n, expectedRows.length)
    })

    test('an update stores the newer revision with new outbox rows; an older revision delivered later changes nothing', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      const original = sim.documents(OURA_USER_ID, 'daily_readiness').find((document) => document.score !== null)
      assert.ok(original !== undefined, 'a scored readiness document')
      const createNotification: OuraNotificationInput = { event_type: 'create', data_type: 'daily_readiness', object_id: original.id, user_id: OURA_USER_ID }
      await createAndDrain(bridge, createNotification)
      const first = await recordEvents(app.db, original.id)
      assert.equal(valuesByMetric(first).recovery_score, original.score)
      assert.equal(first[0]?.source_updated_ms, Date.parse(original.meta.updated_at))
      const eventIds = first.map((event) => event.event_id)
      assert.equal((await outboxFor(app.db, eventIds)).length, first.length)

      const newScore = original.score === 88 ? 89 : 88
      const { document: revised, notification } = sim.updateDocument('daily_readiness', original.id, { score: newScore })
      assert.ok(Date.parse(revised.meta.updated_at) > Date.parse(original.meta.updated_at))
      await createAndDrain(bridge, notification)
      const second = await recordEvents(app.db, original.id)
      assert.equal(valuesByMetric(second).recovery_score, newScore, 'the newer revision replaced the value')
      assert.equal(second[0]?.source_updated_ms, Date.parse(revised.meta.updated_at))
      const afterUpdate = await outboxFor(app.db, eventIds)
      assert.equal(afterUpdate.length, 2 * first.length, 'every event of the new revision is announced again')
      const scoreRows = afterUpdate.filter((row) => row.payload.metric === 'recovery_score')
      assert.deepEqual(scoreRows.map((row) => [row.op, row.payload.value]), [['upsert', original.score], ['upsert', newScore]])

      // Oura serves the older revision again (a stale replica, a late retry of an old notification's fetch).
      sim.deleteDocument('daily_readiness', original.id)
      sim.addDocument(OURA_USER_ID, 'daily_readiness', original)
      await createAndDrain(bridge, { ...createNotification, event_type: 'update' })
      assert.deepEqual((await receiptsFor(app.db, original.id)).map((row) => row.status), ['done', 'done', 'done'])
      const third = await recordEvents(app.db, original.id)
      assert.equal(valuesByMetric(third).recovery_score, newScore, 'the older revision did not overwrite the newer one')
      assert.equal(third[0]?.source_updated_ms, Date.parse(revised.meta.updated_at))
      assert.equal((await outboxFor(app.db, eventIds)).length, afterUpdate.length, 'nothing new was announced')
    })

    test('a revision that clears a field deletes that metric\'s event with a delete outbox row; the others stay', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      const original = sim.documents(OURA_USER_ID, 'daily_readiness').find((document) => document.temperature_deviation !== null)
      assert.ok(original !== undefined, 'a readiness document with a temperature deviation')
      await createAndDrain(bridge, { event_type: 'create', data_type: 'daily_readiness', object_id: original.id, user_id: OURA_USER_ID })
      const before = await recordEvents(app.db, original.id)
      const deviation = before.find((event) => event.metric === 'temperature_deviation')
      assert.ok(deviation !== undefined)

      const { notification } = sim.updateDocument('daily_readiness', original.id, { temperature_deviation: null })
      await createAndDrain(bridge, notification)
      const after = await recordEvents(app.db, original.id)
      assert.deepEqual(after.map((event) => event.metric).sort(), before.map((event) => event.metric).filter((metric) => metric !== 'temperature_deviation').sort())
      const announced = await outboxFor(app.db, [deviation.event_id])
      assert.deepEqual(announced.map((row) => row.op), ['upsert', 'delete'], 'consumers learn that the value is gone')
    })

    test('a delete notification, and a create whose document is gone (404), retract the events with delete outbox rows', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      const sleep = newest(sim, 'sleep')
      const activity = newest(sim, 'daily_activity')
      await deliver(bridge, { event_type: 'create', data_type: 'sleep', object_id: sleep.id, user_id: OURA_USER_ID })
      await createAndDrain(bridge, { event_type: 'create', data_type: 'daily_activity', object_id: activity.id, user_id: OURA_USER_ID })
      const sleepEvents = await recordEvents(app.db, sleep.id)
      const activityEvents = await recordEvents(app.db, activity.id)
      assert.ok(sleepEvents.length >= 5 && activityEvents.length >= 3, 'both documents were stored first')
      const heartRateBefore = await storedHeartRate(app.db)

      const deletion = sim.deleteDocument('sleep', sleep.id)
      assert.ok(deletion !== undefined)
      await createAndDrain(bridge, deletion)
      assert.deepEqual(await recordEvents(app.db, sleep.id), [], 'the deleted sleep has no events left')
      const sleepOutbox = await outboxFor(app.db, sleepEvents.map((event) => event.event_id))
      assert.deepEqual(
        sleepOutbox.filter((row) => row.op === 'delete').map((row) => row.event_id).sort(),
        sleepEvents.map((event) => event.event_id).sort(), 'one delete outbox row per retracted event')
      assert.ok(sleepOutbox.filter((row) => row.op === 'delete').every((row) => row.payload.op === 'delete' && row.payload.source_record_id === sleep.id))
      assert.deepEqual(await storedHeartRate(app.db), heartRateBefore, 'heart-rate rows are their own records')

      // The document vanished without a delete notification; a later create for it finds 404.
      sim.deleteDocument('daily_activity', activity.id)
      await createAndDrain(bridge, { event_type: 'create', data_type: 'daily_activity', object_id: activity.id, user_id: OURA_USER_ID })
      assert.deepEqual(await recordEvents(app.db, activity.id), [])
      const activityOutbox = await outboxFor(app.db, activityEvents.map((event) => event.event_id))
      assert.deepEqual(
        activityOutbox.filter((row) => row.op === 'delete').map((row) => row.event_id).sort(),
        activityEvents.map((event) => event.event_id).sort())
      assert.deepEqual(await receiptStatuses(app.db), { done: 4 }, 'a 404 is an answer, not a failure')
      assert.equal(sim.requestCount('GET /v2/usercollection/daily_activity/{document_id}'), 2)
    })

    test('a notification for an Oura user nobody connected is skipped; worker metrics are exported while work runs', async (t) => {
      const bridge = await startReceiptBridge(t, adapter)
      if (bridge === undefined) return
      const { sim, app } = bridge
      sim.addUser({ userId: 'oura-stranger', days: 2 })
      const [strangers] = sim.notificationsFor('oura-stranger', 'create', ['daily_readiness'])
      assert.ok(strangers !== undefined)
      await deliver(bridge, strangers)
      const skipped = await finishedReceipt(app.db, strangers.object_id)
      assert.deepEqual([skipped.status, skipped.last_error_code, skipped.attempts], ['skipped', 'BB_NO_CONNECTION', 1])
      assert.equal(sim.requestCount('GET /v2/usercollection/daily_readiness/{document_id}'), 0, 'nothing was fetched for nobody')

      // Slow answers keep a receipt in progress long enough to see the gauge count it.
      sim.faults.latency({ ms: 800 })
      const readiness = newest(sim, 'daily_readiness')
      await deliver(bridge, { event_type: 'create', data_type: 'daily_readiness', object_id: readiness.id, user_id: OURA_USER_ID })
      const scrape = async (): Promise<string> => (await app.http.inject({ method: 'GET', url: '/metrics' })).body
      await waitFor('active_webhook_tasks to count the receipt in progress', async () => /^active_webhook_tasks 1$/m.test(await scrape()))
      sim.faults.latency(false)
      await drainReceipts(app.db)
      const body = await waitFor('active_webhook_tasks back to 0', async () => {
        const text = await scrape()
        return /^active_webhook_tasks 0$/m.test(text) ? text : undefined
      })
      const waits = /^semaphore_wait_seconds_count (\d+)$/m.exec(body)
      assert.ok(waits !== null, 'semaphore_wait_seconds is exported')
      assert.equal(Number(waits[1]), 2, 'one semaphore wait observed per receipt worked')
      assert.match(body, /^semaphore_wait_seconds_bucket\{le="\+Inf"\} 2$/m)
    })

    test('reconciliation stores a document that got no notification, and a period is queued once however often it runs', async (t) => {
      // The apps' clock is the real one, shifted so that its first reading falls into the first second of a
      // minute: the test stays within one reconciliation period (one minute), so every round here is the same one.
      let shiftMs: number | undefined
      const now = (): number => {
        const realMs = Date.now()
        shiftMs ??= Math.floor(realMs / 60_000) * 60_000 + 1000 - realMs
        return realMs + shiftMs
      }
      const period = (): number => Math.floor(now() / 60_000)
      const env = { RECONCILE_INTERVAL_MINUTES: '1' }
      const bridge = await startReceiptBridge(t, adapter, { env, now, connect: false })
      if (bridge === undefined) return
      const { sim, app, harness } = bridge
      const startPeriod = period()
      // The first round runs at start-up, before anyone is connected: it queues nothing.
      const lastRun = async (): Promise<{ at: string, holder: string } | undefined> => {
        const { rows } = await app.db.query<{ at: string | null, holder: string | null }>(
          "SELECT last_run_at::text AS at, last_holder AS holder FROM scheduled_jobs WHERE name = 'reconcile:oura'")
        const row = rows[0]
        return row?.at == null || row.holder == null ? undefined : { at: row.at, holder: row.holder }
      }
      const startupRun = await waitFor('the start-up reconciliation round', lastRun)
      // Added before the user connects, so whichever round first sees the connection fetches it.
      const silent = { ...newest(sim, 'daily_readiness'), id: randomUUID(), score: 66 }
      sim.addDocument(OURA_USER_ID, 'daily_readiness', silent)
      await connectOura(harness, USER_ID, OURA_USER_ID)
      const reconcileReceipts = async (): Promise<Array<{ status: string, data_type: string }>> => {
        const { rows } = await app.db.query<{ status: string, data_type: string }>(
          "SELECT status, data_type FROM webhook_receipts WHERE event_type = 'reconcile' ORDER BY data_type")
        return rows
      }

      const runRound = async (previous: { at: string }, jitter = false): Promise<{ at: string, holder: string }> => {
        // Both nodes tick every 100 ms; a random moment for the nudge keeps one node from always ticking first.
        if (jitter) await sleep(Math.random() * FAST_TUNING.schedulerTickMs!)
        await app.db.query("UPDATE scheduled_jobs SET next_run_at = now() WHERE name = 'reconcile:oura'")
        return waitFor('a reconciliation round', async () => {
          const run = await lastRun()
          return run !== undefined && run.at !== previous.at ? run : undefined
        })
      }
      const firstRound = await runRound(startupRun)
      await waitFor('the round\'s receipts', async () => (await reconcileReceipts()).length === OURA_RANGE_DATA_TYPES.length)
      await drainReceipts(app.db)
      assert.deepEqual((await reconcileReceipts()).map((row) => [row.data_type, row.status]),
        [...OURA_RANGE_DATA_TYPES].sort().map((dataType) => [dataType, 'done']), 'one receipt per collection, all done')
      assert.equal(valuesByMetric(await recordEvents(app.db, silent.id)).recovery_score, 66, 'the silent document is stored')
      assert.ok(sim.requestCount('GET /v2/usercollection/daily_readiness') >= 1)
      assert.equal(sim.requestCount('GET /v2/usercollection/daily_readiness/{document_id}'), 0, 'no notification fetched it')

      // Another round in the same period, by any node, queues nothing new.
      const holders = new Set([firstRound.holder])
      let previous = firstRound
      if (adapter === 'postgres') {
        const second = await startSecondNode(t, bridge, env, FAST_TUNING, now)
        assert.ok(second.config.databaseUrl === app.config.databaseUrl)
        // Whichever node claims a forced round runs it; repeat until the second node has run one.
        for (let round = 0; round < 40 && holders.size < 2; round++) {
          previous = await runRound(previous, true)
          holders.add(previous.holder)
        }
        assert.equal(holders.size, 2, 'both nodes ran a round of the same period')
      } else {
        previous = await runRound(previous)
      }
      await drainReceipts(app.db)
      assert.equal((await reconcileReceipts()).length, OURA_RANGE_DATA_TYPES.length, 'the period\'s receipts were not queued twice')
      assert.equal(period(), startPeriod, 'the test stayed within one period')
    })
  })
}
