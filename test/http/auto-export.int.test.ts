import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { buildTestApp } from '../helpers/app.ts'
import { ADAPTERS } from '../helpers/services.ts'

const FIXTURE = readFileSync(new URL('../fixtures/healthkit/auto-export.json', import.meta.url), 'utf8')

interface StoredEvent {
  metric: string
  value: number
  unit: string
  start: string
  end: string
  context: string | null
  device_type: string
}

for (const adapter of ADAPTERS) {
  describe(`Health Auto Export uploads (${adapter})`, () => {
    test('maps metrics, sleep and workouts into the catalog with unit conversion', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app, adminHeaders } = harness
      const headers = await harness.deviceHeaders('hae-user')
      const response = await app.http.inject({ method: 'POST', url: '/v1/healthkit/auto-export', headers, payload: FIXTURE })
      assert.equal(response.statusCode, 200)
      const body = response.json<{ accepted: number, ignored: number, rejected: Array<{ path: string, code: string }>, unsupported_metrics: string[] }>()
      assert.deepEqual(body.rejected.map((r) => [r.path, r.code]), [
        ['data.metrics[6].data[1]', 'BB_SAMPLE_BAD_TIME'],
        ['data.metrics[6].data[2]', 'BB_SAMPLE_OUT_OF_RANGE']
      ])
      assert.deepEqual(body.unsupported_metrics, ['body_mass'])
      assert.equal(body.ignored, 1)

      const events = await app.http.inject({ method: 'GET', url: '/v1/users/hae-user/events?limit=1000', headers: adminHeaders })
      const stored = events.json<{ data: StoredEvent[] }>().data
      const find = (metric: string, context: string | null = null) =>
        stored.filter((event) => event.metric === metric && event.context === context)
      assert.deepEqual(find('heart_rate').map((e) => e.value), [58.5, 61])
      assert.equal(find('heart_rate')[0]?.start, '2026-01-07T06:30:00+01:00')
      assert.equal(find('spo2')[0]?.value, 96)
      assert.equal(find('distance_meters')[0]?.value, 5250)
      assert.ok(Math.abs((find('active_calories')[0]?.value ?? 0) - 300) < 1e-9, '1255.2 kJ is 300 kcal')
      assert.equal(find('steps')[0]?.value, 1200)
      const sleep = Object.fromEntries(stored.filter((e) => e.context === 'sleep').map((e) => [e.metric, e.value]))
      assert.deepEqual(sleep, {
        deep_sleep_minutes: 75, rem_sleep_minutes: 120, light_sleep_minutes: 240, awake_minutes: 30, total_sleep_minutes: 435
      })
      assert.equal(find('deep_sleep_minutes', 'sleep')[0]?.start, '2026-01-06T23:10:00+01:00')
      assert.equal(find('deep_sleep_minutes', 'sleep')[0]?.end, '2026-01-07T06:55:00+01:00')
      const workout = Object.fromEntries(stored.filter((e) => e.context === 'workout').map((e) => [e.metric, e.value]))
      assert.equal(workout.active_calories, 450)
      assert.ok(Math.abs((workout.distance_meters ?? 0) - 4988.9664) < 1e-6, '3.1 mi in metres')
      assert.equal(workout.heart_rate, 151)
      assert.equal(body.accepted, stored.length)

      const again = await app.http.inject({ method: 'POST', url: '/v1/healthkit/auto-export', headers, payload: FIXTURE })
      assert.equal(again.json<{ accepted: number, duplicates: number }>().accepted, 0, 'a re-export is idempotent')
      assert.equal(again.json<{ accepted: number, duplicates: number }>().duplicates, stored.length)
    })

    test('holds points that arrive before their metric name, and rejects nameless metrics per point', async (t) => {
      const harness = await buildTestApp(t, adapter)
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders('hae-order-user')
      const payload = JSON.stringify({
        data: {
          metrics: [
            { data: [{ date: '2026-01-07 08:00:00 +0000', qty: 40 }], units: 'ms', name: 'heart_rate_variability' },
            { data: [{ date: '2026-01-07 08:00:00 +0000', qty: 1 }] }
          ]
        }
      })
      const response = await app.http.inject({ method: 'POST', url: '/v1/healthkit/auto-export', headers, payload })
      const body = response.json<{ accepted: number, rejected: Array<{ path: string, code: string }> }>()
      assert.equal(body.accepted, 1)
      assert.deepEqual(body.rejected.map((r) => [r.path, r.code]), [['data.metrics[1].data[0]', 'BB_SAMPLE_MALFORMED']])
    })
  })
}
