import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildEvent } from '../../../src/domain/build-event.ts'
import {
  normalizeWhoopCycle, normalizeWhoopRecovery, normalizeWhoopSleep, normalizeWhoopWorkout, whoopRecoveryRecordId, type WhoopOutcome
} from '../../../src/providers/whoop/normalize.ts'

const SLEEP_ID = '7c0e8d2a-5b1f-4b0e-9a43-2f6d1c9e0b11'

// Shapes and values after the reference's examples (providers.md §2.4, §2.7).
const sleep = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: SLEEP_ID, cycle_id: 93845, v1_id: 1234, user_id: 456,
  created_at: '2026-01-07T06:55:02.100Z', updated_at: '2026-01-07T06:55:02.100Z',
  start: '2026-01-06T22:31:10.000Z', end: '2026-01-07T06:49:10.000Z', timezone_offset: '+01:00', nap: false,
  score_state: 'SCORED',
  score: {
    stage_summary: {
      total_in_bed_time_milli: 29_880_000, total_awake_time_milli: 4_080_000, total_no_data_time_milli: 0,
      total_light_sleep_time_milli: 14_100_000, total_slow_wave_sleep_time_milli: 5_400_000, total_rem_sleep_time_milli: 6_300_000,
      sleep_cycle_count: 4, disturbance_count: 12
    },
    sleep_needed: { baseline_milli: 27_000_000 },
    respiratory_rate: 15.2, sleep_performance_percentage: 88, sleep_consistency_percentage: 79, sleep_efficiency_percentage: 86.4
  },
  ...overrides
})
const recovery = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  cycle_id: 93845, sleep_id: SLEEP_ID, user_id: 456, created_at: '2026-01-07T06:55:02.100Z', updated_at: '2026-01-07T06:55:02.100Z',
  score_state: 'SCORED',
  score: { user_calibrating: false, recovery_score: 61, resting_heart_rate: 52, hrv_rmssd_milli: 58.4, spo2_percentage: 96.1, skin_temp_celsius: 33.6 },
  ...overrides
})
const workout = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'b3f1c2d4-0000-4000-8000-000000000001', user_id: 456, created_at: '2026-01-07T18:10:00.000Z', updated_at: '2026-01-07T18:12:00.000Z',
  start: '2026-01-07T17:00:00.000Z', end: '2026-01-07T18:00:00.000Z', timezone_offset: '-05:00', sport_name: 'running',
  score_state: 'SCORED',
  score: { strain: 11.2, average_heart_rate: 142, max_heart_rate: 178, kilojoule: 1255.2, percent_recorded: 100, distance_meter: 10_012.5 },
  ...overrides
})
const cycle = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 93845, user_id: 456, created_at: '2026-01-06T22:31:10.000Z', updated_at: '2026-01-07T22:00:00.000Z',
  start: '2026-01-06T22:31:10.000Z', end: '2026-01-07T22:40:00.000Z', timezone_offset: '+01:00',
  score_state: 'SCORED', score: { strain: 12.3, kilojoule: 8900, average_heart_rate: 68, max_heart_rate: 171 },
  ...overrides
})

/** The stored form of each draft: metric → [value in the catalog unit, start, end, context, record]. */
function stored(outcome: WhoopOutcome): Record<string, [number, string, string, string | null, string]> {
  assert.equal(outcome.kind, 'drafts', JSON.stringify(outcome))
  if (outcome.kind !== 'drafts') return {}
  const origin = { userId: 'u', source: 'whoop' as const, ingestedAt: '2026-01-08T00:00:00.000Z' }
  return Object.fromEntries(outcome.drafts.map((draft) => {
    const built = buildEvent(draft, origin, { nowMs: Date.parse('2026-01-08T00:00:00Z') })
    assert.ok(built.ok, JSON.stringify(built))
    const { event } = built
    assert.equal(event.device_type, 'whoop_band')
    return [event.metric, [Math.round(event.value * 1000) / 1000, event.start, event.end, event.context, event.source_record_id]]
  }))
}

describe('WHOOP documents to catalog events', () => {
  test('sleep: stages in minutes, total = light + slow wave + REM, respiratory rate, performance; local offset kept', () => {
    const night = ['2026-01-06T23:31:10+01:00', '2026-01-07T07:49:10+01:00', 'sleep', SLEEP_ID] as const
    assert.deepEqual(stored(normalizeWhoopSleep(sleep())), {
      respiratory_rate: [15.2, ...night],
      sleep_performance: [88, ...night],
      deep_sleep_minutes: [90, ...night],
      rem_sleep_minutes: [105, ...night],
      light_sleep_minutes: [235, ...night],
      awake_minutes: [68, ...night],
      total_sleep_minutes: [430, ...night]
    })
  })

  test('recovery: spans its sleep, under its own record id so recovery.deleted leaves the sleep alone', () => {
    const night = ['2026-01-06T23:31:10+01:00', '2026-01-07T07:49:10+01:00', 'sleep', whoopRecoveryRecordId(SLEEP_ID)] as const
    assert.deepEqual(stored(normalizeWhoopRecovery(recovery(), sleep())), {
      recovery_score: [61, ...night],
      hrv_rmssd: [58.4, ...night],
      resting_heart_rate: [52, ...night],
      spo2: [96.1, ...night],
      skin_temperature: [33.6, ...night]
    })
  })

  test('workout: average heart rate, energy kJ → kcal, distance; context workout', () => {
    const span = ['2026-01-07T12:00:00-05:00', '2026-01-07T13:00:00-05:00', 'workout', 'b3f1c2d4-0000-4000-8000-000000000001'] as const
    assert.deepEqual(stored(normalizeWhoopWorkout(workout())), {
      heart_rate: [142, ...span],
      active_calories: [300, ...span],
      distance_meters: [10_012.5, ...span]
    })
  })

  test('cycle: day strain over the cycle; a running cycle is not final', () => {
    assert.deepEqual(stored(normalizeWhoopCycle(cycle())), {
      strain: [12.3, '2026-01-06T23:31:10+01:00', '2026-01-07T23:40:00+01:00', 'day', '93845']
    })
    assert.deepEqual(normalizeWhoopCycle(cycle({ end: null })), { kind: 'unscored' })
  })

  test('documents that are not SCORED yield no events', () => {
    for (const state of ['PENDING_SCORE', 'UNSCORABLE']) {
      assert.deepEqual(normalizeWhoopSleep(sleep({ score_state: state, score: undefined })), { kind: 'unscored' }, state)
      assert.deepEqual(normalizeWhoopRecovery(recovery({ score_state: state }), sleep()), { kind: 'unscored' }, state)
      assert.deepEqual(normalizeWhoopWorkout(workout({ score_state: state })), { kind: 'unscored' }, state)
    }
  })

  test('null fields are skipped; the drafts still describe the whole record at its revision', () => {
    const outcome = normalizeWhoopRecovery(recovery({ score: { recovery_score: 61, hrv_rmssd_milli: null } }), sleep())
    assert.deepEqual(Object.keys(stored(outcome)), ['recovery_score'])
    assert.deepEqual(outcome.kind === 'drafts' ? outcome.record : undefined, {
      sourceRecordId: whoopRecoveryRecordId(SLEEP_ID), sourceUpdatedAt: '2026-01-07T06:55:02.100Z'
    })
  })

  const broken: Array<[string, () => WhoopOutcome, string]> = [
    ['a sleep without a zone offset that parses', () => normalizeWhoopSleep(sleep({ timezone_offset: '+1' })), 'BB_SAMPLE_BAD_TIME'],
    ['a sleep with a string for a number', () => normalizeWhoopSleep(sleep({ score: { respiratory_rate: '15' } })), 'BB_SAMPLE_MALFORMED'],
    ['a SCORED document without a score', () => normalizeWhoopWorkout(workout({ score: null })), 'BB_SAMPLE_MALFORMED'],
    ['a document that is not an object', () => normalizeWhoopSleep([1, 2]), 'BB_SAMPLE_MALFORMED'],
    ['an id with spaces', () => normalizeWhoopSleep(sleep({ id: 'a b' })), 'BB_SAMPLE_MALFORMED'],
    ['a recovery whose sleep has no times', () => normalizeWhoopRecovery(recovery(), { id: SLEEP_ID }), 'BB_SAMPLE_BAD_TIME'],
    ['a bad updated_at', () => normalizeWhoopCycle(cycle({ updated_at: 'yesterday' })), 'BB_SAMPLE_BAD_TIME']
  ]
  for (const [name, run, code] of broken) {
    test(`rejects ${name}`, () => {
      const outcome = run()
      assert.equal(outcome.kind === 'rejected' ? outcome.rejection.code : outcome.kind, code)
    })
  }
})
