import { formatInstant } from '../../domain/time.ts'
import type { OuraDataType } from '../../providers/oura/documents.ts'
import { createRandom, type Random } from '../random.ts'

/**
 * Seeded Oura v2 data for one simulated ring wearer: every document type the bridge reads, shaped like spec 1.29
 * and consistent with itself. A night is generated as a 30-second hypnogram, and every sleep figure is counted
 * from it (stages sum to time in bed, total sleep is deep + light + REM, the 5-minute phases and the heart-rate
 * rows are the same night); daily sleep scores that night, readiness reads the night and the previous day's
 * activity, activity is counted from its 5-minute classes. Realism is about shape, not medicine.
 */

const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS
const EPOCH_SECONDS = 30
const EPOCHS_PER_5_MIN = 10
const SLOT_MS = 5 * MINUTE_MS
const SLOTS_PER_DAY = 288

export interface OuraMeta {
  /** UTC. */
  updated_at: string
  version: number
}

/** `PublicSample`: `items[i]` is the value at `timestamp + i * interval` seconds. */
export interface OuraSample {
  interval: number
  items: Array<number | null>
  timestamp: string
}

export interface OuraReadinessContributors {
  activity_balance: number | null
  body_temperature: number | null
  hrv_balance: number | null
  previous_day_activity: number | null
  previous_night: number | null
  recovery_index: number | null
  resting_heart_rate: number | null
  sleep_balance: number | null
  sleep_regularity: number | null
}

export interface OuraSleepDocument {
  id: string
  average_breath: number | null
  average_heart_rate: number | null
  average_hrv: number | null
  awake_time: number | null
  bedtime_end: string
  bedtime_start: string
  day: string
  deep_sleep_duration: number | null
  efficiency: number | null
  heart_rate: OuraSample | null
  hrv: OuraSample | null
  latency: number | null
  light_sleep_duration: number | null
  low_battery_alert: boolean
  lowest_heart_rate: number | null
  movement_30_sec: string | null
  period: number
  readiness: {
    contributors: OuraReadinessContributors
    score: number | null
    temperature_deviation: number | null
    temperature_trend_deviation: number | null
  } | null
  readiness_score_delta: number | null
  rem_sleep_duration: number | null
  restless_periods: number | null
  sleep_algorithm_version: 'v1' | 'v2'
  sleep_analysis_reason: string | null
  sleep_phase_5_min: string | null
  sleep_phase_30_sec: string | null
  sleep_score_delta: number | null
  time_in_bed: number
  total_sleep_duration: number | null
  type: 'deleted' | 'sleep' | 'long_sleep' | 'late_nap' | 'rest'
  ring_id: string
  meta: OuraMeta
}

export interface OuraDailySleepDocument {
  id: string
  contributors: {
    deep_sleep: number | null
    efficiency: number | null
    latency: number | null
    rem_sleep: number | null
    restfulness: number | null
    timing: number | null
    total_sleep: number | null
  }
  day: string
  score: number | null
  timestamp: string
  meta: OuraMeta
}

export interface OuraDailyReadinessDocument {
  id: string
  contributors: OuraReadinessContributors
  day: string
  score: number | null
  temperature_deviation: number | null
  temperature_trend_deviation: number | null
  timestamp: string
  meta: OuraMeta
}

export interface OuraDailyActivityDocument {
  id: string
  active_calories: number
  average_met_minutes: number
  class_5_min: string
  contributors: {
    meet_daily_targets: number | null
    move_every_hour: number | null
    recovery_time: number | null
    stay_active: number | null
    training_frequency: number | null
    training_volume: number | null
  }
  day: string
  equivalent_walking_distance: number
  high_activity_met_minutes: number
  high_activity_time: number
  inactivity_alerts: number
  low_activity_met_minutes: number
  low_activity_time: number
  medium_activity_met_minutes: number
  medium_activity_time: number
  met: OuraSample
  meters_to_target: number
  non_wear_time: number
  resting_time: number
  score: number | null
  sedentary_met_minutes: number
  sedentary_time: number
  steps: number
  target_calories: number
  target_meters: number
  timestamp: string
  total_calories: number
  meta: OuraMeta
}

export interface OuraDailySpo2Document {
  id: string
  breathing_disturbance_index: number | null
  day: string
  spo2_percentage: { average: number } | null
  meta: OuraMeta
}

export interface OuraVo2MaxDocument {
  id: string
  day: string
  timestamp: string
  vo2_max: number | null
  meta: OuraMeta
}

export interface OuraDocumentsByType {
  sleep: OuraSleepDocument
  daily_sleep: OuraDailySleepDocument
  daily_readiness: OuraDailyReadinessDocument
  daily_activity: OuraDailyActivityDocument
  daily_spo2: OuraDailySpo2Document
  vo2_max: OuraVo2MaxDocument
}

export type OuraDocument = OuraDocumentsByType[OuraDataType]

export type OuraDocuments = { [T in OuraDataType]: Array<OuraDocumentsByType[T]> }

export type OuraHeartRateSource = 'awake' | 'workout' | 'rest' | 'sleep' | 'live' | 'session'

export interface OuraHeartRateRow {
  bpm: number
  source: OuraHeartRateSource
  /** UTC, `+00:00`. */
  timestamp: string
  /** Epoch ms (spec 1.29). */
  timestamp_unix: number
}

export interface OuraPersonalInfo {
  id: string
  age: number | null
  /** kg */
  weight: number | null
  /** m */
  height: number | null
  biological_sex: 'male' | 'female' | null
  email: string | null
}

export interface OuraDataOptions {
  seed: number
  days: number
  /** The simulated days are the `days` whole local days that end at the last local midnight at or before this. */
  nowMs: number
  /** Minutes east of UTC of the wearer's clock; Oura writes it into every local timestamp. */
  offsetMinutes?: number
  /** The Oura user id (`personal_info.id`, a notification's `user_id`); derived from the seed when absent. */
  userId?: string
  email?: string
}

export interface OuraDataset {
  userId: string
  offsetMinutes: number
  days: number
  /** Local midnight starting the first simulated day, and the one ending the last (epoch ms). */
  fromMs: number
  toMs: number
  personalInfo: OuraPersonalInfo
  documents: OuraDocuments
  /** Time-ordered rows of the `heartrate` collection. */
  heartRate: OuraHeartRateRow[]
}

export const DEFAULT_OFFSET_MINUTES = 60

/** Oura's sleep phase digits. */
type Phase = '1' | '2' | '3' | '4'
const DEEP: Phase = '1'
const LIGHT: Phase = '2'
const REM: Phase = '3'
const AWAKE: Phase = '4'

interface Night {
  startMs: number
  phases: Phase[]
  /** Heart rate per 5 minutes, null where the ring had not settled yet. */
  heartRateBpm: Array<number | null>
  hrvMs: Array<number | null>
  type: 'long_sleep' | 'sleep'
}

const round = (value: number, decimals: number): number => {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}
/** Oura reports nightly averages in steps of 1/8 (e.g. 52.375). */
const eighths = (value: number): number => Math.round(value * 8) / 8
const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))
const score = (value: number): number => Math.round(clamp(value, 1, 100))
const mean = (values: readonly number[]): number => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length)
const present = (values: ReadonlyArray<number | null>): number[] => values.filter((v): v is number => v !== null)
const toSecond = (ms: number): number => Math.round(ms / SECOND_MS) * SECOND_MS

function local(ms: number, offsetMinutes: number): string {
  const text = formatInstant(toSecond(ms), offsetMinutes)
  return offsetMinutes === 0 ? `${text.slice(0, -1)}+00:00` : text
}

/** A LocalizedDateTime as Oura writes it in samples: with milliseconds and the wearer's offset. */
function localWithMillis(ms: number, offsetMinutes: number): string {
  return local(ms, offsetMinutes).replace(/(T\d{2}:\d{2}:\d{2})/, '$1.000')
}

export function utcTimestamp(ms: number): string {
  return `${formatInstant(toSecond(ms), 0).slice(0, -1)}+00:00`
}

/** meta.updated_at: UTC with a `Z`, never later than the simulated now. */
function updatedAt(ms: number, nowMs: number): string {
  return new Date(toSecond(Math.min(ms, nowMs - MINUTE_MS))).toISOString().replace('.000Z', 'Z')
}

const lowerUuid = (rng: Random): string => rng.uuid().toLowerCase()

/** Deterministic: the same options give the same dataset, byte for byte. */
export function generateOuraData(options: OuraDataOptions): OuraDataset {
  const { seed, days, nowMs } = options
  if (!Number.isInteger(days) || days < 1) throw new RangeError('days must be a positive integer')
  const offsetMinutes = options.offsetMinutes ?? DEFAULT_OFFSET_MINUTES
  const offsetMs = offsetMinutes * MINUTE_MS
  const toMs = Math.floor((nowMs + offsetMs) / DAY_MS) * DAY_MS - offsetMs
  const fromMs = toMs - days * DAY_MS
  const dayStart = (day: number): number => fromMs + day * DAY_MS
  const dayName = (day: number): string => formatInstant(dayStart(day), offsetMinutes).slice(0, 10)

  const rng = createRandom(seed)
  const userId = options.userId ?? lowerUuid(rng)
  const ringId = lowerUuid(rng)
  const sex = rng.chance(0.5) ? 'male' as const : 'female' as const
  const heightM = round(sex === 'male' ? rng.normal(1.8, 0.06) : rng.normal(1.67, 0.06), 2)
  const weightKg = round(clamp(rng.normal(23.5, 2) * heightM * heightM, 45, 130), 1)
  const personalInfo: OuraPersonalInfo = {
    id: userId,
    age: rng.int(24, 62),
    weight: weightKg,
    height: heightM,
    biological_sex: sex,
    email: options.email ?? `wearer-${userId.slice(0, 8)}@example.com`
  }

  // Per-person baselines; each day varies around them.
  const restingBaseBpm = clamp(rng.normal(52, 3), 42, 65)
  const hrvBaseMs = clamp(rng.normal(45, 8), 20, 90)
  const breathBase = clamp(rng.normal(14.5, 0.6), 11, 18)
  const vo2Base = clamp(rng.normal(42, 4), 28, 58)
  const targetCalories = rng.int(35, 55) * 10
  const basalKcal = Math.round(weightKg * 22.5)

  // Night n ends on the morning of day n. Night `days` ends after the window: it is not a document yet, but
  // its evening part shapes the last day's activity and heart rate.
  const nights: Night[] = []
  for (let day = 0; day <= days; day++) nights.push(generateNight(rng, dayStart(day), restingBaseBpm, hrvBaseMs))
  const naps = new Map<number, Night>()
  for (let day = 0; day < days; day++) {
    if (rng.chance(0.2)) naps.set(day, generateNap(rng, dayStart(day), restingBaseBpm, hrvBaseMs))
  }
  const workoutDays = new Set<number>()
  for (let day = days - 1; day >= 0; day -= 2) workoutDays.add(day)
  const workouts = new Map<number, { startMs: number, endMs: number }>()
  for (const day of workoutDays) {
    const startMs = toSecond(dayStart(day) + 18 * HOUR_MS + rng.int(0, 50) * MINUTE_MS)
    workouts.set(day, { startMs, endMs: startMs + rng.int(30, 55) * MINUTE_MS })
  }

  const documents: OuraDocuments = {
    sleep: [], daily_sleep: [], daily_readiness: [], daily_activity: [], daily_spo2: [], vo2_max: []
  }
  let previousActivityScore: number | undefined
  const totalSleepScores: number[] = []
  for (let day = 0; day < days; day++) {
    const night = nights[day] as Night
    const stats = nightStats(night)
    const nightEndMs = night.startMs + night.phases.length * EPOCH_SECONDS * SECOND_MS
    const sleepUpdatedMs = nightEndMs + rng.int(5, 90) * MINUTE_MS

    // Daily sleep: contributors score the night; the score weighs them the way the Oura app explains it.
    const totalHours = stats.totalSeconds / 3600
    const midpointHour = ((night.startMs + nightEndMs) / 2 - dayStart(day)) / HOUR_MS
    const sleepContributors = {
      deep_sleep: score((stats.deepSeconds / 60) / 90 * 100),
      efficiency: score((stats.efficiency - 55) * 2.5),
      latency: score(100 - Math.max(0, Math.abs(stats.latencySeconds / 60 - 15) - 5) * 3),
      rem_sleep: score((stats.remSeconds / 60) / 105 * 100),
      restfulness: score(100 - stats.awakeSeconds / 60 * 0.6 - stats.restlessPeriods * 0.05),
      timing: score(100 - Math.max(0, Math.abs(midpointHour - 3) - 1) * 25),
      total_sleep: score(totalHours >= 7.5 ? 100 - Math.max(0, totalHours - 9) * 15 : 100 - (7.5 - totalHours) * 18)
    }
    totalSleepScores.push(sleepContributors.total_sleep)
    const sleepScore = score(
      0.35 * sleepContributors.total_sleep + 0.1 * sleepContributors.efficiency + 0.15 * sleepContributors.restfulness +
      0.1 * sleepContributors.rem_sleep + 0.1 * sleepContributors.deep_sleep + 0.1 * sleepContributors.latency +
      0.1 * sleepContributors.timing
    )
    const dailySleep: OuraDailySleepDocument = {
      id: lowerUuid(rng),
      contributors: sleepContributors,
      day: dayName(day),
      score: sleepScore,
      timestamp: local(dayStart(day), offsetMinutes),
      meta: { updated_at: updatedAt(sleepUpdatedMs + 2 * SECOND_MS, nowMs), version: rng.int(1, 3) }
    }

    // Readiness: last night's recovery signals against the personal baselines, plus yesterday's activity.
    const temperatureDeviationC = round(rng.normal(0, 0.18), 2)
    const recentTotal = totalSleepScores.slice(-7)
    const readinessContributors: OuraReadinessContributors = {
      activity_balance: score(rng.normal(82, 7)),
      body_temperature: score(100 - Math.max(0, Math.abs(temperatureDeviationC) - 0.1) * 60),
      hrv_balance: score(78 + 2 * (stats.averageHrvMs - hrvBaseMs)),
      previous_day_activity: score(previousActivityScore ?? rng.normal(80, 6)),
      previous_night: score(sleepScore + rng.normal(0, 3)),
      recovery_index: score(100 - Math.max(0, midpointHour - 3.5) * 20 + rng.normal(0, 4)),
      resting_heart_rate: score(98 - Math.max(0, stats.lowestBpm - restingBaseBpm) * 6),
      sleep_balance: score(mean(recentTotal) + rng.normal(0, 3)),
      sleep_regularity: score(rng.normal(82, 8))
    }
    const contributorValues = present(Object.values(readinessContributors))
    const readinessScore = score(mean(contributorValues) + rng.normal(0, 2))
    const readinessCore = {
      contributors: readinessContributors,
      score: readinessScore,
      temperature_deviation: temperatureDeviationC,
      temperature_trend_deviation: round(rng.normal(0, 0.1), 2)
    }
    const readiness: OuraDailyReadinessDocument = {
      id: lowerUuid(rng),
      contributors: readinessContributors,
      day: dayName(day),
      score: readinessScore,
      temperature_deviation: readinessCore.temperature_deviation,
      temperature_trend_deviation: readinessCore.temperature_trend_deviation,
      timestamp: local(dayStart(day), offsetMinutes),
      meta: { updated_at: updatedAt(sleepUpdatedMs + SECOND_MS, nowMs), version: rng.int(1, 3) }
    }

    documents.sleep.push(sleepDocument(rng, {
      night, stats, period: 0, day: dayName(day), ringId, offsetMinutes, breathBase,
      readiness: readinessCore, updatedAtUtc: updatedAt(sleepUpdatedMs, nowMs)
    }))
    const nap = naps.get(day)
    if (nap !== undefined) {
      const napStats = nightStats(nap)
      const napEndMs = nap.startMs + nap.phases.length * EPOCH_SECONDS * SECOND_MS
      documents.sleep.push(sleepDocument(rng, {
        night: nap, stats: napStats, period: 1, day: dayName(day), ringId, offsetMinutes, breathBase,
        readiness: null, updatedAtUtc: updatedAt(napEndMs + rng.int(5, 60) * MINUTE_MS, nowMs)
      }))
    }
    documents.daily_sleep.push(dailySleep)
    documents.daily_readiness.push(readiness)

    const activity = activityDocument(rng, {
      windowStartMs: dayStart(day) + 4 * HOUR_MS,
      sleeps: [night, nights[day + 1] as Night, ...(nap === undefined ? [] : [nap])],
      workout: workouts.get(day),
      weightKg,
      basalKcal,
      targetCalories,
      previousTrainingDays: [...workoutDays].filter((d) => d < day && d >= day - 7).length,
      day: dayName(day),
      offsetMinutes,
      nowMs
    })
    previousActivityScore = activity.score ?? undefined
    documents.daily_activity.push(activity)

    const spo2Average = round(clamp(rng.normal(96.8, 0.7), 93, 99.5), 3)
    documents.daily_spo2.push({
      id: lowerUuid(rng),
      breathing_disturbance_index: rng.int(0, 12),
      day: dayName(day),
      spo2_percentage: { average: spo2Average },
      meta: { updated_at: updatedAt(sleepUpdatedMs + 3 * SECOND_MS, nowMs), version: 1 }
    })

    // Oura estimates VO2 max now and then from a walk; here after each run, and on the first day.
    const workout = workouts.get(day)
    if (workout !== undefined || day === 0) {
      const atMs = workout === undefined ? dayStart(day) + rng.int(9 * 60, 20 * 60) * MINUTE_MS : workout.endMs + rng.int(10, 40) * MINUTE_MS
      documents.vo2_max.push({
        id: lowerUuid(rng),
        day: dayName(day),
        timestamp: localWithMillis(atMs, offsetMinutes),
        vo2_max: round(vo2Base + rng.normal(0, 0.6), 1),
        meta: { updated_at: updatedAt(atMs + 4 * SECOND_MS, nowMs), version: 1 }
      })
    }
  }

  const heartRate = heartRateRows(rng, {
    fromMs: (nights[0] as Night).startMs,
    toMs,
    nights: [...nights, ...naps.values()],
    workouts: [...workouts.values()],
    restingBaseBpm,
    nowMs
  })

  return { userId, offsetMinutes, days, fromMs, toMs, personalInfo, documents, heartRate }
}

interface NightStats {
  deepSeconds: number
  lightSeconds: number
  remSeconds: number
  awakeSeconds: number
  totalSeconds: number
  timeInBedSeconds: number
  latencySeconds: number
  efficiency: number
  restlessPeriods: number
  averageBpm: number
  lowestBpm: number
  averageHrvMs: number
}

function nightStats(night: Night): NightStats {
  const count = (phase: Phase): number => night.phases.filter((p) => p === phase).length * EPOCH_SECONDS
  const deepSeconds = count(DEEP)
  const lightSeconds = count(LIGHT)
  const remSeconds = count(REM)
  const awakeSeconds = count(AWAKE)
  const totalSeconds = deepSeconds + lightSeconds + remSeconds
  const timeInBedSeconds = night.phases.length * EPOCH_SECONDS
  const firstAsleep = night.phases.findIndex((p) => p !== AWAKE)
  const bpm = present(night.heartRateBpm)
  let restlessPeriods = 0
  for (let i = 1; i < night.phases.length; i++) {
    if (night.phases[i] === AWAKE && night.phases[i - 1] !== AWAKE) restlessPeriods++
  }
  return {
    deepSeconds,
    lightSeconds,
    remSeconds,
    awakeSeconds,
    totalSeconds,
    timeInBedSeconds,
    latencySeconds: Math.max(0, firstAsleep) * EPOCH_SECONDS,
    efficiency: Math.round(totalSeconds / timeInBedSeconds * 100),
    // Oura counts restless periods from movement, in the hundreds on a long night; scaled from awakenings here.
    restlessPeriods: restlessPeriods * 8 + Math.round(awakeSeconds / 60),
    averageBpm: eighths(mean(bpm)),
    lowestBpm: Math.min(...bpm),
    averageHrvMs: Math.round(mean(present(night.hrvMs)))
  }
}

/** Fills `phases` with one sleep cycle after another; deep sleep dominates early cycles, REM late ones. */
function fillCycles(rng: Random, phases: Phase[], epochs: number): void {
  const deepShares = [0.32, 0.24, 0.12, 0.06]
  for (let cycle = 0; phases.length < epochs; cycle++) {
    const cycleEpochs = Math.round(rng.between(85, 105) * 2)
    const deep = (deepShares[cycle] ?? 0.03) * rng.between(0.8, 1.2)
    const rem = Math.min(0.42, 0.1 + 0.08 * cycle) * rng.between(0.8, 1.2)
    const light = 1 - deep - rem
    const segments: Array<[Phase, number]> = [
      [LIGHT, light * 0.55], [DEEP, deep], [LIGHT, light * 0.45], [REM, rem]
    ]
    for (const [phase, share] of segments) {
      for (let i = Math.round(cycleEpochs * share); i > 0 && phases.length < epochs; i--) phases.push(phase)
    }
    if (cycle > 0 && rng.chance(0.6)) {
      for (let i = rng.int(2, 16); i > 0 && phases.length < epochs; i--) phases.push(AWAKE)
    }
  }
}

function vitals(
  rng: Random, phases: readonly Phase[], restingBaseBpm: number, hrvBaseMs: number
): { heartRateBpm: Array<number | null>, hrvMs: Array<number | null> } {
  const nightBpm = restingBaseBpm + rng.normal(0, 1.2)
  const nightHrv = hrvBaseMs * rng.between(0.85, 1.15)
  const heartRateBpm: Array<number | null> = []
  const hrvMs: Array<number | null> = []
  const slots = Math.ceil(phases.length / EPOCHS_PER_5_MIN)
  for (let slot = 0; slot < slots; slot++) {
    const phase = majorityPhase(phases, slot)
    // Heart rate dips through the middle of the night and rises towards waking; HRV mirrors it.
    const progress = (slot + 0.5) / slots
    const dip = Math.sin(Math.PI * Math.min(1, progress * 1.25))
    const stageBpm = phase === AWAKE ? 7 : phase === REM ? 3.5 : phase === LIGHT ? 1.5 : 0
    const stageHrv = phase === DEEP ? 9 : phase === REM ? -4 : phase === AWAKE ? -8 : 0
    const unsettled = slot === 0 && rng.chance(0.6)
    heartRateBpm.push(unsettled ? null : Math.round(nightBpm + 6 - 6 * dip + stageBpm + rng.normal(0, 0.8)))
    hrvMs.push(unsettled ? null : Math.round(clamp(nightHrv - 8 + 14 * dip + stageHrv + rng.normal(0, 3), 8, 200)))
  }
  return { heartRateBpm, hrvMs }
}

function majorityPhase(phases: readonly Phase[], slot: number): Phase {
  const counts = new Map<Phase, number>()
  for (const phase of phases.slice(slot * EPOCHS_PER_5_MIN, (slot + 1) * EPOCHS_PER_5_MIN)) {
    counts.set(phase, (counts.get(phase) ?? 0) + 1)
  }
  let best: Phase = AWAKE
  let bestCount = -1
  for (const phase of [DEEP, LIGHT, REM, AWAKE]) {
    const n = counts.get(phase) ?? 0
    if (n > bestCount) {
      best = phase
      bestCount = n
    }
  }
  return best
}

function generateNight(rng: Random, dayStartMs: number, restingBaseBpm: number, hrvBaseMs: number): Night {
  const startMs = toSecond(dayStartMs + clamp(rng.normal(-45, 25), -110, 40) * MINUTE_MS)
  const epochs = Math.round(clamp(rng.normal(7.7, 0.6), 5.5, 9.5) * 120)
  const phases: Phase[] = []
  for (let i = Math.round(clamp(rng.normal(15, 7), 2, 45) * 2); i > 0; i--) phases.push(AWAKE)
  const wakeEpochs = rng.int(10, 40)
  fillCycles(rng, phases, epochs - wakeEpochs)
  while (phases.length < epochs) phases.push(AWAKE)
  return { startMs, phases, ...vitals(rng, phases, restingBaseBpm, hrvBaseMs), type: 'long_sleep' }
}

/** An afternoon nap: light sleep with a little deep sleep, no REM. */
function generateNap(rng: Random, dayStartMs: number, restingBaseBpm: number, hrvBaseMs: number): Night {
  const startMs = toSecond(dayStartMs + rng.int(13 * 60, 16 * 60) * MINUTE_MS + rng.int(0, 59) * SECOND_MS)
  const epochs = rng.int(20, 60) * 2
  const phases: Phase[] = []
  for (let i = rng.int(4, 14); i > 0; i--) phases.push(AWAKE)
  let deepEpochs = rng.int(0, 16)
  while (phases.length < epochs - 4) phases.push(phases.length > epochs / 2 && deepEpochs-- > 0 ? DEEP : LIGHT)
  while (phases.length < epochs) phases.push(AWAKE)
  return { startMs, phases, ...vitals(rng, phases, restingBaseBpm + 6, hrvBaseMs * 0.9), type: 'sleep' }
}

interface SleepDocumentInput {
  night: Night
  stats: NightStats
  period: number
  day: string
  ringId: string
  offsetMinutes: number
  breathBase: number
  readiness: OuraSleepDocument['readiness']
  updatedAtUtc: string
}

function sleepDocument(rng: Random, input: SleepDocumentInput): OuraSleepDocument {
  const { night, stats, offsetMinutes } = input
  const endMs = night.startMs + stats.timeInBedSeconds * SECOND_MS
  let phases5 = ''
  for (let slot = 0; slot < Math.ceil(night.phases.length / EPOCHS_PER_5_MIN); slot++) phases5 += majorityPhase(night.phases, slot)
  const movement = night.phases.map((phase) => {
    if (phase === AWAKE) return rng.pick(['2', '3', '3', '4'])
    return rng.chance(phase === LIGHT ? 0.12 : 0.04) ? '2' : '1'
  }).join('')
  const sampleStart = localWithMillis(night.startMs, offsetMinutes)
  const isLong = night.type === 'long_sleep'
  return {
    id: lowerUuid(rng),
    average_breath: eighths(input.breathBase + rng.normal(0, 0.3)),
    average_heart_rate: stats.averageBpm,
    average_hrv: stats.averageHrvMs,
    awake_time: stats.awakeSeconds,
    bedtime_end: local(endMs, offsetMinutes),
    bedtime_start: local(night.startMs, offsetMinutes),
    day: input.day,
    deep_sleep_duration: stats.deepSeconds,
    efficiency: stats.efficiency,
    heart_rate: { interval: 300, items: night.heartRateBpm, timestamp: sampleStart },
    hrv: { interval: 300, items: night.hrvMs, timestamp: sampleStart },
    latency: stats.latencySeconds,
    light_sleep_duration: stats.lightSeconds,
    low_battery_alert: false,
    lowest_heart_rate: stats.lowestBpm,
    movement_30_sec: movement,
    period: input.period,
    readiness: input.readiness,
    readiness_score_delta: isLong ? rng.int(-3, 4) : null,
    rem_sleep_duration: stats.remSeconds,
    restless_periods: stats.restlessPeriods,
    sleep_algorithm_version: 'v2',
    sleep_analysis_reason: 'foreground_sleep_analysis',
    sleep_phase_5_min: phases5,
    sleep_phase_30_sec: night.phases.join(''),
    sleep_score_delta: isLong ? rng.int(-3, 4) : null,
    time_in_bed: stats.timeInBedSeconds,
    total_sleep_duration: stats.totalSeconds,
    type: night.type,
    ring_id: input.ringId,
    meta: { updated_at: input.updatedAtUtc, version: rng.int(1, 3) }
  }
}

/** MET ranges per activity class digit (`0` non-wear … `5` high). */
const CLASS_MET: Readonly<Record<string, readonly [number, number]>> = {
  0: [0, 0],
  1: [0.9, 0.95],
  2: [1, 1.2],
  3: [1.6, 2.8],
  4: [3, 5],
  5: [6, 10]
}
const CLASS_STEPS_PER_5_MIN: Readonly<Record<string, readonly [number, number]>> = {
  0: [0, 0],
  1: [0, 0],
  2: [0, 30],
  3: [60, 250],
  4: [250, 550],
  5: [650, 850]
}

interface ActivityInput {
  /** Local 04:00 of `day`: Oura's activity day runs from there for 24 hours. */
  windowStartMs: number
  sleeps: readonly Night[]
  workout: { startMs: number, endMs: number } | undefined
  weightKg: number
  basalKcal: number
  targetCalories: number
  previousTrainingDays: number
  day: string
  offsetMinutes: number
  nowMs: number
}

function activityDocument(rng: Random, input: ActivityInput): OuraDailyActivityDocument {
  const { windowStartMs, sleeps, workout } = input
  const asleep = (ms: number): boolean => sleeps.some((night) =>
    ms >= night.startMs && ms < night.startMs + night.phases.length * EPOCH_SECONDS * SECOND_MS)
  // The ring comes off once a day for charging, for an hour or so.
  const chargeSlot = rng.int(12 * 4, 16 * 12)
  const chargeSlots = rng.int(6, 16)
  let classes = ''
  for (let slot = 0; slot < SLOTS_PER_DAY; slot++) {
    const ms = windowStartMs + slot * SLOT_MS
    const localHour = 4 + slot / 12
    if (asleep(ms)) classes += '1'
    else if (slot >= chargeSlot && slot < chargeSlot + chargeSlots) classes += '0'
    else if (workout !== undefined && ms >= workout.startMs && ms < workout.endMs) classes += rng.chance(0.85) ? '5' : '4'
    else {
      const commute = (localHour >= 7.5 && localHour < 8.5) || (localHour >= 17 && localHour < 18)
      const r = rng.next()
      classes += commute ? (r < 0.3 ? '4' : r < 0.75 ? '3' : '2') : (r < 0.015 ? '4' : r < 0.14 ? '3' : '2')
    }
  }

  const metPerMinute: number[] = []
  let steps = 0
  /** MET-minutes above rest per activity class digit. */
  const metMinutes = new Map<string, number>()
  let activeKcal = 0
  for (const digit of classes) {
    const [stepsMin, stepsMax] = CLASS_STEPS_PER_5_MIN[digit] ?? [0, 0]
    steps += rng.int(stepsMin, stepsMax)
    const [metMin, metMax] = CLASS_MET[digit] ?? [0, 0]
    for (let minute = 0; minute < 5; minute++) {
      const met = round(rng.between(metMin, metMax), 1)
      metPerMinute.push(met)
      metMinutes.set(digit, (metMinutes.get(digit) ?? 0) + Math.max(0, met - 1))
      // kcal per minute = MET × 3.5 mL/kg/min × kg / 200; active energy counts what low and higher activity
      // burns beyond rest (1 MET).
      if (digit >= '3') activeKcal += (met - 1) * 3.5 * input.weightKg / 200
    }
  }
  const seconds = (digit: string): number => [...classes].filter((c) => c === digit).length * 300
  let inactivityAlerts = 0
  let sedentaryRun = 0
  for (const digit of classes) {
    sedentaryRun = digit === '2' ? sedentaryRun + 1 : 0
    if (sedentaryRun === 12) inactivityAlerts++
    if (sedentaryRun === 12) sedentaryRun = 0
  }
  const activeCalories = Math.round(activeKcal)
  const equivalentWalkingDistanceM = Math.round(steps * 0.78 + (metMinutes.get('5') ?? 0) * 8)
  const targetMeters = Math.round(input.targetCalories * 20)
  const contributors = {
    meet_daily_targets: score(activeCalories / input.targetCalories * 85),
    move_every_hour: score(100 - inactivityAlerts * 20),
    recovery_time: score(rng.normal(92, 6)),
    stay_active: score(100 - Math.max(0, seconds('2') / 3600 - 8) * 8),
    training_frequency: score(55 + input.previousTrainingDays * 12),
    training_volume: score(60 + input.previousTrainingDays * 10 + rng.normal(0, 5))
  }
  const activityScore = score(mean(Object.values(contributors)) + rng.normal(0, 2))
  const windowEndMs = windowStartMs + DAY_MS
  return {
    id: lowerUuid(rng),
    active_calories: activeCalories,
    average_met_minutes: round(mean(metPerMinute), 5),
    class_5_min: classes,
    contributors,
    day: input.day,
    equivalent_walking_distance: equivalentWalkingDistanceM,
    high_activity_met_minutes: Math.round(metMinutes.get('5') ?? 0),
    high_activity_time: seconds('5'),
    inactivity_alerts: inactivityAlerts,
    low_activity_met_minutes: Math.round(metMinutes.get('3') ?? 0),
    low_activity_time: seconds('3'),
    medium_activity_met_minutes: Math.round(metMinutes.get('4') ?? 0),
    medium_activity_time: seconds('4'),
    met: { interval: 60, items: metPerMinute, timestamp: localWithMillis(windowStartMs, input.offsetMinutes) },
    meters_to_target: Math.max(0, targetMeters - equivalentWalkingDistanceM),
    non_wear_time: seconds('0'),
    resting_time: seconds('1'),
    score: activityScore,
    sedentary_met_minutes: Math.round(metMinutes.get('2') ?? 0),
    sedentary_time: seconds('2'),
    steps,
    target_calories: input.targetCalories,
    target_meters: targetMeters,
    timestamp: local(windowStartMs, input.offsetMinutes),
    total_calories: input.basalKcal + activeCalories,
    // Activity syncs in the background through the day; the last write is shortly after the day closes.
    meta: { updated_at: updatedAt(windowEndMs + rng.int(2, 40) * MINUTE_MS, input.nowMs), version: rng.int(8, 30) }
  }
}

interface HeartRateInput {
  fromMs: number
  toMs: number
  nights: readonly Night[]
  workouts: ReadonlyArray<{ startMs: number, endMs: number }>
  restingBaseBpm: number
  nowMs: number
}

/**
 * One row per 5 minutes while worn: during sleep exactly the night's 5-minute heart rate (source `sleep`), during
 * a run `workout`, otherwise `awake`. Rows are stamped a few seconds into their slot, as the ring measures.
 */
function heartRateRows(rng: Random, input: HeartRateInput): OuraHeartRateRow[] {
  const rows: OuraHeartRateRow[] = []
  const endMs = Math.min(input.toMs, input.nowMs)
  const sleepRows = new Map<number, number>()
  for (const night of input.nights) {
    night.heartRateBpm.forEach((bpm, i) => {
      if (bpm !== null) sleepRows.set(night.startMs + i * SLOT_MS, bpm)
    })
  }
  const inNight = (ms: number): boolean => input.nights.some((night) =>
    ms >= night.startMs && ms < night.startMs + night.phases.length * EPOCH_SECONDS * SECOND_MS)
  for (const [atMs, bpm] of sleepRows) {
    if (atMs < endMs) rows.push(row(atMs, bpm, 'sleep'))
  }
  for (let slotMs = Math.ceil(input.fromMs / SLOT_MS) * SLOT_MS; slotMs < endMs; slotMs += SLOT_MS) {
    const atMs = slotMs + rng.int(5, 55) * SECOND_MS
    if (inNight(atMs)) continue
    const workout = input.workouts.find((w) => atMs >= w.startMs && atMs < w.endMs)
    if (workout !== undefined) {
      rows.push(row(atMs, Math.round(clamp(rng.normal(148, 8), 110, 185)), 'workout'))
    } else if (rng.chance(0.93)) {
      rows.push(row(atMs, Math.round(clamp(input.restingBaseBpm + 18 + rng.normal(0, 7), 45, 130)), 'awake'))
    }
  }
  return rows.sort((a, b) => a.timestamp_unix - b.timestamp_unix)
}

function row(atMs: number, bpm: number, source: OuraHeartRateSource): OuraHeartRateRow {
  const ms = toSecond(atMs)
  return { bpm, source, timestamp: utcTimestamp(ms), timestamp_unix: ms }
}
