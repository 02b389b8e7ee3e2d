import { randomBytes } from 'node:crypto'
import type { OuraDataType } from '../providers/oura/documents.ts'
import {
  answerStatus, awaitChecks, connectThroughOAuth, count, plural, REQUEST_TIMEOUT_MS, storedEvents, until, type Check
} from './demo-checks.ts'
import {
  startOuraSimulator, type OuraDocument, type OuraDocumentsByType, type OuraNotification, type OuraNotificationInput, type OuraSimulator
} from './oura/index.ts'
import { SimulatorError, type Simulator, type SimulatorContext, type SimulatorOutcome } from './simulator.ts'

/**
 * The Oura side of the demo: a simulated Oura cloud with one ring wearer, and a participant that drives the
 * bridge's real Oura path against it. It connects a bridge user through OAuth (admin API → consent at Oura →
 * the bridge's callback), waits while the worker pool backfills the history from the Oura API, then plays the
 * morning after: the newest day's documents appear, a few older ones are revised, one is deleted, and Oura
 * announces each with a signed notification (one of them delivered twice, as Oura's retries do). Every effect is
 * checked through the bridge's public events API, never its database.
 */

/** Collections in the order Oura produces them in the morning: the night first, activity when the day is over. */
const DATA_TYPES: readonly OuraDataType[] = ['sleep', 'daily_sleep', 'daily_readiness', 'daily_spo2', 'daily_activity', 'vo2_max']

/** A backfill of the demo's few days takes about a second; this only bounds a broken worker. */
const BACKFILL_TIMEOUT_MS = 30_000
const LIVE_TIMEOUT_MS = 15_000

export interface OuraDemoCloudOptions {
  seed: number
  /** Days of history before the live traffic; the simulator holds one more day, which arrives live. */
  days: number
  /** The days end at the last local midnight at or before this, like the iPhone simulator's. */
  nowMs: number
}

/**
 * Starts the simulated Oura cloud: one wearer with `days` days of history plus the newest day, which the
 * participant withholds until its live traffic. A fresh client secret per run: the bridge verifies webhook
 * signatures with it exactly as it would Oura's.
 */
export async function startOuraDemoCloud(options: OuraDemoCloudOptions): Promise<OuraSimulator> {
  return startOuraSimulator({
    clientId: 'biometric-bridge-demo',
    clientSecret: `demo_${randomBytes(24).toString('base64url')}`,
    seed: options.seed,
    users: [{ days: options.days + 1, nowMs: options.nowMs }]
  })
}

export interface OuraDemoOptions {
  sim: OuraSimulator
  /** The bridge user who connects the ring. */
  userId: string
  /** The simulated wearer who logs in at the consent screen. */
  ouraUserId: string
}

export function createOuraDemoSimulator(options: OuraDemoOptions): Simulator {
  return {
    name: 'oura',
    title: 'Oura Ring · OAuth, webhooks + API',
    userIds: [options.userId],
    run: (context) => runOura(options, context)
  }
}

interface LiveChange {
  kind: 'create' | 'update' | 'delete'
  label: string
  notification: OuraNotificationInput
  /** undefined when the document carries no value to check (e.g. a null score). */
  check: Check | undefined
}

/**
 * The value the bridge must store for a document, in the catalog unit, under the document's id: one metric per
 * collection is enough, since a receipt commits all events of its document in one transaction.
 */
function sentinel(dataType: OuraDataType, document: OuraDocument): { metric: string, value: number | null } {
  switch (dataType) {
    case 'sleep': {
      const sleep = document as OuraDocumentsByType['sleep']
      // A deleted or rest period yields no events (its earlier ones are retracted).
      const retracted = sleep.type === 'deleted' || sleep.type === 'rest'
      return { metric: 'total_sleep_minutes', value: retracted || sleep.total_sleep_duration === null ? null : sleep.total_sleep_duration / 60 }
    }
    case 'daily_sleep': return { metric: 'sleep_score', value: (document as OuraDocumentsByType['daily_sleep']).score }
    case 'daily_readiness': return { metric: 'recovery_score', value: (document as OuraDocumentsByType['daily_readiness']).score }
    case 'daily_activity': return { metric: 'activity_score', value: (document as OuraDocumentsByType['daily_activity']).score }
    case 'daily_spo2': return { metric: 'spo2', value: (document as OuraDocumentsByType['daily_spo2']).spo2_percentage?.average ?? null }
    case 'vo2_max': return { metric: 'vo2_max', value: (document as OuraDocumentsByType['vo2_max']).vo2_max }
  }
}

function presenceCheck(dataType: OuraDataType, document: OuraDocument): Check | undefined {
  const { metric, value } = sentinel(dataType, document)
  return value === null ? undefined : { metric, recordId: document.id, value }
}

const dayOf = (document: OuraDocument): string => (document as { day?: unknown }).day as string

async function runOura(options: OuraDemoOptions, context: SimulatorContext): Promise<SimulatorOutcome> {
  const { sim, userId, ouraUserId } = options
  const { progress, signal } = context
  const outcome: SimulatorOutcome = { rejectionCodes: {}, surprises: [], notes: [] }
  const events = storedEvents(context, userId, 'oura')

  // The newest day is what Oura publishes "this morning": out of the store until the live part, so the backfill
  // sees exactly `days` days of history.
  const allDocuments = DATA_TYPES.flatMap((dataType) => sim.documents(ouraUserId, dataType).map((document) => ({ dataType, document })))
  const days = [...new Set(allDocuments.map(({ document }) => dayOf(document)))].sort()
  const newestDay = days.at(-1)
  const previousDay = days.at(-2)
  if (newestDay === undefined || previousDay === undefined) throw new SimulatorError('the simulated Oura wearer has too few days')
  const withheld = allDocuments.filter(({ document }) => dayOf(document) === newestDay)
  for (const { dataType, document } of withheld) sim.deleteDocument(dataType, document.id)
  const history = allDocuments.filter(({ document }) => dayOf(document) !== newestDay)

  const onPreviousDay = (dataType: OuraDataType): OuraDocument | undefined =>
    history.find((entry) => entry.dataType === dataType && dayOf(entry.document) === previousDay)?.document
  const revised = {
    readiness: onPreviousDay('daily_readiness') as OuraDocumentsByType['daily_readiness'] | undefined,
    sleepScore: onPreviousDay('daily_sleep') as OuraDocumentsByType['daily_sleep'] | undefined,
    activity: onPreviousDay('daily_activity') as OuraDocumentsByType['daily_activity'] | undefined
  }
  // The wearer deletes the oldest recorded sleep period in the app; Oura announces the delete.
  const oldestSleep = (history.filter((entry) => entry.dataType === 'sleep').map((entry) => entry.document) as Array<OuraDocumentsByType['sleep']>)
    .sort((a, b) => a.bedtime_start.localeCompare(b.bedtime_start))[0]
  const revisionCount = Object.values(revised).filter((document) => document !== undefined).length
  const notificationCount = withheld.length + 1 + revisionCount + (oldestSleep === undefined ? 0 : 1)
  progress.declare('history', 'history (backfill)', history.length)
  progress.declare('live', 'live webhooks', notificationCount)

  // ---- connect: the admin API starts it, the wearer consents at Oura, the browser lands on the callback ----
  // Nothing fetches this wearer's data before the callback queues the backfill: the worker's requests count from here.
  const apiRequestsBefore = ouraApiRequests(sim)
  await connectThroughOAuth(context, { provider: 'oura', providerTitle: 'Oura', userId, simUserId: ouraUserId })
  outcome.notes.push(`${userId} connected Oura through OAuth (admin API → consent at the simulated Oura → /oauth/oura/callback)`)

  // ---- backfill: the connection queued one range receipt per collection; wait until all are stored ----
  const collections = DATA_TYPES.map((dataType) => {
    const documents = history.filter((entry) => entry.dataType === dataType)
    const checks = documents.map(({ document }) => presenceCheck(dataType, document)).filter((check) => check !== undefined)
    return { dataType, documents: documents.length, checks }
  })
  // Heart rate has no webhook: a backfill pulls the rows, and the newest row proves its receipt committed.
  const lastRow = sim.heartRate(ouraUserId).at(-1)
  const heartRateStored = async (at: Date): Promise<boolean> => (await events.page({
    metric: 'heart_rate', from: at.toISOString(), to: new Date(at.getTime() + 1).toISOString(), limit: '1'
  })).data.length > 0
  const backfillStartedMs = performance.now()
  const [unstored, heartRateDone] = await Promise.all([
    awaitChecks(events, collections, BACKFILL_TIMEOUT_MS, signal, ({ documents }) => {
      if (documents > 0) progress.record('history', documents, { accepted: documents })
    }),
    lastRow === undefined || until(() => heartRateStored(new Date(lastRow.timestamp_unix)), BACKFILL_TIMEOUT_MS, signal)
  ])
  if (unstored.length > 0 || !heartRateDone) {
    const missing = [...unstored.map(({ dataType }) => dataType), ...(heartRateDone ? [] : ['heartrate'])]
    outcome.surprises.push(`backfill: ${missing.join(', ')} not stored after ${BACKFILL_TIMEOUT_MS / 1000} s`)
  }
  progress.finish('history')
  const backfillSeconds = ((performance.now() - backfillStartedMs) / 1000).toFixed(1)
  outcome.notes.push(`backfill of ${plural(days.length - 1, 'day')}: ${plural(history.length, 'document')} and the heart-rate rows, ` +
    `fetched by the worker pool in ${plural(ouraApiRequests(sim) - apiRequestsBefore, 'Oura API request')} and stored within ${backfillSeconds} s`)

  // ---- live: the newest day appears, older documents are revised, one is deleted; Oura notifies each ----
  const changes: LiveChange[] = []
  for (const { dataType, document } of withheld) {
    changes.push({
      kind: 'create', label: `create ${dataType} ${dayOf(document)}`,
      notification: sim.addDocument(ouraUserId, dataType, document), check: presenceCheck(dataType, document)
    })
  }
  const revisions: string[] = []
  const update = (label: string, notification: OuraNotificationInput, check: Check, revision: string): void => {
    changes.push({ kind: 'update', label, notification, check })
    revisions.push(revision)
  }
  // Oura rescores a day when late data arrives, and steps recorded late in the evening sync the next morning.
  const rescored = (score: number | null): number => score === null ? 80 : score >= 95 ? score - 3 : score + 3
  if (revised.readiness !== undefined) {
    const { id, score } = revised.readiness
    const after = rescored(score)
    update(`update daily_readiness ${previousDay}`, sim.updateDocument('daily_readiness', id, { score: after }).notification,
      { metric: 'recovery_score', recordId: id, value: after }, `readiness ${String(score)} → ${after}`)
  }
  if (revised.sleepScore !== undefined) {
    const { id, score } = revised.sleepScore
    const after = rescored(score)
    update(`update daily_sleep ${previousDay}`, sim.updateDocument('daily_sleep', id, { score: after }).notification,
      { metric: 'sleep_score', recordId: id, value: after }, `sleep score ${String(score)} → ${after}`)
  }
  if (revised.activity !== undefined) {
    const { id, steps } = revised.activity
    const after = steps + 1_850
    update(`update daily_activity ${previousDay}`, sim.updateDocument('daily_activity', id, { steps: after }).notification,
      { metric: 'steps', recordId: id, value: after }, `steps ${count(steps)} → ${count(after)}`)
  }
  let deleteNote: string | undefined
  if (oldestSleep !== undefined) {
    const notification = sim.deleteDocument('sleep', oldestSleep.id)
    const check = presenceCheck('sleep', oldestSleep)
    if (notification !== undefined) {
      changes.push({
        kind: 'delete', label: `delete sleep ${oldestSleep.day}`, notification,
        check: check === undefined ? undefined : { ...check, value: undefined }
      })
      deleteNote = `delete of the sleep period ending ${oldestSleep.day} (the wearer removed it in the app): its events removed and announced as op "delete"`
    }
  }

  const webhookUrl = `${context.baseUrl}/webhooks/oura`
  /** Delivers one notification signed like Oura; the bridge's answer status (`accepted`, `duplicate` …) or undefined. */
  const deliver = async (label: string, notification: OuraNotificationInput): Promise<{ answer: string | undefined, sent: OuraNotification }> => {
    const delivery = await sim.sendNotification(notification, { to: webhookUrl, signal, timeoutMs: REQUEST_TIMEOUT_MS })
    signal.throwIfAborted()
    const sent = JSON.parse(delivery.request.body) as OuraNotification
    const answer = answerStatus(delivery.responseBody)
    if (delivery.status !== 200) {
      const why = delivery.status === 0 ? `no answer (${delivery.error ?? 'unknown'})` : `${delivery.status} ${delivery.responseBody.slice(0, 160)}`
      outcome.surprises.push(`${label}: the webhook answered ${why}, expected 200`)
      progress.record('live', 1, { rejected: 1 })
      return { answer: undefined, sent }
    }
    return { answer, sent }
  }

  const awaiting: LiveChange[] = []
  let redelivered = false
  let duplicateNote: string | undefined
  for (const change of changes) {
    const { answer, sent } = await deliver(change.label, change.notification)
    if (answer === undefined) continue
    if (answer !== 'accepted') {
      outcome.surprises.push(`${change.label}: the webhook answered "${answer}", expected "accepted"`)
      progress.record('live', 1, answer === 'duplicate' ? { duplicates: 1 } : { ignored: 1 })
      continue
    }
    if (change.check === undefined) progress.record('live', 1, change.kind === 'delete' ? { deleted: 1 } : { accepted: 1 })
    else awaiting.push(change)
    if (redelivered) continue
    // Oura retries a delivery it thinks failed: same body, same event_time. The bridge must not work it twice.
    redelivered = true
    const again = await deliver(`${change.label} (redelivered)`, { ...change.notification, event_time: sent.event_time })
    if (again.answer === 'duplicate') {
      progress.record('live', 1, { duplicates: 1 })
      duplicateNote = `${change.label} delivered twice with the same event_time (as Oura retries): the second answered 200 "duplicate", no second receipt`
    } else if (again.answer !== undefined) {
      outcome.surprises.push(`${change.label} (redelivered): the webhook answered "${again.answer}", expected "duplicate"`)
      progress.record('live', 1, again.answer === 'accepted' ? { accepted: 1 } : { ignored: 1 })
    }
  }

  // ---- wait until the worker applied every accepted notification, as the events API shows it ----
  const deliveredMs = performance.now()
  const unapplied = await awaitChecks(events, awaiting.map((change) => ({ change, checks: change.check === undefined ? [] : [change.check] })),
    LIVE_TIMEOUT_MS, signal, ({ change }) => { progress.record('live', 1, change.kind === 'delete' ? { deleted: 1 } : { accepted: 1 }) })
  for (const { change } of unapplied) {
    outcome.surprises.push(`${change.label}: accepted, but not ${change.kind === 'delete' ? 'removed' : 'visible'} through the events API after ${LIVE_TIMEOUT_MS / 1000} s`)
    progress.record('live', 1, {})
  }
  progress.finish('live')
  const appliedMs = Math.round(performance.now() - deliveredMs)

  const kinds = (kind: LiveChange['kind']): number => changes.filter((change) => change.kind === kind).length
  outcome.notes.push(`${plural(notificationCount, 'signed notification')} to /webhooks/oura (${kinds('create')} create for ${newestDay}, ` +
    `${kinds('update')} update, ${kinds('delete')} delete, 1 redelivery), answered at once; ` +
    (unapplied.length === 0 ? `the worker had fetched and applied them ${count(appliedMs)} ms after the last delivery` : `${unapplied.length} never applied`))
  if (duplicateNote !== undefined) outcome.notes.push(duplicateNote)
  if (revisions.length > 0) outcome.notes.push(`revised at Oura on ${previousDay}: ${revisions.join(', ')}; each newer revision replaced the stored value`)
  if (deleteNote !== undefined) outcome.notes.push(deleteNote)
  return outcome
}

/** Data requests the bridge made to the simulated Oura API so far (not OAuth, subscriptions or the callback's personal_info). */
function ouraApiRequests(sim: OuraSimulator): number {
  return Object.entries(sim.requestCounts())
    .filter(([route]) => route.startsWith('GET /v2/usercollection/') && route !== 'GET /v2/usercollection/personal_info')
    .reduce((sum, [, n]) => sum + n, 0)
}
