import { formatInstant } from '../domain/time.ts'
import type { SampleRejectionCode } from '../errors.ts'
import { requestJson } from './http.ts'
import type { OutcomeCounts, ProgressReporter } from './progress.ts'
import { createRandom, type Random } from './random.ts'
import { SimulatorError, type Simulator, type SimulatorContext, type SimulatorOutcome } from './simulator.ts'

/**
 * A simulated iPhone with a paired Apple Watch: generates several days of realistic HealthKit samples for one
 * user and uploads them to the bridge the way an iOS app built on HKAnchoredObjectQuery would (per type, in
 * time order, pages of at most 500 samples), plus the awkward parts of real traffic: a few broken samples, a
 * deletion, a re-upload after a lost anchor, and one Health Auto Export payload.
 */

const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS

/** Samples per upload: the page size an app passes to HKAnchoredObjectQuery. */
export const MAX_BATCH_SAMPLES = 500

export const HK = {
  heartRate: 'HKQuantityTypeIdentifierHeartRate',
  hrv: 'HKQuantityTypeIdentifierHeartRateVariabilitySDNN',
  restingHeartRate: 'HKQuantityTypeIdentifierRestingHeartRate',
  respiratoryRate: 'HKQuantityTypeIdentifierRespiratoryRate',
  oxygenSaturation: 'HKQuantityTypeIdentifierOxygenSaturation',
  wristTemperature: 'HKQuantityTypeIdentifierAppleSleepingWristTemperature',
  stepCount: 'HKQuantityTypeIdentifierStepCount',
  activeEnergy: 'HKQuantityTypeIdentifierActiveEnergyBurned',
  distance: 'HKQuantityTypeIdentifierDistanceWalkingRunning',
  vo2Max: 'HKQuantityTypeIdentifierVO2Max',
  bodyMass: 'HKQuantityTypeIdentifierBodyMass',
  sleepAnalysis: 'HKCategoryTypeIdentifierSleepAnalysis'
} as const

/** Progress labels, in the order the streams are shown. */
const TYPE_LABELS: ReadonlyArray<[string, string]> = [
  [HK.heartRate, 'heart rate'],
  [HK.hrv, 'HRV (SDNN)'],
  [HK.restingHeartRate, 'resting HR'],
  [HK.respiratoryRate, 'respiratory rate'],
  [HK.oxygenSaturation, 'SpO₂'],
  [HK.sleepAnalysis, 'sleep stages'],
  [HK.wristTemperature, 'wrist temperature'],
  [HK.stepCount, 'steps'],
  [HK.activeEnergy, 'active energy'],
  [HK.distance, 'distance'],
  [HK.vo2Max, 'VO₂ max'],
  [HK.bodyMass, 'body mass']
]

export interface HealthKitSource {
  name: string
  bundle_id: string
  version: string
  product_type?: string
}

export interface HealthKitDevice {
  name: string
  manufacturer: string
  model: string
  hardware_version: string
  software_version: string
}

/** One sample in the bridge's native upload format (design §5, reference §3.5). */
export interface NativeSample {
  uuid: string
  type: string
  start: string
  end: string
  value: number
  unit?: string
  value_name?: string
  source: HealthKitSource
  device?: HealthKitDevice
  metadata?: Record<string, unknown>
}

export interface GeneratedSample {
  sample: NativeSample
  /** Index of the local day the app uploads it with; a night belongs to the day it ends on. */
  day: number
  /** Set only on deliberately broken samples: the code the bridge must reject them with. */
  expectedRejection?: SampleRejectionCode
  /** What is wrong with a broken sample. */
  flaw?: string
}

export interface AutoExportMetric {
  name: string
  units: string
  data: Array<Record<string, unknown>>
}

/** The Health Auto Export app's REST payload (reference §3.6). */
export interface AutoExportPayload {
  data: { metrics: AutoExportMetric[], workouts: Array<Record<string, unknown>> }
}

export interface HealthKitDataset {
  userId: string
  /** The user of the Health Auto Export payload: a second person who uses that app instead of ours. */
  autoExportUserId: string
  offsetMinutes: number
  days: number
  /** Local midnight starting the first simulated day, and the one ending the last (epoch ms). */
  fromMs: number
  toMs: number
  /** Every generated sample, good and broken, per type in time order. */
  samples: GeneratedSample[]
  /** A user-entered sample the Health app later reports deleted. */
  deletedLater: { uuid: string, type: string }
  autoExport: AutoExportPayload
}

export interface IphoneDataOptions {
  seed: number
  days: number
  /** The simulated days are the `days` whole local days that end at the last local midnight at or before this. */
  nowMs: number
  /** Minutes east of UTC of the user's clock. */
  offsetMinutes?: number
  userId?: string
}

export const DEFAULT_USER_ID = 'demo-user'
const DEFAULT_OFFSET_MINUTES = 60

type Stage = 'inBed' | 'awake' | 'core' | 'deep' | 'rem'

/** HKCategoryValueSleepAnalysis raw values and case names (reference §3.3). */
const SLEEP_VALUES: Readonly<Record<Stage, { value: number, name: string }>> = {
  inBed: { value: 0, name: 'inBed' },
  awake: { value: 2, name: 'awake' },
  core: { value: 3, name: 'asleepCore' },
  deep: { value: 4, name: 'asleepDeep' },
  rem: { value: 5, name: 'asleepREM' }
}

interface Span {
  stage: Stage
  startMs: number
  endMs: number
}

interface Night {
  /** Day index of the morning the night ends on. */
  day: number
  inBedStartMs: number
  inBedEndMs: number
  asleepStartMs: number
  asleepEndMs: number
  /** Contiguous awake/core/deep/REM spans covering the whole in-bed span. */
  stages: Span[]
}

interface Workout {
  day: number
  uuid: string
  startMs: number
  endMs: number
  targetBpm: number
  steps: number
  distanceKm: number
  energyKcal: number
}

const round = (value: number, decimals: number): number => {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}
const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))
const toSecond = (ms: number): number => Math.round(ms / SECOND_MS) * SECOND_MS

/**
 * Deterministic: the same options give the same dataset, byte for byte. Realism is about shape, not
 * medicine: heart rate follows sleep stages, a circadian curve, steps and an evening run; sleep comes in
 * ~90-minute cycles with deep sleep early and REM late; SpO₂ is a fraction as HealthKit stores it.
 */
export function generateHealthKitData(options: IphoneDataOptions): HealthKitDataset {
  const { seed, days } = options
  if (!Number.isInteger(days) || days < 1) throw new RangeError('days must be a positive integer')
  const offsetMinutes = options.offsetMinutes ?? DEFAULT_OFFSET_MINUTES
  const userId = options.userId ?? DEFAULT_USER_ID
  const offsetMs = offsetMinutes * MINUTE_MS
  const toMs = Math.floor((options.nowMs + offsetMs) / DAY_MS) * DAY_MS - offsetMs
  const fromMs = toMs - days * DAY_MS
  const dayStart = (day: number): number => fromMs + day * DAY_MS
  const at = (ms: number): string => formatInstant(toSecond(ms), offsetMinutes)
  const localHour = (ms: number): number => (((ms + offsetMs) % DAY_MS) + DAY_MS) % DAY_MS / HOUR_MS
  const dayOf = (ms: number): number => clamp(Math.floor((ms - fromMs) / DAY_MS), 0, days - 1)

  const rng = createRandom(seed)
  const watchSource: HealthKitSource = { name: 'Apple Watch', bundle_id: `com.apple.health.${rng.uuid()}`, version: '11.2', product_type: 'Watch7,1' }
  const watchDevice: HealthKitDevice = { name: 'Apple Watch', manufacturer: 'Apple Inc.', model: 'Watch', hardware_version: 'Watch7,1', software_version: '11.2' }
  const phoneSource: HealthKitSource = { name: 'iPhone', bundle_id: `com.apple.health.${rng.uuid()}`, version: '18.2', product_type: 'iPhone15,2' }
  const phoneDevice: HealthKitDevice = { name: 'iPhone', manufacturer: 'Apple Inc.', model: 'iPhone', hardware_version: 'iPhone15,2', software_version: '18.2' }

  // Per-person baselines, then per-day variation around them.
  const restingBaseBpm = rng.normal(53, 1.5)
  const hrvBaseMs = rng.normal(52, 4)
  const workoutDays = new Set<number>()
  for (let day = days - 1; day >= 0; day -= 2) workoutDays.add(day)

  // Night n ends on the morning of day n; night `days` ends after the window (its samples are not written
  // yet, HealthKit writes sleep on waking) but its evening part still shapes the last day's heart rate.
  const nights: Night[] = []
  for (let day = 0; day <= days; day++) nights.push(generateNight(rng, day, dayStart(day)))

  const workouts: Workout[] = []
  for (const day of [...workoutDays].sort((a, b) => a - b)) {
    const startMs = toSecond(dayStart(day) + 18 * HOUR_MS + rng.int(5, 45) * MINUTE_MS)
    const minutes = rng.int(32, 50)
    workouts.push({
      day,
      uuid: rng.uuid(),
      startMs,
      endMs: startMs + minutes * MINUTE_MS + rng.int(0, 59) * SECOND_MS,
      targetBpm: rng.normal(150, 4),
      steps: Math.round(minutes * rng.normal(162, 3)),
      distanceKm: round((minutes / 60) * rng.normal(10.4, 0.4), 2),
      energyKcal: round(minutes * rng.normal(11.5, 0.5), 1)
    })
  }
  const workoutAt = (ms: number): Workout | undefined => workouts.find((w) => ms >= w.startMs && ms < w.endMs)
  const restingBpm: number[] = []
  for (let day = 0; day < days; day++) {
    restingBpm.push(restingBaseBpm + rng.normal(0, 1.1) + (workoutDays.has(day - 1) ? 1.2 : 0))
  }
  const stageAt = (ms: number): Stage | undefined => {
    const night = nights.find((n) => ms >= n.inBedStartMs && ms < n.inBedEndMs)
    return night?.stages.find((span) => ms >= span.startMs && ms < span.endMs)?.stage
  }

  const samples: GeneratedSample[] = []
  const quantity = (
    type: string, startMs: number, endMs: number, value: number, unit: string,
    origin: 'watch' | 'phone', metadata?: Record<string, unknown>
  ): NativeSample => ({
    uuid: rng.uuid(),
    type,
    start: at(startMs),
    end: at(endMs),
    value,
    unit,
    source: origin === 'watch' ? watchSource : phoneSource,
    device: origin === 'watch' ? watchDevice : phoneDevice,
    ...(metadata === undefined ? {} : { metadata })
  })
  const add = (sample: NativeSample, day: number): void => { samples.push({ sample, day }) }

  // Activity first: heart rate depends on how much the person is moving.
  const stepsByHour = new Map<number, number>()
  for (let day = 0; day < days; day++) {
    const dayFactor = clamp(rng.normal(1, 0.18), 0.5, 1.6)
    for (let hour = 0; hour < 24; hour++) {
      const hourStartMs = dayStart(day) + hour * HOUR_MS
      const inBedMinutes = nights.reduce((sum, n) =>
        sum + Math.max(0, Math.min(n.inBedEndMs, hourStartMs + HOUR_MS) - Math.max(n.inBedStartMs, hourStartMs)), 0) / MINUTE_MS
      const awakeShare = 1 - inBedMinutes / 60
      // The phone stays at home during the run; the watch writes the run's own samples.
      const phoneAway = workouts.some((w) => w.startMs < hourStartMs + HOUR_MS && w.endMs > hourStartMs) ? 0.15 : 1
      const steps = Math.round((STEP_PROFILE[hour] ?? 0) * dayFactor * awakeShare * phoneAway * rng.between(0.55, 1.45))
      stepsByHour.set(hourStartMs, steps)
      const energyKcal = awakeShare > 0.2
        ? Math.max(0.5, 5 * awakeShare + steps * 0.045 + rng.normal(0, 1.2))
        : rng.between(0.3, 1.8)
      add(quantity(HK.activeEnergy, hourStartMs, hourStartMs + HOUR_MS, round(energyKcal, 2), 'kcal', 'watch'), day)
      if (steps < 20) continue
      const startMs = hourStartMs + rng.int(0, 8) * MINUTE_MS + rng.int(0, 59) * SECOND_MS
      const endMs = hourStartMs + HOUR_MS - rng.int(1, 8) * MINUTE_MS
      add(quantity(HK.stepCount, startMs, endMs, steps, 'count', 'phone'), day)
      add(quantity(HK.distance, startMs, endMs, round(steps * rng.between(0.72, 0.78), 1), 'm', 'phone'), day)
    }
  }
  for (const workout of workouts) {
    const meta = { HKWorkoutUUID: workout.uuid, HKIndoorWorkout: false }
    add(quantity(HK.stepCount, workout.startMs, workout.endMs, workout.steps, 'count', 'watch', meta), workout.day)
    // Workout distance comes in kilometres, the unit the app shows the run in; the bridge converts.
    add(quantity(HK.distance, workout.startMs, workout.endMs, workout.distanceKm, 'km', 'watch', meta), workout.day)
    add(quantity(HK.activeEnergy, workout.startMs, workout.endMs, workout.energyKcal, 'kcal', 'watch', meta), workout.day)
  }
  const lastWorkout = workouts.at(-1)
  if (lastWorkout !== undefined) {
    const measuredMs = lastWorkout.endMs + 2 * MINUTE_MS
    add(quantity(HK.vo2Max, measuredMs, measuredMs, round(rng.normal(44.2, 0.8), 2), 'mL/min·kg', 'watch',
      { HKVO2MaxTestType: 2 }), lastWorkout.day)
  }

  // Heart rate: every 4–7 minutes in the background, every minute during the run.
  const heartTimes: number[] = []
  for (let t = fromMs + rng.int(0, 300) * SECOND_MS; t < toMs; t += rng.int(240, 420) * SECOND_MS) {
    if (workoutAt(t) === undefined) heartTimes.push(t)
  }
  for (const workout of workouts) {
    for (let t = workout.startMs + 30 * SECOND_MS; t < workout.endMs; t += MINUTE_MS) heartTimes.push(t)
  }
  heartTimes.sort((a, b) => a - b)
  for (const t of heartTimes) {
    const day = dayOf(t)
    const resting = restingBpm[day] ?? restingBaseBpm
    const workout = workoutAt(t)
    const stage = stageAt(t)
    let bpm: number
    let motion: number | undefined
    if (workout !== undefined) {
      const minute = (t - workout.startMs) / MINUTE_MS
      const totalMinutes = (workout.endMs - workout.startMs) / MINUTE_MS
      const warm = clamp(minute / 8, 0, 1)
      const cool = clamp((totalMinutes - minute) / 4, 0, 1)
      bpm = 98 + (workout.targetBpm + 0.2 * minute - 98) * Math.min(warm, cool) + rng.normal(0, 3)
      motion = 2
    } else if (stage !== undefined) {
      const stageOffset = { inBed: 8, awake: 9, core: 2, deep: -2, rem: 6 }[stage]
      bpm = resting + stageOffset + rng.normal(0, 1.5)
    } else {
      const hour = localHour(t)
      const circadian = 5 * Math.sin((2 * Math.PI * (hour - 9)) / 24)
      const hourStartMs = t - ((t - fromMs) % HOUR_MS)
      const activity = ((stepsByHour.get(hourStartMs) ?? 0) / 1000) * 6
      const recent = workouts.find((w) => t >= w.endMs && t < w.endMs + 40 * MINUTE_MS)
      const afterRun = recent === undefined ? 0 : 28 * Math.exp(-(t - recent.endMs) / (8 * MINUTE_MS))
      bpm = resting + 12 + circadian + activity + afterRun + rng.normal(0, 3.5)
      motion = 1
    }
    const value = Math.round(clamp(bpm, resting - 4, 190))
    add(quantity(HK.heartRate, t, t, value, 'count/min', 'watch',
      motion === undefined ? undefined : { HKMetadataKeyHeartRateMotionContext: motion }), day)
  }

  for (let day = 0; day < days; day++) {
    add(quantity(HK.restingHeartRate, dayStart(day), dayStart(day) + DAY_MS - MINUTE_MS,
      Math.round(restingBpm[day] ?? restingBaseBpm), 'count/min', 'watch'), day)
  }

  // Everything measured during a night, uploaded with the day the night ends on.
  for (const night of nights.slice(0, days)) {
    const { day, asleepStartMs, asleepEndMs } = night
    const asleepMs = asleepEndMs - asleepStartMs
    const tired = workoutDays.has(day - 1) ? 4 : 0
    const hrvCount = rng.int(3, 5)
    for (let i = 0; i < hrvCount; i++) {
      const t = toSecond(clamp(asleepStartMs + ((i + 0.5) / hrvCount) * asleepMs + rng.normal(0, 10) * MINUTE_MS, asleepStartMs, asleepEndMs - MINUTE_MS))
      const deepBonus = stageAt(t) === 'deep' ? 5 : 0
      const value = round(clamp(hrvBaseMs - tired + deepBonus + rng.normal(0, 7), 15, 140), 2)
      add(quantity(HK.hrv, t, t + MINUTE_MS, value, 'ms', 'watch', { HKAlgorithmVersion: 2 }), day)
    }
    for (let t = asleepStartMs + 10 * MINUTE_MS; t < asleepEndMs; t += 30 * MINUTE_MS + rng.int(-90, 90) * SECOND_MS) {
      const remBonus = stageAt(t) === 'rem' ? 0.8 : 0
      add(quantity(HK.respiratoryRate, t, t, round(rng.normal(14.6, 0.5) + remBonus, 1), 'count/min', 'watch'), day)
    }
    const spo2Count = rng.int(4, 7)
    for (let i = 0; i < spo2Count; i++) {
      const t = toSecond(asleepStartMs + ((i + rng.between(0.2, 0.8)) / spo2Count) * asleepMs)
      add(quantity(HK.oxygenSaturation, t, t, round(clamp(rng.normal(0.962, 0.01), 0.94, 0.99), 2), '%', 'watch'), day)
    }
    add(quantity(HK.wristTemperature, asleepStartMs, asleepEndMs, round(rng.normal(35.9, 0.18), 2), 'degC', 'watch'), day)

    add(sleepSample(rng.uuid(), 'inBed', night.inBedStartMs, night.inBedEndMs), day)
    for (const span of night.stages) add(sleepSample(rng.uuid(), span.stage, span.startMs, span.endMs), day)
  }
  function sleepSample(uuid: string, stage: Stage, startMs: number, endMs: number): NativeSample {
    return {
      uuid,
      type: HK.sleepAnalysis,
      start: at(startMs),
      end: at(endMs),
      value: SLEEP_VALUES[stage].value,
      value_name: SLEEP_VALUES[stage].name,
      source: watchSource,
      device: watchDevice
    }
  }

  // Daytime spot checks: SpO₂ readings in the background, an HRV reading from a Breathe session.
  for (let day = 0; day < days; day++) {
    for (let i = rng.int(1, 3); i > 0; i--) {
      const t = dayStart(day) + rng.int(9 * 60, 21 * 60) * MINUTE_MS
      add(quantity(HK.oxygenSaturation, t, t, round(clamp(rng.normal(0.972, 0.008), 0.94, 0.99), 2), '%', 'watch'), day)
    }
    if (rng.chance(0.6)) {
      const t = dayStart(day) + rng.int(10 * 60, 16 * 60) * MINUTE_MS
      add(quantity(HK.hrv, t, t + MINUTE_MS, round(clamp(rng.normal(38, 6), 12, 120), 2), 'ms', 'watch', { HKAlgorithmVersion: 2 }), day)
    }
  }

  // Steps typed into the Health app by hand; the user deletes them again later (the app uploads a deletion).
  const lastDay = days - 1
  const manualStartMs = dayStart(lastDay) + 10 * HOUR_MS
  const manual: NativeSample = {
    uuid: rng.uuid(),
    type: HK.stepCount,
    start: at(manualStartMs),
    end: at(manualStartMs + 30 * MINUTE_MS),
    value: 2500,
    unit: 'count',
    source: { name: 'Health', bundle_id: 'com.apple.Health', version: '18.2' },
    metadata: { HKWasUserEntered: true }
  }
  add(manual, lastDay)

  addBrokenSamples(rng, samples, { days, dayStart, at, offsetMs, watchSource, watchDevice, phoneSource, phoneDevice })

  const order = new Map(TYPE_LABELS.map(([type], index) => [type, index]))
  samples.sort((a, b) =>
    (order.get(a.sample.type) ?? 99) - (order.get(b.sample.type) ?? 99) ||
    a.day - b.day ||
    sortKey(a.sample.start).localeCompare(sortKey(b.sample.start)))

  return {
    userId,
    autoExportUserId: `${userId}-hae`,
    offsetMinutes,
    days,
    fromMs,
    toMs,
    samples,
    deletedLater: { uuid: manual.uuid, type: manual.type },
    autoExport: buildAutoExport(rng, samples, nights, workouts, lastDay, dayStart(lastDay), offsetMinutes)
  }
}

/** Zone-less broken timestamps sort as if they were local time: good enough for upload order. */
function sortKey(iso: string): string {
  return iso.slice(0, 19)
}

/** Typical steps per local hour on a workday: commute, lunch walk, commute home. */
const STEP_PROFILE: readonly number[] = [
  0, 0, 0, 0, 0, 0, 120, 950, 1350, 450, 320, 400, 1250, 650, 360, 400, 520, 1450, 900, 550, 420, 260, 140, 40
]

function generateNight(rng: Random, day: number, dayStartMs: number): Night {
  const inBedStartMs = toSecond(dayStartMs - 75 * MINUTE_MS + rng.normal(0, 20) * MINUTE_MS)
  const asleepStartMs = toSecond(inBedStartMs + rng.between(6, 20) * MINUTE_MS)
  const asleepEndMs = toSecond(dayStartMs + (6 * 60 + 45) * MINUTE_MS + rng.normal(0, 18) * MINUTE_MS)
  const inBedEndMs = toSecond(asleepEndMs + rng.between(3, 12) * MINUTE_MS)

  const stages: Span[] = [{ stage: 'awake', startMs: inBedStartMs, endMs: asleepStartMs }]
  const push = (stage: Stage, durationMs: number): void => {
    const last = stages.at(-1)
    const startMs = last?.endMs ?? asleepStartMs
    const endMs = toSecond(Math.min(startMs + durationMs, asleepEndMs))
    if (endMs - startMs < MINUTE_MS) return
    if (last !== undefined && last.stage === stage) last.endMs = endMs
    else stages.push({ stage, startMs, endMs })
  }
  // Deep sleep dominates the first cycles, REM the last ones (AASM-style hypnogram).
  const deepShares = [0.3, 0.22, 0.12, 0.05]
  for (let cycle = 0; (stages.at(-1)?.endMs ?? asleepStartMs) < asleepEndMs - MINUTE_MS; cycle++) {
    const cycleMs = rng.between(85, 105) * MINUTE_MS
    const deep = (deepShares[cycle] ?? 0) * rng.between(0.8, 1.2)
    const rem = Math.min(0.4, 0.1 + 0.07 * cycle) * rng.between(0.8, 1.2)
    const core = 1 - deep - rem
    push('core', cycleMs * core * 0.55)
    push('deep', cycleMs * deep)
    push('core', cycleMs * core * 0.45)
    push('rem', cycleMs * rem)
    if (cycle > 0 && rng.chance(0.35)) push('awake', rng.between(1, 4) * MINUTE_MS)
  }
  const lastEndMs = stages.at(-1)?.endMs ?? asleepStartMs
  if (lastEndMs < asleepEndMs) push('core', asleepEndMs - lastEndMs)
  stages.push({ stage: 'awake', startMs: stages.at(-1)?.endMs ?? asleepEndMs, endMs: inBedEndMs })
  return { day, inBedStartMs, inBedEndMs, asleepStartMs, asleepEndMs, stages }
}

interface BrokenContext {
  days: number
  dayStart: (day: number) => number
  at: (ms: number) => string
  offsetMs: number
  watchSource: HealthKitSource
  watchDevice: HealthKitDevice
  phoneSource: HealthKitSource
  phoneDevice: HealthKitDevice
}

/** Mistakes real uploaders make; the bridge must refuse each sample alone and keep the rest of its batch. */
function addBrokenSamples(rng: Random, samples: GeneratedSample[], context: BrokenContext): void {
  const { days, dayStart, at, watchSource, watchDevice, phoneSource, phoneDevice } = context
  const dayAt = (index: number): number => Math.min(index, days - 1)
  const watch = { source: watchSource, device: watchDevice }
  const broken = (day: number, code: SampleRejectionCode, flaw: string, sample: Omit<NativeSample, 'uuid'>): void => {
    samples.push({ sample: { uuid: rng.uuid(), ...sample }, day, expectedRejection: code, flaw })
  }
  const time = (day: number, minutes: number): number => dayStart(day) + minutes * MINUTE_MS

  let day = dayAt(0)
  broken(day, 'BB_SAMPLE_OUT_OF_RANGE', 'heart rate read in count/s (0.8 Hz = 48 bpm) but labelled count/min', {
    type: HK.heartRate, start: at(time(day, 14 * 60 + 3)), end: at(time(day, 14 * 60 + 3)), value: 0.8, unit: 'count/min', ...watch
  })
  day = dayAt(1)
  const localNoZone = new Date(time(day, 9 * 60 + 12) + context.offsetMs).toISOString().slice(0, 19)
  broken(day, 'BB_SAMPLE_BAD_TIME', 'timestamp without a zone', {
    type: HK.heartRate, start: localNoZone, end: localNoZone, value: 71, unit: 'count/min', ...watch
  })
  day = dayAt(0)
  broken(day, 'BB_SAMPLE_OUT_OF_RANGE', 'SpO₂ sensor glitch: 41 %', {
    type: HK.oxygenSaturation, start: at(time(day, 3 * 60 + 17)), end: at(time(day, 3 * 60 + 17)), value: 0.41, unit: '%', ...watch
  })
  day = dayAt(1)
  broken(day, 'BB_SAMPLE_UNIT_UNSUPPORTED', 'distance read with a count unit', {
    type: HK.distance, start: at(time(day, 15 * 60)), end: at(time(day, 16 * 60)), value: 412, unit: 'count',
    source: phoneSource, device: phoneDevice
  })
  day = dayAt(2)
  broken(day, 'BB_SAMPLE_END_BEFORE_START', 'end before start after a clock change', {
    type: HK.respiratoryRate, start: at(time(day, 4 * 60 + 40)), end: at(time(day, 4 * 60 + 10)), value: 14.2, unit: 'count/min', ...watch
  })
  day = dayAt(0)
  broken(day, 'BB_SAMPLE_UNKNOWN_TYPE', 'a type the bridge does not map', {
    type: HK.bodyMass, start: at(time(day, 7 * 60 + 5)), end: at(time(day, 7 * 60 + 5)), value: 72.4, unit: 'kg',
    source: { name: 'Withings', bundle_id: 'com.withings.wiScaleNG', version: '6.4' }
  })
  day = dayAt(1)
  broken(day, 'BB_SAMPLE_OUT_OF_RANGE', 'sleep analysis value from a newer iOS (7)', {
    type: HK.sleepAnalysis, start: at(time(day, 2 * 60)), end: at(time(day, 2 * 60 + 20)), value: 7, ...watch
  })
}

/** `yyyy-MM-dd HH:mm:ss +hhmm`, the way Health Auto Export writes dates. */
function exportDate(ms: number, offsetMinutes: number): string {
  const iso = formatInstant(toSecond(ms), offsetMinutes)
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:Z|([+-]\d{2}):(\d{2}))$/.exec(iso)
  if (match === null) throw new Error(`unexpected timestamp ${iso}`)
  return `${match[1]} ${match[2]} ${match[3] ?? '+00'}${match[4] ?? '00'}`
}

/**
 * One day of the same physiology as Health Auto Export would send it (aggregated by day, the app's default),
 * in the units of a European phone: kJ and km. Its values are computed from the generated samples.
 */
function buildAutoExport(
  rng: Random, samples: readonly GeneratedSample[], nights: readonly Night[], workouts: readonly Workout[],
  day: number, dayStartMs: number, offsetMinutes: number
): AutoExportPayload {
  const good = samples.filter((s) => s.day === day && s.expectedRejection === undefined && s.sample.source.name !== 'Health')
  const values = (type: string): number[] => good.filter((s) => s.sample.type === type).map((s) => s.sample.value)
  const sum = (list: number[]): number => list.reduce((a, b) => a + b, 0)
  const mean = (list: number[]): number => (list.length === 0 ? 0 : sum(list) / list.length)
  const night = nights[day]
  if (night === undefined) throw new Error('missing night')
  const date = exportDate(dayStartMs, offsetMinutes)
  const heart = values(HK.heartRate)
  const stageHours = (stage: Stage): number =>
    round(sum(night.stages.filter((s) => s.stage === stage).map((s) => s.endMs - s.startMs)) / HOUR_MS, 2)
  const watchName = "Demo's Apple Watch"
  const metrics: AutoExportMetric[] = [
    { name: 'heart_rate', units: 'bpm', data: [{ date, Min: Math.min(...heart), Avg: round(mean(heart), 1), Max: Math.max(...heart), source: watchName }] },
    { name: 'heart_rate_variability', units: 'ms', data: [{ date, qty: round(mean(values(HK.hrv)), 1), source: watchName }] },
    { name: 'resting_heart_rate', units: 'bpm', data: [{ date, qty: values(HK.restingHeartRate)[0] ?? 55, source: watchName }] },
    { name: 'blood_oxygen_saturation', units: '%', data: [{ date, qty: round(mean(values(HK.oxygenSaturation)) * 100, 1), source: watchName }] },
    { name: 'step_count', units: 'count', data: [{ date, qty: sum(values(HK.stepCount)), source: `Demo's iPhone|${watchName}` }] },
    { name: 'active_energy', units: 'kJ', data: [{ date, qty: round(sum(values(HK.activeEnergy)) * 4.184, 1), source: watchName }] },
    {
      name: 'walking_running_distance',
      units: 'km',
      data: [{
        date,
        qty: round(sum(good.filter((s) => s.sample.type === HK.distance).map((s) => s.sample.unit === 'km' ? s.sample.value : s.sample.value / 1000)), 2),
        source: `Demo's iPhone|${watchName}`
      }]
    },
    {
      name: 'sleep_analysis',
      units: 'hr',
      data: [{
        date: date.slice(0, 10),
        totalSleep: round(stageHours('core') + stageHours('deep') + stageHours('rem'), 2),
        asleep: 0,
        core: stageHours('core'),
        deep: stageHours('deep'),
        rem: stageHours('rem'),
        awake: stageHours('awake'),
        inBed: round((night.inBedEndMs - night.inBedStartMs) / HOUR_MS, 2),
        sleepStart: exportDate(night.asleepStartMs, offsetMinutes),
        sleepEnd: exportDate(night.asleepEndMs, offsetMinutes),
        inBedStart: exportDate(night.inBedStartMs, offsetMinutes),
        inBedEnd: exportDate(night.inBedEndMs, offsetMinutes),
        source: watchName
      }]
    },
    // The app reports metrics it does not know how the receiver uses; the bridge lists them as unsupported.
    { name: 'environmental_audio_exposure', units: 'dBASPL', data: [{ date, qty: round(rng.normal(68, 3), 1), source: `Demo's iPhone` }] }
  ]
  const run = workouts.find((w) => w.day === day)
  const runHeart = run === undefined ? [] : good.filter((s) => {
    if (s.sample.type !== HK.heartRate) return false
    const t = Date.parse(s.sample.start)
    return t >= run.startMs && t < run.endMs
  }).map((s) => s.sample.value)
  const workoutsOut = run === undefined ? [] : [{
    id: run.uuid,
    name: 'Outdoor Run',
    start: exportDate(run.startMs, offsetMinutes),
    end: exportDate(run.endMs, offsetMinutes),
    duration: Math.round((run.endMs - run.startMs) / SECOND_MS),
    activeEnergyBurned: { qty: round(run.energyKcal * 4.184, 1), units: 'kJ' },
    distance: { qty: run.distanceKm, units: 'km' },
    avgHeartRate: { qty: round(mean(runHeart), 1), units: 'bpm' }
  }]
  return { data: { metrics, workouts: workoutsOut } }
}

export type UploadPath = '/v1/healthkit/batch' | '/v1/healthkit/auto-export'

export interface UploadBatch {
  /** Progress stream the batch counts towards. */
  stream: string
  path: UploadPath
  /** Whose device token sends it. */
  userId: string
  body: unknown
  /** Samples, deletions and export data points in the body, counted the way the bridge indexes them. */
  items: number
  /** Index in the upload → the code the bridge must reject that sample with. */
  expectedRejections: ReadonlyMap<number, SampleRejectionCode>
  expect?: { accepted?: number, duplicates?: number, deleted?: number }
  /** Why this upload exists, for the summary (follow-ups only). */
  note?: string
}

export interface UploadStream {
  stream: string
  label: string
  /** Sent in order: an anchored query's pages must arrive in sequence. */
  batches: UploadBatch[]
}

export interface UploadPlan {
  /** The initial sync: one stream per HealthKit type, pages per local day of at most MAX_BATCH_SAMPLES. */
  sync: UploadStream[]
  /** After the sync, in order: a re-upload after a lost anchor, a deletion, a Health Auto Export payload. */
  followUps: UploadStream[]
}

/** Splits the dataset into the uploads an anchored-query app would make. Pure; tests inspect it. */
export function planUploads(dataset: HealthKitDataset): UploadPlan {
  const sync: UploadStream[] = []
  const labels = new Map(TYPE_LABELS)
  let anchor = 0
  for (const [type, label] of labels) {
    const ofType = dataset.samples.filter((s) => s.sample.type === type)
    if (ofType.length === 0) continue
    const stream = shortType(type)
    const batches: UploadBatch[] = []
    for (let day = 0; day < dataset.days; day++) {
      const ofDay = ofType.filter((s) => s.day === day)
      for (let offset = 0; offset < ofDay.length; offset += MAX_BATCH_SAMPLES) {
        const page = ofDay.slice(offset, offset + MAX_BATCH_SAMPLES)
        const expectedRejections = new Map<number, SampleRejectionCode>()
        page.forEach((s, index) => { if (s.expectedRejection !== undefined) expectedRejections.set(index, s.expectedRejection) })
        anchor += page.length
        batches.push({
          stream,
          path: '/v1/healthkit/batch',
          userId: dataset.userId,
          body: { device_install_id: DEVICE_INSTALL_ID, anchor: `${stream}:${anchor}`, samples: page.map((s) => s.sample), deleted: [] },
          items: page.length,
          expectedRejections
        })
      }
    }
    sync.push({ stream, label, batches })
  }

  const followUps: UploadStream[] = []
  const hrv = sync.find((s) => s.stream === shortType(HK.hrv))?.batches[0]
  if (hrv !== undefined && hrv.expectedRejections.size === 0) {
    followUps.push({
      stream: 're-upload',
      label: 're-upload',
      batches: [{
        ...hrv,
        stream: 're-upload',
        expect: { accepted: 0, duplicates: hrv.items },
        note: `re-upload of ${hrv.items} HRV samples after a lost anchor: ${hrv.items} duplicates, nothing rewritten`
      }]
    })
  }
  followUps.push({
    stream: 'deletions',
    label: 'deletion',
    batches: [{
      stream: 'deletions',
      path: '/v1/healthkit/batch',
      userId: dataset.userId,
      body: { device_install_id: DEVICE_INSTALL_ID, anchor: `deleted:${anchor}`, samples: [], deleted: [dataset.deletedLater] },
      items: 1,
      expectedRejections: new Map(),
      expect: { deleted: 1 },
      note: 'deletion of a hand-entered step sample: its event removed and announced as op "delete"'
    }]
  })
  const exportPoints = dataset.autoExport.data.metrics.reduce((n, m) => n + m.data.length, 0) + dataset.autoExport.data.workouts.length
  followUps.push({
    stream: 'auto-export',
    label: 'Health Auto Export',
    batches: [{
      stream: 'auto-export',
      path: '/v1/healthkit/auto-export',
      userId: dataset.autoExportUserId,
      body: dataset.autoExport,
      items: exportPoints,
      expectedRejections: new Map(),
      note: `Health Auto Export payload (user ${dataset.autoExportUserId}): ${exportPoints} data points`
    }]
  })
  return { sync, followUps }
}

const DEVICE_INSTALL_ID = '7C1D4A0E-2F5B-4B8E-9D3A-6E0F1A2B3C4D'

function shortType(type: string): string {
  return type.replace(/^HK(?:Quantity|Category)TypeIdentifier/, '')
}

interface UploadAnswer {
  accepted: number
  duplicates: number
  ignored: number
  deleted: number
  rejected: Array<{ index: number, code: string, message: string }>
  rejected_count: number
  unsupported_metrics?: string[]
}

export interface IphoneSimulatorOptions extends IphoneDataOptions {
  /** Types uploading at the same time; the iOS app runs one anchored query per type. */
  concurrency?: number
}

export function createIphoneSimulator(options: IphoneSimulatorOptions): Simulator {
  const dataset = generateHealthKitData(options)
  const plan = planUploads(dataset)
  const concurrency = options.concurrency ?? 3
  return {
    name: 'iphone',
    title: 'iPhone + Apple Watch · HealthKit',
    userIds: [dataset.userId, dataset.autoExportUserId],
    run: (context) => runIphone(dataset, plan, concurrency, context)
  }
}

async function runIphone(
  dataset: HealthKitDataset, plan: UploadPlan, concurrency: number, context: SimulatorContext
): Promise<SimulatorOutcome> {
  const { progress, signal } = context
  for (const stream of [...plan.sync, ...plan.followUps]) {
    progress.declare(stream.stream, stream.label, stream.batches.reduce((n, b) => n + b.items, 0))
  }

  const tokens = new Map<string, string>()
  for (const userId of [dataset.userId, dataset.autoExportUserId]) {
    const { body } = await requestJson<{ device_id: string, token: string }>({
      method: 'POST',
      url: `${context.baseUrl}/v1/users/${encodeURIComponent(userId)}/devices`,
      token: context.adminToken,
      body: { name: userId === dataset.userId ? 'Demo iPhone' : 'Health Auto Export' },
      signal
    })
    if (typeof body?.token !== 'string') throw new SimulatorError('device registration answered without a token')
    tokens.set(userId, body.token)
  }

  const outcome: SimulatorOutcome = { rejectionCodes: {}, surprises: [], notes: [] }
  const send = async (batch: UploadBatch, reporter: ProgressReporter): Promise<void> => {
    const token = tokens.get(batch.userId)
    if (token === undefined) throw new SimulatorError(`no device token for ${batch.userId}`)
    const { body } = await requestJson<UploadAnswer>({
      method: 'POST', url: `${context.baseUrl}${batch.path}`, token, body: batch.body, signal
    })
    const counts: OutcomeCounts = {
      accepted: body.accepted, duplicates: body.duplicates, ignored: body.ignored, rejected: body.rejected_count, deleted: body.deleted
    }
    reporter.record(batch.stream, batch.items, counts)
    for (const rejection of body.rejected) {
      outcome.rejectionCodes[rejection.code] = (outcome.rejectionCodes[rejection.code] ?? 0) + 1
      const expected = batch.expectedRejections.get(rejection.index)
      if (expected !== rejection.code) {
        outcome.surprises.push(`${batch.stream}: sample ${rejection.index} rejected with ${rejection.code} (${rejection.message}), expected ${expected ?? 'acceptance'}`)
      }
    }
    for (const [index, code] of batch.expectedRejections) {
      if (!body.rejected.some((r) => r.index === index)) outcome.surprises.push(`${batch.stream}: sample ${index} was accepted, expected ${code}`)
    }
    for (const [key, value] of Object.entries(batch.expect ?? {})) {
      const actual = counts[key as keyof OutcomeCounts]
      if (actual !== value) outcome.surprises.push(`${batch.stream}: ${key} ${actual}, expected ${value}`)
    }
    if (batch.note !== undefined) outcome.notes.push(batch.note)
  }

  // Each type's pages go in order; several types upload at once, like parallel anchored queries.
  const queue = [...plan.sync]
  const worker = async (): Promise<void> => {
    for (let stream = queue.shift(); stream !== undefined; stream = queue.shift()) {
      for (const batch of stream.batches) await send(batch, progress)
      progress.finish(stream.stream)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, () => worker()))
  for (const stream of plan.followUps) {
    for (const batch of stream.batches) await send(batch, progress)
    progress.finish(stream.stream)
  }
  return outcome
}
