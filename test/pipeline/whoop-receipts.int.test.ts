import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { metricValue, outboxFor, recordEvents, receiptsFor, valuesByMetric, waitFor } from '../helpers/oura-receipts.ts'
import { drainReceipts } from '../helpers/oura.ts'
import { ADAPTERS } from '../helpers/services.ts'
import { WHOOP_MEMBER_ID, WHOOP_USER_ID, deliverWhoop, startWhoopBridge, type WhoopBridge } from '../helpers/whoop.ts'

const MS_PER_MINUTE = 60_000
const KJ_PER_KCAL = 4.184

const eventsOf = (bridge: WhoopBridge, recordId: string) => recordEvents(bridge.harness.app.db, recordId, 'whoop', WHOOP_USER_ID)

function assertValues(actual: Record<string, number>, expected: Record<string, number>): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort())
  for (const [metric, value] of Object.entries(expected)) {
    assert.ok(Math.abs(actual[metric]! - value) < 0.01, `${metric}: ${actual[metric]} ≠ ${value}`)
  }
}

for (const adapter of ADAPTERS) {
  describe(`WHOOP receipts (${adapter})`, () => {
    test('each notification type ends in its catalog values; a recovery is resolved through its sleep and cycle', async (t) => {
      const bridge = await startWhoopBridge(t, adapter)
      if (bridge === undefined) return
      const { sim } = bridge
      const sleep = sim.sleeps(WHOOP_MEMBER_ID).at(-1)!
      const recovery = sim.recoveries(WHOOP_MEMBER_ID).find((r) => r.sleep_id === sleep.id)!
      const workout = sim.workouts(WHOOP_MEMBER_ID).at(-1)!
      await deliverWhoop(bridge, { type: 'sleep.updated', id: sleep.id })
      await deliverWhoop(bridge, { type: 'recovery.updated', id: sleep.id })
      await deliverWhoop(bridge, { type: 'workout.updated', id: workout.id })
      await drainReceipts(bridge.harness.app.db)
      assert.deepEqual((await receiptsFor(bridge.harness.app.db)).map((row) => row.status), ['done', 'done', 'done'])

      const stages = sleep.score!.stage_summary
      assertValues(valuesByMetric(await eventsOf(bridge, sleep.id)), {
        respiratory_rate: sleep.score!.respiratory_rate,
        sleep_performance: sleep.score!.sleep_performance_percentage,
        deep_sleep_minutes: stages.total_slow_wave_sleep_time_milli / MS_PER_MINUTE,
        rem_sleep_minutes: stages.total_rem_sleep_time_milli / MS_PER_MINUTE,
        light_sleep_minutes: stages.total_light_sleep_time_milli / MS_PER_MINUTE,
        awake_minutes: stages.total_awake_time_milli / MS_PER_MINUTE,
        total_sleep_minutes: (stages.total_light_sleep_time_milli + stages.total_slow_wave_sleep_time_milli + stages.total_rem_sleep_time_milli) / MS_PER_MINUTE
      })
      const recoveryEvents = await eventsOf(bridge, `recovery:${sleep.id}`)
      assertValues(valuesByMetric(recoveryEvents), {
        recovery_score: recovery.score!.recovery_score,
        hrv_rmssd: recovery.score!.hrv_rmssd_milli,
        resting_heart_rate: recovery.score!.resting_heart_rate,
        spo2: recovery.score!.spo2_percentage,
        skin_temperature: recovery.score!.skin_temp_celsius
      })
      // The recovery spans the night it was computed from.
      assert.equal(recoveryEvents[0]!.start_ms, Date.parse(sleep.start))
      assert.equal(recoveryEvents[0]!.end_ms, Date.parse(sleep.end))
      assertValues(valuesByMetric(await eventsOf(bridge, workout.id)), {
        heart_rate: workout.score!.average_heart_rate,
        active_calories: workout.score!.kilojoule / KJ_PER_KCAL,
        distance_meters: workout.score!.distance_meter
      })
      assert.equal(sim.requestCount(`GET /developer/v2/cycle/{id}/recovery`), 1, 'recovery.updated carries the sleep id: sleep → cycle → recovery')
      assert.equal(sim.requestCount('GET /developer/v2/activity/sleep/{id}'), 2, 'one sleep fetch per notification that needs it')
      assert.equal(await metricValue(bridge.harness.app, 'webhook_events_total', { source: 'whoop' }), 3)
      assert.ok(await metricValue(bridge.harness.app, 'provider_budget_remaining', { provider: 'whoop' }) > 0, 'the budget is exported')
      assert.ok(await metricValue(bridge.harness.app, 'provider_rate_limit_remaining', { provider: 'whoop' }) > 0, 'so is WHOOP\'s own count')
    })

    test('a document still PENDING_SCORE yields nothing; the notification after scoring stores it', async (t) => {
      const bridge = await startWhoopBridge(t, adapter)
      if (bridge === undefined) return
      const { sim } = bridge
      const sleep = sim.sleeps(WHOOP_MEMBER_ID).at(-1)!
      sim.setScoreState('sleep', sleep.id, 'PENDING_SCORE')
      sim.setScoreState('recovery', sleep.id, 'PENDING_SCORE')
      await deliverWhoop(bridge, { type: 'sleep.updated', id: sleep.id })
      await deliverWhoop(bridge, { type: 'recovery.updated', id: sleep.id })
      await drainReceipts(bridge.harness.app.db)
      assert.deepEqual((await receiptsFor(bridge.harness.app.db)).map((row) => [row.status, row.attempts]), [['done', 1], ['done', 1]],
        'done, not retried: WHOOP notifies again once scored')
      assert.equal((await eventsOf(bridge, sleep.id)).length, 0)
      assert.equal((await eventsOf(bridge, `recovery:${sleep.id}`)).length, 0)

      sim.setScoreState('sleep', sleep.id, 'SCORED')
      sim.setScoreState('recovery', sleep.id, 'SCORED')
      await deliverWhoop(bridge, { type: 'sleep.updated', id: sleep.id })
      await deliverWhoop(bridge, { type: 'recovery.updated', id: sleep.id })
      await drainReceipts(bridge.harness.app.db)
      assert.equal((await eventsOf(bridge, sleep.id)).length, 7)
      assert.equal((await eventsOf(bridge, `recovery:${sleep.id}`)).length, 5)
    })

    test('deletes retract the record\'s events (with delete outbox rows); a recovery\'s delete leaves its sleep', async (t) => {
      const bridge = await startWhoopBridge(t, adapter)
      if (bridge === undefined) return
      const { sim } = bridge
      const [older, newer] = sim.sleeps(WHOOP_MEMBER_ID).slice(-2)
      const workout = sim.workouts(WHOOP_MEMBER_ID).at(-1)!
      for (const sleep of [older!, newer!]) {
        await deliverWhoop(bridge, { type: 'sleep.updated', id: sleep.id })
        await deliverWhoop(bridge, { type: 'recovery.updated', id: sleep.id })
      }
      await deliverWhoop(bridge, { type: 'workout.updated', id: workout.id })
      await drainReceipts(bridge.harness.app.db)
      const workoutEventIds = (await eventsOf(bridge, workout.id)).map((event) => event.event_id)
      assert.equal(workoutEventIds.length, 3)

      await deliverWhoop(bridge, { type: 'recovery.deleted', id: older!.id })
      await drainReceipts(bridge.harness.app.db)
      assert.equal((await eventsOf(bridge, `recovery:${older!.id}`)).length, 0)
      assert.equal((await eventsOf(bridge, older!.id)).length, 7, 'the sleep keeps its events')

      // WHOOP deletes a sleep's recovery with it, whether or not it says so.
      sim.deleteSleep(newer!.id)
      await deliverWhoop(bridge, { type: 'sleep.deleted', id: newer!.id })
      sim.deleteWorkout(workout.id)
      await deliverWhoop(bridge, { type: 'workout.deleted', id: workout.id })
      await drainReceipts(bridge.harness.app.db)
      assert.equal((await eventsOf(bridge, newer!.id)).length, 0)
      assert.equal((await eventsOf(bridge, `recovery:${newer!.id}`)).length, 0)
      assert.equal((await eventsOf(bridge, workout.id)).length, 0)
      const deletes = (await outboxFor(bridge.harness.app.db, workoutEventIds)).filter((row) => row.op === 'delete')
      assert.equal(deletes.length, 3, 'consumers hear of each retracted event')
    })

    test('an update of a document WHOOP no longer has (404) retracts its events', async (t) => {
      const bridge = await startWhoopBridge(t, adapter)
      if (bridge === undefined) return
      const { sim } = bridge
      const workout = sim.workouts(WHOOP_MEMBER_ID).at(-1)!
      await deliverWhoop(bridge, { type: 'workout.updated', id: workout.id })
      await drainReceipts(bridge.harness.app.db)
      assert.equal((await eventsOf(bridge, workout.id)).length, 3)
      sim.deleteWorkout(workout.id)
      await deliverWhoop(bridge, { type: 'workout.updated', id: workout.id })
      await drainReceipts(bridge.harness.app.db)
      assert.equal((await eventsOf(bridge, workout.id)).length, 0)
    })

    test('backfill on connect pages every collection, cycles (strain) included; an expired token is refreshed once', async (t) => {
      // 30 days: more cycles than WHOOP's largest page (25), so the collections take two pages each.
      const bridge = await startWhoopBridge(t, adapter, { env: { BACKFILL_DAYS: '30' }, days: 35 })
      if (bridge === undefined) return
      const { sim, harness } = bridge
      await drainReceipts(harness.app.db)
      const { rows } = await harness.app.db.query<{ metric: string, n: number }>(
        "SELECT metric, count(*)::int AS n FROM events WHERE source = 'whoop' GROUP BY metric ORDER BY metric")
      const counts = Object.fromEntries(rows.map((row) => [row.metric, Number(row.n)]))
      // A night, a recovery and a cycle every day; a workout on some days.
      for (const [metric, least] of [['strain', 28], ['recovery_score', 28], ['hrv_rmssd', 28], ['deep_sleep_minutes', 28], ['heart_rate', 8]] as const) {
        assert.ok((counts[metric] ?? 0) >= least, `${metric}: ${counts[metric]} events from the backfill`)
      }
      assert.equal(sim.requestCount('GET /developer/v2/cycle'), 2, 'pages followed with nextToken')
      assert.deepEqual(Object.keys(await receiptStatusCounts(bridge)), ['done'])

      // WHOOP refuses the access token: one refresh (rotating the refresh token), one retry, the work goes on.
      sim.expireAccessTokens()
      await deliverWhoop(bridge, { type: 'workout.updated', id: sim.workouts(WHOOP_MEMBER_ID).at(-1)!.id })
      await drainReceipts(harness.app.db)
      const stats = sim.tokenStats(WHOOP_MEMBER_ID)
      assert.deepEqual([stats.refreshCalls, stats.refreshReuses, stats.familiesRevoked], [1, 0, 0])
      await waitFor('the refresh to be counted', async () =>
        await metricValue(harness.app, 'token_refresh_total', { provider: 'whoop', outcome: 'success' }) === 1)
    })
  })
}

async function receiptStatusCounts(bridge: WhoopBridge): Promise<Record<string, number>> {
  const { rows } = await bridge.harness.app.db.query<{ status: string, n: number }>(
    "SELECT status, count(*)::int AS n FROM webhook_receipts WHERE provider = 'whoop' GROUP BY status")
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]))
}
