/**
 * What the soak sends: signed Oura notifications, each naming a document that did not exist before, so every
 * notification is its own receipt, its own fetch and its own new events (nothing is deduplicated away, and a
 * lost notification shows up as a document without events).
 *
 * The Oura simulator runs in the bench process with `users` users (7 days of generated data each), connected to
 * the bridge through the real OAuth flow. Notification i goes to user i mod users; the data types take turns per
 * user (sleep, daily sleep, readiness, activity, SpO₂, VO2 max: a sleep also makes the bridge fetch the night's
 * heart-rate rows), and create/update alternate. Its document is a copy of one of that user's generated
 * documents of the type under a new id, added to the simulator when the notification is built; the notification
 * is signed by the simulator's own `signNotification` with the current time.
 *
 * The simulator keeps every document it holds: over an hour at 300/s that would be a million copies in this
 * process. Documents whose receipt the bridge has finished are dropped from it (`evictFinished`); a receipt
 * that still has to fetch its document (pending, or retrying) keeps it.
 */
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import type { OuraDataType } from '../../src/providers/oura/documents.ts'
import { normalizeOuraDocument } from '../../src/providers/oura/normalize.ts'
import {
  signNotification, startOuraSimulator, toNotification, type OuraEventType, type OuraSimulator,
  type SignedNotification
} from '../../src/simulators/oura/index.ts'
import type { LoadTarget, RequestFactory } from '../lib/http-load.ts'

export const DATA_TYPE_MIX: readonly OuraDataType[] = ['sleep', 'daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2', 'vo2_max']
const EVENT_TYPES: readonly OuraEventType[] = ['create', 'update']
/**
 * Days of generated data per user. A sleep's copy covers the same night as its original, so the night's
 * heart-rate rows are new events only the first time: a short history makes that burst (users × nights × ~90
 * rows) small and over within the warm-up, after which a sleep's rows are fetched and upserted unchanged.
 */
const HISTORY_DAYS = 7
/** A finished receipt is looked up again for this long after the poll that could first have seen it, in ms: its
 * finished_at is the transaction's start, which can precede its commit (and the poll) by a little. */
const EVICTION_OVERLAP_MS = 15_000

export interface SoakWorkload {
  sim: OuraSimulator
  /** Oura user ids, in the order notification i picks them (i mod users). */
  ouraUsers: readonly string[]
  /** Builds notification `index` when the load generator sends it: its new document, signed now. */
  requests(target: LoadTarget): RequestFactory
  /** Drops from the simulator the documents whose receipts finished; returns how many went. */
  evictFinished(db: pg.Client): Promise<number>
  /** Documents added and not yet evicted. */
  liveDocuments(): number
  /** Documents added so far (= notifications built). */
  built(): number
}

export async function startWorkload(users: number, clientSecret: string): Promise<SoakWorkload> {
  const sim = await startOuraSimulator({ seed: 6161, clientId: 'bench-client', clientSecret })
  const ouraUsers = Array.from({ length: users }, (_, i) => sim.addUser({ userId: `oura-soak-${i}`, days: HISTORY_DAYS }).personalInfo.id)
  // Per user and type, the generated documents that map to at least one event: a copy of one of them must leave
  // events behind, or the loss check could not tell it from a lost notification.
  const templates = ouraUsers.map((user) => DATA_TYPE_MIX.map((dataType) => {
    const usable = sim.documents(user, dataType).filter((document) => {
      const outcome = normalizeOuraDocument(dataType, document)
      return outcome.kind === 'drafts' && outcome.drafts.length > 0
    })
    if (usable.length === 0) throw new Error(`simulated user ${user} has no ${dataType} document that maps to events`)
    return usable
  }))
  const runId = randomBytes(4).toString('hex')
  const live = new Map<string, OuraDataType>()
  let built = 0
  let lastPollMs: number | undefined

  const build = (index: number, nowMs: number): SignedNotification => {
    const userIndex = index % users
    const round = Math.floor(index / users)
    const typeIndex = round % DATA_TYPE_MIX.length
    const dataType = DATA_TYPE_MIX[typeIndex]!
    const choices = templates[userIndex]![typeIndex]!
    const template = choices[Math.floor(round / DATA_TYPE_MIX.length) % choices.length]!
    const id = `soak-${runId}-${index.toString(36)}`
    // addDocument copies the document; the copy is what the simulator serves under the new id.
    const created = sim.addDocument(ouraUsers[userIndex]!, dataType, { ...template, id })
    live.set(id, dataType)
    built++
    const notification = toNotification({ ...created, event_type: EVENT_TYPES[round % EVENT_TYPES.length]! }, nowMs)
    return signNotification(notification, clientSecret, nowMs)
  }

  return {
    sim,
    ouraUsers,
    requests(target) {
      const head = `POST /webhooks/oura HTTP/1.1\r\nhost: ${target.host}:${target.port}\r\ncontent-type: application/json\r\n`
      return (index) => {
        // x-oura-timestamp is the current second, x-oura-signature the upper-case hex HMAC of it + body.
        const signed = build(index, Date.now())
        return Buffer.from(`${head}x-oura-timestamp: ${signed.timestamp}\r\nx-oura-signature: ${signed.signature ?? ''}\r\n` +
          `content-length: ${Buffer.byteLength(signed.body)}\r\n\r\n${signed.body}`)
      }
    },
    async evictFinished(db) {
      const pollMs = Date.now()
      const sinceMs = (lastPollMs ?? 0) - EVICTION_OVERLAP_MS
      lastPollMs = pollMs
      const { rows } = await db.query<{ object_id: string }>(
        "SELECT object_id FROM webhook_receipts WHERE status = 'done' AND finished_at >= $1", [new Date(sinceMs)])
      let evicted = 0
      for (const { object_id: id } of rows) {
        const dataType = live.get(id)
        if (dataType === undefined) continue
        sim.deleteDocument(dataType, id)
        live.delete(id)
        evicted++
      }
      return evicted
    },
    liveDocuments: () => live.size,
    built: () => built
  }
}
