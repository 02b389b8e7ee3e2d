import { createRandom, type Random } from '../random.ts'

/**
 * Seeded WHOOP v2 documents for one simulated member (reference §2.4). A cycle (physiological day) starts when
 * the member falls asleep and ends when the next sleep starts, so the newest cycle is still open (no `end`).
 * Each cycle carries the sleep that opened it and the recovery scored from that sleep; every other day has a
 * workout. Stage times are milliseconds and add up to the time in bed. Cycle ids are beyond 2^31 on purpose:
 * they are int64 and a client that stores them in 32 bits should break here rather than in production.
 */

const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS

export type WhoopScoreState = 'SCORED' | 'PENDING_SCORE' | 'UNSCORABLE'

export interface WhoopCycleScore {
  strain: number
  kilojoule: number
  average_heart_rate: number
  max_heart_rate: number
}

export interface WhoopCycle {
  id: number
  user_id: number
  created_at: string
  updated_at: string
  start: string
  /** Absent for the current cycle. */
  end?: string
  timezone_offset: string
  score_state: WhoopScoreState
  score?: WhoopCycleScore
}

export interface WhoopStageSummary {
  total_in_bed_time_milli: number
  total_awake_time_milli: number
  total_no_data_time_milli: number
  total_light_sleep_time_milli: number
  total_slow_wave_sleep_time_milli: number
  total_rem_sleep_time_milli: number
  sleep_cycle_count: number
  disturbance_count: number
}

export interface WhoopSleepScore {
  stage_summary: WhoopStageSummary
  sleep_needed: {
    baseline_milli: number
    need_from_sleep_debt_milli: number
    need_from_recent_strain_milli: number
    need_from_recent_nap_milli: number
  }
  respiratory_rate: number
  sleep_performance_percentage: number
  sleep_consistency_percentage: number
  sleep_efficiency_percentage: number
}

export interface WhoopSleep {
  id: string
  cycle_id: number
  user_id: number
  created_at: string
  updated_at: string
  start: string
  end: string
  timezone_offset: string
  nap: boolean
  score_state: WhoopScoreState
  score?: WhoopSleepScore
}

export interface WhoopRecoveryScore {
  user_calibrating: boolean
  recovery_score: number
  resting_heart_rate: number
  hrv_rmssd_milli: number
  spo2_percentage: number
  skin_temp_celsius: number
}

export interface WhoopRecovery {
  cycle_id: number
  sleep_id: string
  user_id: number
  created_at: string
  updated_at: string
  score_state: WhoopScoreState
  score?: WhoopRecoveryScore
}

export interface WhoopWorkoutScore {
  strain: number
  average_heart_rate: number
  max_heart_rate: number
  kilojoule: number
  percent_recorded: number
  distance_meter: number
  altitude_gain_meter: number
  altitude_change_meter: number
  zone_durations: {
    zone_zero_milli: number
    zone_one_milli: number
    zone_two_milli: number
    zone_three_milli: number
    zone_four_milli: number
    zone_five_milli: number
  }
}

export interface WhoopWorkout {
  id: string
  user_id: number
  created_at: string
  updated_at: string
  start: string
  end: string
  timezone_offset: string
  sport_name: string
  score_state: WhoopScoreState
  score?: WhoopWorkoutScore
}

export interface WhoopProfile {
  user_id: number
  email: string
  first_name: string
  last_name: string
}

export interface WhoopDataset {
  /** int64 as a decimal string. */
  userId: string
  profile: WhoopProfile
  /** Oldest first. */
  cycles: WhoopCycle[]
  sleeps: WhoopSleep[]
  recoveries: WhoopRecovery[]
  workouts: WhoopWorkout[]
}

export interface WhoopDataOptions {
  seed: number
  /** Nights (and cycles) to generate. */
  days: number
  nowMs: number
  userId?: string
  /** Minutes east of UTC. Default -300 (New York in winter). */
  offsetMinutes?: number
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald'] as const
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth'] as const
const SPORTS = [
  { name: 'running', metersPerMinute: 170 },
  { name: 'cycling', metersPerMinute: 420 },
  { name: 'weightlifting', metersPerMinute: 0 }
] as const

const iso = (ms: number): string => new Date(ms).toISOString()
const round1 = (value: number): number => Math.round(value * 10) / 10
const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))
/** WHOOP prints UUIDs in lower case; the shared generator prints HealthKit's upper case. */
const uuid = (rng: Random): string => rng.uuid().toLowerCase()

export function formatOffset(offsetMinutes: number): string {
  if (offsetMinutes === 0) return 'Z'
  const sign = offsetMinutes < 0 ? '-' : '+'
  const abs = Math.abs(offsetMinutes)
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
}

function sleepScore(rng: Random, inBedMs: number): WhoopSleepScore {
  // Whole seconds, like WHOOP's figures; the four parts add up to the time in bed exactly.
  const seconds = (ms: number): number => Math.round(ms / 1000) * 1000
  const awake = seconds(inBedMs * rng.between(0.05, 0.12))
  const slowWave = seconds(inBedMs * rng.between(0.15, 0.22))
  const rem = seconds(inBedMs * rng.between(0.18, 0.25))
  const light = inBedMs - awake - slowWave - rem
  const baseline = 27_000_000 + rng.int(0, 60) * MINUTE_MS
  const asleep = inBedMs - awake
  return {
    stage_summary: {
      total_in_bed_time_milli: inBedMs,
      total_awake_time_milli: awake,
      total_no_data_time_milli: 0,
      total_light_sleep_time_milli: light,
      total_slow_wave_sleep_time_milli: slowWave,
      total_rem_sleep_time_milli: rem,
      sleep_cycle_count: rng.int(3, 6),
      disturbance_count: rng.int(4, 18)
    },
    sleep_needed: {
      baseline_milli: baseline,
      need_from_sleep_debt_milli: rng.int(0, 60) * MINUTE_MS,
      need_from_recent_strain_milli: rng.int(0, 30) * MINUTE_MS,
      need_from_recent_nap_milli: 0
    },
    respiratory_rate: round1(rng.normal(15.2, 0.6)),
    sleep_performance_percentage: clamp(Math.round((asleep / baseline) * 100), 40, 100),
    sleep_consistency_percentage: rng.int(60, 95),
    sleep_efficiency_percentage: round1((asleep / inBedMs) * 100)
  }
}

/** One member's history: `days` nights ending before `nowMs`, cycles chained sleep start to sleep start. */
export function generateWhoopData(options: WhoopDataOptions): WhoopDataset {
  const rng = createRandom(options.seed)
  const offsetMinutes = options.offsetMinutes ?? -300
  const offsetMs = offsetMinutes * MINUTE_MS
  const timezoneOffset = formatOffset(offsetMinutes)
  const userId = options.userId ?? String(rng.int(10_000, 9_999_999))
  const userNumber = Number(userId)
  if (!/^\d{1,19}$/.test(userId) || !Number.isSafeInteger(userNumber)) throw new RangeError('userId must be a decimal int64 within 2^53')
  const days = options.days
  if (!Number.isInteger(days) || days < 1) throw new RangeError('days must be a positive integer')

  // The newest night ends at the latest local 07:00 at least an hour before now, so its recovery exists.
  const localMidnight = Math.floor((options.nowMs + offsetMs) / DAY_MS) * DAY_MS - offsetMs
  let newestWake = localMidnight + 7 * HOUR_MS
  if (newestWake > options.nowMs - HOUR_MS) newestWake -= DAY_MS

  const nights = Array.from({ length: days }, (_, i) => {
    const wake = newestWake - (days - 1 - i) * DAY_MS + rng.int(-40, 40) * MINUTE_MS
    const inBedMs = rng.int(390, 540) * MINUTE_MS
    return { start: wake - inBedMs, end: wake }
  })

  const firstName = rng.pick(FIRST_NAMES)
  const lastName = rng.pick(LAST_NAMES)
  const profile: WhoopProfile = {
    user_id: userNumber,
    email: `${firstName}.${lastName}.${userId}@example.com`.toLowerCase(),
    first_name: firstName,
    last_name: lastName
  }

  const cycleBase = 2_500_000_000 + rng.int(0, 1_000_000) * 1000
  const cycles: WhoopCycle[] = []
  const sleeps: WhoopSleep[] = []
  const recoveries: WhoopRecovery[] = []
  const workouts: WhoopWorkout[] = []
  nights.forEach((night, i) => {
    const next = nights[i + 1]
    const cycleId = cycleBase + i
    const cycleEnd = next?.start
    const cycleCreated = iso(night.start + rng.int(1, 10) * MINUTE_MS)
    const cycleUpdated = iso(Math.min(options.nowMs, (cycleEnd ?? options.nowMs) + 5 * MINUTE_MS))
    cycles.push({
      id: cycleId,
      user_id: userNumber,
      created_at: cycleCreated,
      updated_at: cycleUpdated,
      start: iso(night.start),
      ...(cycleEnd === undefined ? {} : { end: iso(cycleEnd) }),
      timezone_offset: timezoneOffset,
      score_state: 'SCORED',
      score: {
        // The open cycle has only accumulated part of its day.
        strain: round1(cycleEnd === undefined ? rng.between(2, 8) : rng.between(6, 18)),
        kilojoule: round1(rng.between(7000, 12_500)),
        average_heart_rate: rng.int(58, 76),
        max_heart_rate: rng.int(135, 185)
      }
    })

    const sleepId = uuid(rng)
    const scoredAt = iso(night.end + rng.int(2, 20) * MINUTE_MS)
    sleeps.push({
      id: sleepId,
      cycle_id: cycleId,
      user_id: userNumber,
      created_at: scoredAt,
      updated_at: scoredAt,
      start: iso(night.start),
      end: iso(night.end),
      timezone_offset: timezoneOffset,
      nap: false,
      score_state: 'SCORED',
      score: sleepScore(rng, night.end - night.start)
    })

    const hrv = round1(clamp(rng.normal(58, 12), 15, 150))
    recoveries.push({
      cycle_id: cycleId,
      sleep_id: sleepId,
      user_id: userNumber,
      created_at: scoredAt,
      updated_at: scoredAt,
      score_state: 'SCORED',
      score: {
        user_calibrating: false,
        recovery_score: clamp(Math.round(hrv * 1.1 + rng.normal(0, 8)), 1, 99),
        resting_heart_rate: rng.int(46, 62),
        hrv_rmssd_milli: hrv,
        spo2_percentage: round1(rng.between(94.5, 98.5)),
        skin_temp_celsius: round1(rng.between(33, 34.6))
      }
    })

    // Afternoon of the cycle's day; skipped when that afternoon has not happened yet.
    const workoutStart = night.end + rng.int(8 * 60, 11 * 60) * MINUTE_MS
    const durationMs = rng.int(30, 80) * MINUTE_MS
    if (i % 2 === 0 && workoutStart + durationMs <= options.nowMs - 10 * MINUTE_MS) {
      const sport = rng.pick(SPORTS)
      const zones = [0.02, 0.1, 0.3, 0.35, 0.18].map((share) => Math.round((durationMs * share) / 1000) * 1000)
      const zoneFive = durationMs - zones.reduce((sum, ms) => sum + ms, 0)
      const minutes = durationMs / MINUTE_MS
      const savedAt = iso(workoutStart + durationMs + rng.int(1, 15) * MINUTE_MS)
      workouts.push({
        id: uuid(rng),
        user_id: userNumber,
        created_at: savedAt,
        updated_at: savedAt,
        start: iso(workoutStart),
        end: iso(workoutStart + durationMs),
        timezone_offset: timezoneOffset,
        sport_name: sport.name,
        score_state: 'SCORED',
        score: {
          strain: round1(rng.between(8, 16)),
          average_heart_rate: rng.int(120, 155),
          max_heart_rate: rng.int(160, 190),
          kilojoule: round1(minutes * rng.between(35, 55)),
          percent_recorded: 100,
          distance_meter: round1(sport.metersPerMinute * minutes * rng.between(0.85, 1.15)),
          altitude_gain_meter: sport.metersPerMinute === 0 ? 0 : round1(rng.between(5, 120)),
          altitude_change_meter: sport.metersPerMinute === 0 ? 0 : round1(rng.between(-10, 10)),
          zone_durations: {
            zone_zero_milli: zones[0] ?? 0,
            zone_one_milli: zones[1] ?? 0,
            zone_two_milli: zones[2] ?? 0,
            zone_three_milli: zones[3] ?? 0,
            zone_four_milli: zones[4] ?? 0,
            zone_five_milli: zoneFive
          }
        }
      })
    }
  })
  return { userId, profile, cycles, sleeps, recoveries, workouts }
}
