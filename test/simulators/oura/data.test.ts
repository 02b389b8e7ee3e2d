import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { buildEvent } from '../../../src/domain/build-event.ts'
import { OURA_DATA_TYPES } from '../../../src/providers/oura/documents.ts'
import { normalizeOuraDocument, normalizeOuraHeartRate } from '../../../src/providers/oura/normalize.ts'
import { generateOuraData, type OuraDataOptions, type OuraDataset } from '../../../src/simulators/oura/index.ts'
import { NOW_MS } from './helpers.ts'

const OPTIONS: OuraDataOptions = { seed: 7, days: 6, nowMs: NOW_MS }

/** Every problem the bridge's own normalizer and validator find in a dataset; empty when all of it is stored. */
function bridgeProblems(dataset: OuraDataset, nowMs: number): string[] {
  const origin = { userId: 'bridge-user', source: 'oura' as const, ingestedAt: new Date(nowMs).toISOString() }
  const problems: string[] = []
  for (const dataType of OURA_DATA_TYPES) {
    for (const document of dataset.documents[dataType]) {
      const outcome = normalizeOuraDocument(dataType, document)
      if (outcome.kind !== 'drafts') {
        problems.push(`${dataType} ${document.id}: ${outcome.kind}`)
        continue
      }
      if (outcome.drafts.length === 0) problems.push(`${dataType} ${document.id}: no values`)
      for (const draft of outcome.drafts) {
        const built = buildEvent(draft, origin, { nowMs })
        if (!built.ok) problems.push(`${dataType} ${document.id} ${draft.metric}: ${built.rejection.code} ${built.rejection.message}`)
      }
    }
  }
  normalizeOuraHeartRate(dataset.heartRate).forEach((outcome, index) => {
    if (outcome.kind !== 'drafts') problems.push(`heartrate row ${index}: ${outcome.kind}`)
    else {
      for (const draft of outcome.drafts) {
        const built = buildEvent(draft, origin, { nowMs })
        if (!built.ok) problems.push(`heartrate row ${index}: ${built.rejection.code}`)
      }
    }
  })
  return problems
}

describe('Oura simulator: generated data', () => {
  test('is deterministic for a seed and differs between seeds', () => {
    assert.deepEqual(generateOuraData(OPTIONS), generateOuraData(OPTIONS))
    const other = generateOuraData({ ...OPTIONS, seed: 8 })
    assert.notEqual(other.userId, generateOuraData(OPTIONS).userId)
    assert.notDeepEqual(other.documents.sleep.map((s) => s.average_hrv), generateOuraData(OPTIONS).documents.sleep.map((s) => s.average_hrv))
  })

  test('every document normalizes and validates with the bridge, for any seed, clock and offset', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: Date.UTC(2021, 0, 1), max: Date.UTC(2030, 0, 1) }),
      fc.constantFrom(-600, -300, 0, 60, 120, 330, 540, 780),
      (seed, days, nowMs, offsetMinutes) => {
        assert.deepEqual(bridgeProblems(generateOuraData({ seed, days, nowMs, offsetMinutes }), nowMs), [])
      }
    ), { numRuns: 15 })
  })

  test('one daily document per day and type; the long sleep of a day ends on that day', () => {
    const dataset = generateOuraData(OPTIONS)
    const days = [...new Set(dataset.documents.daily_sleep.map((d) => d.day))]
    assert.equal(days.length, OPTIONS.days)
    for (const dataType of ['daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2'] as const) {
      assert.deepEqual(dataset.documents[dataType].map((d) => d.day), days, dataType)
    }
    assert.ok(dataset.documents.vo2_max.length >= 1)
    const longSleeps = dataset.documents.sleep.filter((s) => s.type === 'long_sleep')
    assert.deepEqual(longSleeps.map((s) => s.day), days)
    for (const sleep of longSleeps) assert.equal(sleep.bedtime_end.slice(0, 10), sleep.day)
    const allIds = OURA_DATA_TYPES.flatMap((type) => dataset.documents[type].map((d) => d.id))
    assert.equal(new Set(allIds).size, allIds.length, 'ids are unique')
    for (const id of allIds) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  test('sleep figures are counted from one hypnogram', () => {
    const dataset = generateOuraData({ ...OPTIONS, days: 10 })
    for (const sleep of dataset.documents.sleep) {
      const deep = sleep.deep_sleep_duration ?? 0
      const light = sleep.light_sleep_duration ?? 0
      const rem = sleep.rem_sleep_duration ?? 0
      const awake = sleep.awake_time ?? 0
      assert.equal(deep + light + rem + awake, sleep.time_in_bed)
      assert.equal(sleep.total_sleep_duration, deep + light + rem)
      assert.equal(Date.parse(sleep.bedtime_end) - Date.parse(sleep.bedtime_start), sleep.time_in_bed * 1000)
      assert.equal(sleep.efficiency, Math.round((deep + light + rem) / sleep.time_in_bed * 100))
      const phases = sleep.sleep_phase_30_sec ?? ''
      assert.equal(phases.length * 30, sleep.time_in_bed)
      assert.equal([...phases].filter((p) => p === '1').length * 30, deep)
      assert.equal([...phases].filter((p) => p === '3').length * 30, rem)
      assert.equal(sleep.sleep_phase_5_min?.length, Math.ceil(phases.length / 10))
      assert.equal(sleep.movement_30_sec?.length, phases.length)
      const bpm = (sleep.heart_rate?.items ?? []).filter((v): v is number => v !== null)
      assert.equal(sleep.lowest_heart_rate, Math.min(...bpm))
      assert.ok(Math.abs((sleep.average_heart_rate ?? 0) - bpm.reduce((a, b) => a + b, 0) / bpm.length) <= 0.0625)
      assert.equal(sleep.heart_rate?.items.length, sleep.sleep_phase_5_min?.length)
      assert.match(sleep.bedtime_start, /\+01:00$/)
    }
    assert.ok(dataset.documents.sleep.some((s) => s.type === 'sleep'), 'ten days bring at least one nap')
  })

  test('readiness is the night\'s, daily sleep scores the night, activity adds up to a day', () => {
    const dataset = generateOuraData(OPTIONS)
    for (const readiness of dataset.documents.daily_readiness) {
      const night = dataset.documents.sleep.find((s) => s.day === readiness.day && s.type === 'long_sleep')
      assert.deepEqual(night?.readiness, {
        contributors: readiness.contributors,
        score: readiness.score,
        temperature_deviation: readiness.temperature_deviation,
        temperature_trend_deviation: readiness.temperature_trend_deviation
      })
      assert.equal(readiness.timestamp, `${readiness.day}T00:00:00+01:00`)
    }
    dataset.documents.daily_readiness.slice(1).forEach((readiness, index) => {
      assert.equal(readiness.contributors.previous_day_activity, dataset.documents.daily_activity[index]?.score)
    })
    for (const activity of dataset.documents.daily_activity) {
      const seconds = activity.non_wear_time + activity.resting_time + activity.sedentary_time +
        activity.low_activity_time + activity.medium_activity_time + activity.high_activity_time
      assert.equal(seconds, 86_400)
      assert.equal(activity.class_5_min.length, 288)
      assert.equal(activity.met.items.length, 1440)
      assert.equal(activity.timestamp, `${activity.day}T04:00:00+01:00`)
      assert.ok(activity.steps > 1000 && activity.steps < 40_000, `${activity.steps} steps`)
    }
    for (const type of OURA_DATA_TYPES) {
      for (const document of dataset.documents[type]) {
        assert.ok(Date.parse(document.meta.updated_at) < NOW_MS, 'nothing is updated in the future')
      }
    }
  })

  test('heart-rate rows are time-ordered, unique, and repeat the sleep documents\' samples', () => {
    const dataset = generateOuraData(OPTIONS)
    const times = dataset.heartRate.map((row) => row.timestamp_unix)
    assert.deepEqual(times, [...times].sort((a, b) => a - b))
    assert.equal(new Set(times).size, times.length)
    for (const row of dataset.heartRate) {
      assert.equal(Date.parse(row.timestamp), row.timestamp_unix)
      assert.match(row.timestamp, /\+00:00$/)
    }
    const night = dataset.documents.sleep[1]
    const startMs = Date.parse(night?.heart_rate?.timestamp ?? '')
    night?.heart_rate?.items.forEach((bpm, index) => {
      const row = dataset.heartRate.find((r) => r.timestamp_unix === startMs + index * 300_000)
      if (bpm === null) assert.equal(row, undefined)
      else assert.deepEqual([row?.bpm, row?.source], [bpm, 'sleep'])
    })
    assert.ok(dataset.heartRate.some((row) => row.source === 'workout'))
    assert.ok(dataset.heartRate.some((row) => row.source === 'awake'))
  })
})
