import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  answerStatus, awaitChecks, connectThroughOAuth, count, plural, POLL_MS, REQUEST_TIMEOUT_MS, storedEvents, until, type Check
} from './demo-checks.ts'
import { SimulatorError, type Simulator, type SimulatorContext, type SimulatorOutcome } from './simulator.ts'
import {
  startWhoopSimulator, type WhoopCycle, type WhoopEventInput, type WhoopRecovery, type WhoopSimulator, type WhoopSleep, type WhoopWorkout
} from './whoop/index.ts'

/**
 * The WHOOP side of the demo, built like the Oura side (oura-demo.ts): a simulated WHOOP cloud with one member,
 * and a participant that connects the same bridge user through OAuth, waits while the worker pool backfills the
 * history from the WHOOP API, then plays the morning: the night just woken from is scored (WHOOP notifies while
 * it is still PENDING_SCORE and again once SCORED), its recovery follows, one notification is redelivered, the
 * latest workout is scored and an older one deleted. Every effect is checked through the public events API.
 */

const BACKFILL_TIMEOUT_MS = 30_000
const LIVE_TIMEOUT_MS = 15_000
/** The same person as the iPhone user and the Oura wearer, in those simulators' zone (UTC+1, minutes east). */
const OFFSET_MINUTES = 60
/** Data routes of the simulated API; OAuth and the callback's profile lookup are not counted as the worker's. */
const DATA_ROUTES = ['activity/sleep', 'activity/sleep/{id}', 'activity/workout', 'activity/workout/{id}', 'cycle', 'cycle/{id}',
  'cycle/{id}/recovery', 'cycle/{id}/sleep', 'recovery'].map((route) => `GET /developer/v2/${route}`)
const SLEEP_FETCH = 'GET /developer/v2/activity/sleep/{id}'

export interface WhoopDemoCloudOptions {
  seed: number
  /** Nights of history before the live traffic; the member has one more night, scored live. */
  days: number
  /** The newest night ends at the last local 07:00 at least an hour before this. */
  nowMs: number
}

/**
 * Starts the simulated WHOOP cloud with one member: `days` + 1 nights, the newest scored live. A fresh client
 * secret per run: the bridge verifies webhook signatures with it exactly as it would WHOOP's.
 */
export async function startWhoopDemoCloud(options: WhoopDemoCloudOptions): Promise<WhoopSimulator> {
  const sim = await startWhoopSimulator({
    clientId: 'biometric-bridge-demo', clientSecret: `demo_${randomBytes(24).toString('base64url')}`, seed: options.seed
  })
  try {
    sim.addUser({ days: options.days + 1, nowMs: options.nowMs, offsetMinutes: OFFSET_MINUTES })
  } catch (error) {
    await sim.close()
    throw error
  }
  return sim
}

export interface WhoopDemoOptions {
  sim: WhoopSimulator
  /** The bridge user who connects the band. */
  userId: string
  /** The simulated member (int64 as text) who logs in at the consent screen. */
  whoopUserId: string
}

export function createWhoopDemoSimulator(options: WhoopDemoOptions): Simulator {
  return {
    name: 'whoop',
    title: 'WHOOP band · OAuth, webhooks + API',
    userIds: [options.userId],
    run: (context) => runWhoop(options, context)
  }
}

// One metric per document is enough: a receipt commits all events of its document in one transaction. Each is
// undefined while the document has no score (nothing to store yet).
const sleepCheck = (sleep: WhoopSleep): Check | undefined => {
  const stages = sleep.score?.stage_summary
  return stages === undefined ? undefined : {
    metric: 'total_sleep_minutes', recordId: sleep.id,
    value: (stages.total_light_sleep_time_milli + stages.total_slow_wave_sleep_time_milli + stages.total_rem_sleep_time_milli) / 60_000
  }
}
// The bridge's record id of a recovery: it has no id of its own, it belongs to a sleep.
const recoveryCheck = (recovery: WhoopRecovery): Check | undefined => recovery.score === undefined
  ? undefined : { metric: 'recovery_score', recordId: `recovery:${recovery.sleep_id}`, value: recovery.score.recovery_score }
const workoutCheck = (workout: WhoopWorkout): Check | undefined => workout.score === undefined
  ? undefined : { metric: 'heart_rate', recordId: workout.id, value: workout.score.average_heart_rate }
// A cycle still running (no end) has no final strain.
const cycleCheck = (cycle: WhoopCycle): Check | undefined => cycle.score === undefined || cycle.end === undefined
  ? undefined : { metric: 'strain', recordId: String(cycle.id), value: cycle.score.strain }

const defined = <T>(items: ReadonlyArray<T | undefined>): T[] => items.filter((item) => item !== undefined)
/** The member's calendar day of an instant. */
const localDay = (iso: string): string => new Date(Date.parse(iso) + OFFSET_MINUTES * 60_000).toISOString().slice(0, 10)

async function runWhoop(options: WhoopDemoOptions, context: SimulatorContext): Promise<SimulatorOutcome> {
  const { sim, userId, whoopUserId } = options
  const { progress, signal } = context
  const outcome: SimulatorOutcome = { rejectionCodes: {}, surprises: [], notes: [] }
  const events = storedEvents(context, userId, 'whoop')

  // WHOOP creates the documents of a night or workout at once and scores them minutes later. When the member
  // connects, the night just woken from and the latest workout are not scored yet: the backfill finds them
  // PENDING_SCORE and stores nothing for them; the live part scores them.
  const night = sim.sleeps(whoopUserId).at(-1)
  const workouts = sim.workouts(whoopUserId)
  const latestWorkout = workouts.at(-1)
  // The oldest workout is deleted live; with a single workout (one day of history) that is the one scored live.
  const removedWorkout = workouts[0]
  if (night === undefined || latestWorkout === undefined || removedWorkout === undefined) {
    throw new SimulatorError('the simulated WHOOP member has too little history')
  }
  sim.setScoreState('sleep', night.id, 'PENDING_SCORE')
  sim.setScoreState('recovery', night.id, 'PENDING_SCORE')
  sim.setScoreState('workout', latestWorkout.id, 'PENDING_SCORE')

  const collections = [
    { name: 'sleep', names: 'sleeps', checks: defined(sim.sleeps(whoopUserId).map(sleepCheck)) },
    { name: 'recovery', names: 'recoveries', checks: defined(sim.recoveries(whoopUserId).map(recoveryCheck)) },
    { name: 'workout', names: 'workouts', checks: defined(sim.workouts(whoopUserId).map(workoutCheck)) },
    { name: 'cycle', names: 'cycles', checks: defined(sim.cycles(whoopUserId).map(cycleCheck)) }
  ]
  const historyCount = collections.reduce((sum, { checks }) => sum + checks.length, 0)
  /** pending sleep.updated, sleep.updated, recovery.updated and its redelivery, workout.updated, workout.deleted. */
  const notificationCount = 6
  progress.declare('history', 'history (backfill)', historyCount)
  progress.declare('live', 'live webhooks', notificationCount)

  // ---- connect, then wait for the backfill: one range receipt per collection ----
  const dataRequests = (): number => DATA_ROUTES.reduce((sum, route) => sum + sim.requestCount(route), 0)
  const apiRequestsBefore = dataRequests()
  await connectThroughOAuth(context, { provider: 'whoop', providerTitle: 'WHOOP', userId, simUserId: whoopUserId })
  outcome.notes.push(`${userId} connected WHOOP through OAuth (admin API → consent at the simulated WHOOP → /oauth/whoop/callback)`)
  const backfillStartedMs = performance.now()
  const unstored = await awaitChecks(events, collections, BACKFILL_TIMEOUT_MS, signal, ({ checks }) => {
    if (checks.length > 0) progress.record('history', checks.length, { accepted: checks.length })
  })
  if (unstored.length > 0) {
    outcome.surprises.push(`backfill: ${unstored.map(({ name }) => name).join(', ')} not stored after ${BACKFILL_TIMEOUT_MS / 1000} s`)
  }
  progress.finish('history')
  const backfillSeconds = ((performance.now() - backfillStartedMs) / 1000).toFixed(1)
  outcome.notes.push(`backfill of ${plural(sim.sleeps(whoopUserId).length - 1, 'day')}: ` +
    `${collections.map(({ name, names, checks }) => plural(checks.length, name, names)).join(', ')}, fetched by the worker pool in ` +
    `${plural(dataRequests() - apiRequestsBefore, 'WHOOP API request')} and stored within ${backfillSeconds} s ` +
    `(the newest night and workout, still PENDING_SCORE, stored nothing)`)

  // ---- live: WHOOP signs each notification with the client secret; the bridge answers before any fetch ----
  const webhookUrl = `${context.baseUrl}/webhooks/whoop`
  /** Delivers one notification; whether the bridge answered 200 with `expected`. */
  const deliver = async (label: string, event: WhoopEventInput, expected = 'accepted'): Promise<boolean> => {
    signal.throwIfAborted()
    let status = 0
    let body = ''
    try {
      ({ status, body } = await sim.sendWebhook(event, { to: webhookUrl, timeoutMs: REQUEST_TIMEOUT_MS }))
    } catch (error) {
      body = (error as Error).message
    }
    const answer = answerStatus(body)
    if (status === 200 && answer === expected) return true
    outcome.surprises.push(`${label}: the webhook answered ${status === 0 ? `nothing (${body})` : `${status} ${answer ?? body.slice(0, 160)}`}, expected 200 "${expected}"`)
    progress.record('live', 1, status !== 200 ? { rejected: 1 } : answer === 'duplicate' ? { duplicates: 1 } : { ignored: 1 })
    return false
  }
  /** Waits until each change shows in the events API (stored, or removed when `deleted`), recording each as it does. */
  const applied = async (changes: ReadonlyArray<{ label: string, check: Check | undefined }>, deleted = false): Promise<boolean> => {
    const unmet = await awaitChecks(events, changes.map((change) => ({ ...change, checks: defined([change.check]) })), LIVE_TIMEOUT_MS, signal,
      () => { progress.record('live', 1, deleted ? { deleted: 1 } : { accepted: 1 }) })
    for (const { label } of unmet) {
      outcome.surprises.push(`${label}: accepted, but not ${deleted ? 'removed' : 'visible'} through the events API after ${LIVE_TIMEOUT_MS / 1000} s`)
      progress.record('live', 1, {})
    }
    return unmet.length === 0
  }
  const liveStartedMs = performance.now()

  // The night is there but not scored: WHOOP notifies, the worker fetches it and must store nothing yet. Its
  // fetch of the sleep shows the worker looked; two polls later its receipt has committed (that takes milliseconds).
  const pendingLabel = `sleep.updated ${localDay(night.end)} (PENDING_SCORE)`
  const fetchesBefore = sim.requestCount(SLEEP_FETCH)
  const nightNotes: string[] = []
  if (await deliver(pendingLabel, { type: 'sleep.updated', id: night.id, userId: whoopUserId })) {
    const fetched = await until(() => sim.requestCount(SLEEP_FETCH) > fetchesBefore, LIVE_TIMEOUT_MS, signal)
    await sleep(2 * POLL_MS, undefined, { signal })
    if (!fetched) outcome.surprises.push(`${pendingLabel}: accepted, but the worker never fetched the sleep`)
    else if ((await events.values('total_sleep_minutes')).has(night.id)) outcome.surprises.push(`${pendingLabel}: events stored before the sleep was scored`)
    else nightNotes.push('sleep.updated while PENDING_SCORE stored nothing')
    progress.record('live', 1, { accepted: 1 })
  }

  // Scored: WHOOP notifies the sleep and its recovery (the recovery named by the SLEEP id); the recovery
  // notification is delivered a second time with the same trace_id, as WHOOP's retries are.
  const scoredSleep = sim.setScoreState('sleep', night.id, 'SCORED') as WhoopSleep
  const recovery = sim.setScoreState('recovery', night.id, 'SCORED') as WhoopRecovery
  const workout = sim.setScoreState('workout', latestWorkout.id, 'SCORED') as WhoopWorkout
  const recoveryEvent: WhoopEventInput = { type: 'recovery.updated', id: night.id, userId: whoopUserId, traceId: randomUUID() }
  const scored = [
    { label: `sleep.updated ${localDay(night.end)} (SCORED)`, event: { type: 'sleep.updated', id: night.id, userId: whoopUserId }, check: sleepCheck(scoredSleep) },
    { label: `recovery.updated ${localDay(night.end)}`, event: recoveryEvent, check: recoveryCheck(recovery) },
    { label: `workout.updated ${localDay(workout.start)}`, event: { type: 'workout.updated', id: workout.id, userId: whoopUserId }, check: workoutCheck(workout) }
  ] satisfies Array<{ label: string, event: WhoopEventInput, check: Check | undefined }>
  const accepted: typeof scored = []
  for (const change of scored) if (await deliver(change.label, change.event)) accepted.push(change)
  let duplicateNote: string | undefined
  if (await deliver('recovery.updated (redelivered)', recoveryEvent, 'duplicate')) {
    progress.record('live', 1, { duplicates: 1 })
    duplicateNote = `recovery.updated delivered twice with the same trace_id (as WHOOP retries): the second answered 200 "duplicate", no second receipt`
  }
  let workoutNote: string | undefined
  if (await applied(accepted) && accepted.length === scored.length) {
    nightNotes.push(`once SCORED, sleep.updated + recovery.updated stored its sleep (performance ${scoredSleep.score?.sleep_performance_percentage ?? '?'} %) ` +
      `and recovery (score ${recovery.score?.recovery_score ?? '?'}, HRV ${recovery.score?.hrv_rmssd_milli ?? '?'} ms)`)
    workoutNote = `workout.updated for the ${workout.sport_name} of ${localDay(workout.start)}, scored live: its heart rate, energy and distance stored`
  }

  // The member deletes a workout in the app; WHOOP announces it, and the bridge retracts its events unfetched.
  sim.deleteWorkout(removedWorkout.id)
  const deleteLabel = `workout.deleted ${localDay(removedWorkout.start)}`
  let deleteNote: string | undefined
  if (await deliver(deleteLabel, { type: 'workout.deleted', id: removedWorkout.id, userId: whoopUserId })) {
    const check = workoutCheck(removedWorkout)
    if (await applied([{ label: deleteLabel, check: check === undefined ? undefined : { ...check, value: undefined } }], true)) {
      const which = removedWorkout.id === workout.id ? 'that workout' : `the ${removedWorkout.sport_name} of ${localDay(removedWorkout.start)}`
      deleteNote = `workout.deleted for ${which} (the member removed it in the app): its events removed`
    }
  }
  progress.finish('live')

  outcome.notes.push(`${plural(notificationCount, 'signed webhook')} to /webhooks/whoop (2 sleep.updated, 1 recovery.updated, 1 redelivery, ` +
    `1 workout.updated, 1 workout.deleted), each answered at once; with every effect awaited in the events API before the next, ` +
    `the live part took ${count(Math.round(performance.now() - liveStartedMs))} ms`)
  if (nightNotes.length > 0) outcome.notes.push(`the night ending ${localDay(night.end)}: ${nightNotes.join('; ')}`)
  if (duplicateNote !== undefined) outcome.notes.push(duplicateNote)
  if (workoutNote !== undefined) outcome.notes.push(workoutNote)
  if (deleteNote !== undefined) outcome.notes.push(deleteNote)
  return outcome
}
