import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { buildEvent, type BuildResult } from '../../src/domain/build-event.ts'
import { parseInstant } from '../../src/domain/validation.ts'
import { isSupportedExportMetric, normalizeExportPoint, normalizeExportWorkout } from '../../src/providers/healthkit/auto-export.ts'
import { normalizeNativeSample, type SampleOutcome } from '../../src/providers/healthkit/native.ts'
import {
  HK, MAX_BATCH_SAMPLES, generateHealthKitData, planUploads, type HealthKitDataset, type IphoneDataOptions, type NativeSample
} from '../../src/simulators/iphone.ts'
import { createRandom } from '../../src/simulators/random.ts'

const NOW_MS = Date.parse('2026-01-08T09:30:00Z')
const OPTIONS: IphoneDataOptions = { seed: 42, days: 3, nowMs: NOW_MS }
const HEALTHKIT_UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/

/** What the bridge makes of one sample: undefined when it stores it (or validly ignores it), else the code. */
function bridgeVerdict(outcome: SampleOutcome, nowMs: number): string | undefined {
  if (outcome.kind === 'ignored') return undefined
  if (outcome.kind === 'rejected') return outcome.rejection.code
  const origin = { userId: 'demo-user', source: 'healthkit' as const, ingestedAt: new Date(nowMs).toISOString() }
  for (const draft of outcome.drafts) {
    const built: BuildResult = buildEvent(draft, origin, { nowMs })
    if (!built.ok) return built.rejection.code
  }
  return undefined
}

const good = (dataset: HealthKitDataset): NativeSample[] =>
  dataset.samples.filter((s) => s.expectedRejection === undefined).map((s) => s.sample)
const ofType = (dataset: HealthKitDataset, type: string): NativeSample[] => good(dataset).filter((s) => s.type === type)
const ms = (iso: string): number => parseInstant(iso) ?? Number.NaN

describe('simulated iPhone: HealthKit data', () => {
  test('is deterministic for a seed and differs between seeds', () => {
    assert.deepEqual(generateHealthKitData(OPTIONS), generateHealthKitData(OPTIONS))
    const other = generateHealthKitData({ ...OPTIONS, seed: 43 })
    assert.notDeepEqual(other.samples.map((s) => s.sample.value), generateHealthKitData(OPTIONS).samples.map((s) => s.sample.value))
    const a = createRandom(7)
    const b = createRandom(7)
    assert.deepEqual(Array.from({ length: 5 }, () => a.uuid()), Array.from({ length: 5 }, () => b.uuid()))
  })

  test('every good sample passes the bridge validation; every broken one is rejected with its code', () => {
    const dataset = generateHealthKitData(OPTIONS)
    const broken = dataset.samples.filter((s) => s.expectedRejection !== undefined)
    assert.ok(broken.length >= 5, 'the demo needs several broken samples')
    assert.ok(new Set(broken.map((s) => s.expectedRejection)).size >= 4, 'of several kinds')
    for (const { sample, expectedRejection, flaw } of dataset.samples) {
      const verdict = bridgeVerdict(normalizeNativeSample(sample), NOW_MS)
      assert.equal(verdict, expectedRejection, `${sample.type} ${sample.start}${flaw === undefined ? '' : ` (${flaw})`}`)
    }
  })

  test('stays valid for any seed, length, clock and time zone', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }),
      fc.constantFrom(-480, -300, 0, 60, 330, 540, 765),
      (seed, days, nowMs, offsetMinutes) => {
        const dataset = generateHealthKitData({ seed, days, nowMs, offsetMinutes })
        for (const { sample, expectedRejection } of dataset.samples) {
          assert.equal(bridgeVerdict(normalizeNativeSample(sample), nowMs), expectedRejection, JSON.stringify(sample))
        }
        for (const sample of good(dataset)) assert.ok(ms(sample.end) <= nowMs, 'nothing from the future')
      }), { numRuns: 30 })
  })

  test('covers every type with HealthKit units, uuids and local timestamps', () => {
    const dataset = generateHealthKitData(OPTIONS)
    const samples = good(dataset)
    for (const type of Object.values(HK).filter((t) => t !== HK.bodyMass)) {
      assert.ok(samples.some((s) => s.type === type), `${type} is generated`)
    }
    const uuids = dataset.samples.map((s) => s.sample.uuid)
    assert.equal(new Set(uuids).size, uuids.length, 'uuids are unique')
    for (const uuid of uuids) assert.match(uuid, HEALTHKIT_UUID)
    for (const sample of samples) {
      assert.match(sample.start, /\+01:00$/)
      assert.match(sample.end, /\+01:00$/)
      assert.ok(ms(sample.end) >= ms(sample.start))
    }
    const units = (type: string): Set<string | undefined> => new Set(ofType(dataset, type).map((s) => s.unit))
    assert.deepEqual(units(HK.heartRate), new Set(['count/min']))
    assert.deepEqual(units(HK.oxygenSaturation), new Set(['%']))
    assert.deepEqual(units(HK.activeEnergy), new Set(['kcal']))
    assert.deepEqual(units(HK.distance), new Set(['m', 'km']))
    assert.deepEqual(units(HK.sleepAnalysis), new Set([undefined]))
    for (const spo2 of ofType(dataset, HK.oxygenSaturation)) assert.ok(spo2.value >= 0.94 && spo2.value <= 0.99, 'SpO₂ is a fraction')
    assert.equal(ofType(dataset, HK.restingHeartRate).length, OPTIONS.days)
    assert.equal(ofType(dataset, HK.wristTemperature).length, OPTIONS.days)
    assert.equal(ofType(dataset, HK.vo2Max).length, 1)
    assert.ok(ofType(dataset, HK.heartRate).length > 200 * OPTIONS.days, 'heart rate every few minutes')
  })

  test('heart rate follows the day: lower asleep at night than in the afternoon', () => {
    const dataset = generateHealthKitData(OPTIONS)
    const hour = (iso: string): number => Number(iso.slice(11, 13))
    const heart = ofType(dataset, HK.heartRate)
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length
    const night = mean(heart.filter((s) => hour(s.start) >= 1 && hour(s.start) < 5).map((s) => s.value))
    const afternoon = mean(heart.filter((s) => hour(s.start) >= 13 && hour(s.start) < 17).map((s) => s.value))
    assert.ok(night + 8 < afternoon, `night ${night.toFixed(1)} bpm vs afternoon ${afternoon.toFixed(1)} bpm`)
    const resting = ofType(dataset, HK.restingHeartRate).map((s) => s.value)
    assert.ok(Math.abs(mean(resting) - night) < 8, 'asleep heart rate sits near the resting heart rate')
  })

  test('sleep is one in-bed span per night with contiguous stage spans inside it, deep early and REM late', () => {
    const dataset = generateHealthKitData(OPTIONS)
    const sleep = ofType(dataset, HK.sleepAnalysis)
    const inBed = sleep.filter((s) => s.value === 0)
    assert.equal(inBed.length, OPTIONS.days)
    assert.deepEqual(new Set(sleep.map((s) => s.value)), new Set([0, 2, 3, 4, 5]))
    for (const bed of inBed) {
      const stages = sleep.filter((s) => s.value !== 0 && ms(s.start) >= ms(bed.start) && ms(s.end) <= ms(bed.end))
      assert.equal(stages[0]?.start, bed.start, 'stages start with the in-bed span')
      assert.equal(stages.at(-1)?.end, bed.end, 'and end with it')
      for (let i = 1; i < stages.length; i++) assert.equal(stages[i]?.start, stages[i - 1]?.end, 'stages are contiguous')
      const minutes = (value: number, from: number, to: number): number => stages
        .filter((s) => s.value === value && ms(s.start) >= from && ms(s.start) < to)
        .reduce((sum, s) => sum + (ms(s.end) - ms(s.start)) / 60_000, 0)
      const middle = (ms(bed.start) + ms(bed.end)) / 2
      assert.ok(minutes(4, ms(bed.start), middle) > minutes(4, middle, ms(bed.end)), 'deep sleep mostly in the first half')
      assert.ok(minutes(5, middle, ms(bed.end)) > minutes(5, ms(bed.start), middle), 'REM mostly in the second half')
      const asleepHours = (minutes(3, 0, Infinity) + minutes(4, 0, Infinity) + minutes(5, 0, Infinity)) / 60
      assert.ok(asleepHours > 5.5 && asleepHours < 10, `asleep ${asleepHours.toFixed(1)} h`)
    }
  })

  test('the Health Auto Export payload passes the bridge validation', () => {
    const dataset = generateHealthKitData(OPTIONS)
    let events = 0
    for (const metric of dataset.autoExport.data.metrics) {
      if (!isSupportedExportMetric(metric.name)) continue
      for (const point of metric.data) {
        const outcome = normalizeExportPoint({ name: metric.name, units: metric.units }, point)
        assert.equal(bridgeVerdict(outcome, NOW_MS), undefined, `${metric.name} ${JSON.stringify(point)}`)
        if (outcome.kind === 'drafts') events += outcome.drafts.length
      }
    }
    for (const workout of dataset.autoExport.data.workouts) {
      assert.equal(bridgeVerdict(normalizeExportWorkout(workout), NOW_MS), undefined)
    }
    assert.ok(events >= 10)
  })
})

describe('simulated iPhone: upload plan', () => {
  test('pages per type and day of at most 500 samples, each sample sent exactly once', () => {
    const dataset = generateHealthKitData({ ...OPTIONS, days: 5 })
    const plan = planUploads(dataset)
    const sent: string[] = []
    for (const stream of plan.sync) {
      for (const batch of stream.batches) {
        const samples = (batch.body as { samples: NativeSample[] }).samples
        assert.ok(samples.length > 0 && samples.length <= MAX_BATCH_SAMPLES)
        assert.equal(batch.items, samples.length)
        assert.equal(new Set(samples.map((s) => s.type)).size, 1, 'one type per page')
        const days = new Set(dataset.samples.filter((s) => samples.includes(s.sample)).map((s) => s.day))
        assert.equal(days.size, 1, 'one day per page')
        samples.forEach((sample, index) => {
          const expected = dataset.samples.find((s) => s.sample === sample)?.expectedRejection
          assert.equal(batch.expectedRejections.get(index), expected)
        })
        sent.push(...samples.map((s) => s.uuid))
      }
    }
    assert.deepEqual(sent.sort(), dataset.samples.map((s) => s.sample.uuid).sort())
  })

  test('follow-ups: a verbatim re-upload, a deletion of a sent sample, one Health Auto Export payload', () => {
    const dataset = generateHealthKitData(OPTIONS)
    const plan = planUploads(dataset)
    const [reupload, deletion, autoExport] = plan.followUps.map((stream) => stream.batches[0])
    const firstHrv = plan.sync.find((stream) => stream.stream === 'HeartRateVariabilitySDNN')?.batches[0]
    assert.deepEqual(reupload?.body, firstHrv?.body)
    assert.deepEqual(reupload?.expect, { accepted: 0, duplicates: firstHrv?.items })
    assert.deepEqual((deletion?.body as { deleted: unknown[] }).deleted, [dataset.deletedLater])
    assert.ok(dataset.samples.some((s) => s.sample.uuid === dataset.deletedLater.uuid && s.expectedRejection === undefined))
    assert.equal(autoExport?.path, '/v1/healthkit/auto-export')
    assert.equal(autoExport?.userId, dataset.autoExportUserId)
  })
})
