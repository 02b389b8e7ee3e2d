/**
 * The notifications of the webhook benchmark, per provider, every one unique (its own dedup key, so its own
 * receipt) and signed when it is sent:
 * - oura: Oura's body shape and signature (src/simulators/oura/webhooks.ts): a unique object_id, upper-case hex
 *   HMAC of `x-oura-timestamp` (the current second) + body;
 * - whoop: WHOOP's v2 body shape and signature (src/simulators/whoop/webhooks.ts): a unique trace_id (WHOOP's
 *   dedup key) and id, base64 HMAC of `x-whoop-signature-timestamp` (the current MILLISECOND) + body.
 * The bytes are built by hand because the load generator sends up to ~20,000 a second from a process that shares
 * two cores with the server; `checkAgainstSimulator` proves once per run that they are byte for byte what the
 * provider's simulator produces.
 */
import { randomBytes } from 'node:crypto'
import { OURA_DATA_TYPES } from '../../src/providers/oura/documents.ts'
import { signNotification, signOuraPayload, toNotification, type OuraEventType } from '../../src/simulators/oura/webhooks.ts'
import { signWhoopWebhook, whoopWebhookBody, type WhoopEventType } from '../../src/simulators/whoop/webhooks.ts'
import type { LoadTarget, RequestFactory } from '../lib/http-load.ts'

export type Provider = 'oura' | 'whoop'
export const PROVIDERS: readonly Provider[] = ['oura', 'whoop']

export const webhookPath = (provider: Provider): string => `/webhooks/${provider}`

const OURA_EVENT_TYPES: readonly OuraEventType[] = ['create', 'update']
/** Every type the bridge works on (WHOOP has no `created`: creation comes as `updated`). */
const WHOOP_EVENT_TYPES: readonly WhoopEventType[] = [
  'sleep.updated', 'recovery.updated', 'workout.updated', 'sleep.deleted', 'recovery.deleted', 'workout.deleted'
]
/** WHOOP user ids are small int64s in practice; the bench users are 10,000 + n (safe integers, as the parser wants). */
const WHOOP_USER_BASE = 10_000

export interface NotificationSource {
  readonly provider: Provider
  /** A request factory for one server: each call builds a new notification, signed now. */
  forTarget(target: LoadTarget): RequestFactory
  /** Notifications built so far, over all targets. */
  readonly built: number
  /** A request for `target` whose signature is wrong (to prove a server checks it). */
  forged(target: LoadTarget): Buffer
  /** Throws unless the fast path builds exactly the simulator's body and signature. */
  checkAgainstSimulator(): void
}

interface Parts {
  body: string
  timestamp: string
  signature: string
}

/** How one provider's notifications look on the wire. */
interface Dialect {
  timestampHeader: string
  signatureHeader: string
  /** Notification number `seq` of this run, signed with `key` at `nowMs`: the fast path. */
  parts(seq: number, nowMs: number, key: string): Parts
  /** The same notification as the provider's simulator builds and signs it. */
  simulated(seq: number, nowMs: number, secret: string): Parts
}

function ouraDialect(runId: string, users: number): Dialect {
  // The timestamp and event_time change once a second; everything per second is cached.
  let second = -1
  let timestamp = ''
  let eventTime = ''
  const fields = (seq: number): { event_type: OuraEventType, data_type: string, object_id: string, user_id: string } => ({
    event_type: OURA_EVENT_TYPES[seq % OURA_EVENT_TYPES.length]!, data_type: OURA_DATA_TYPES[seq % OURA_DATA_TYPES.length]!,
    object_id: `${runId}-${seq.toString(36)}`, user_id: `bench-user-${seq % users}`
  })
  return {
    timestampHeader: 'x-oura-timestamp',
    signatureHeader: 'x-oura-signature',
    parts(seq, nowMs, key) {
      const nowSecond = Math.floor(nowMs / 1000)
      if (nowSecond !== second) {
        second = nowSecond
        timestamp = String(nowSecond)
        eventTime = toNotification({ event_type: 'update', data_type: 'sleep', object_id: 'x', user_id: 'x' }, nowMs).event_time
      }
      // Oura's field order, compact JSON; the ids need no escaping.
      const body = `{"event_type":"${OURA_EVENT_TYPES[seq % OURA_EVENT_TYPES.length]!}","data_type":"${OURA_DATA_TYPES[seq % OURA_DATA_TYPES.length]!}",` +
        `"object_id":"${runId}-${seq.toString(36)}","event_time":"${eventTime}","user_id":"bench-user-${seq % users}"}`
      return { body, timestamp, signature: signOuraPayload(key, timestamp, body) }
    },
    simulated(seq, nowMs, secret) {
      const { body, signature, timestamp } = signNotification(toNotification(fields(seq), nowMs), secret, nowMs)
      return { body, timestamp, signature: signature ?? '' }
    }
  }
}

function whoopDialect(runId: string, users: number): Dialect {
  // UUID-shaped ids (version 4 nibble, variant 8/9) from the run id and the sequence number: unique per run
  // without a randomUUID per request. `id` and `trace_id` differ in the fourth group.
  const uuid = (variant: '8' | '9', seq: number): string => `${runId}-0000-4000-${variant}000-${seq.toString(16).padStart(12, '0')}`
  const fields = (seq: number): { type: WhoopEventType, id: string, userId: string, traceId: string } => ({
    type: WHOOP_EVENT_TYPES[seq % WHOOP_EVENT_TYPES.length]!, id: uuid('8', seq), userId: String(WHOOP_USER_BASE + seq % users),
    traceId: uuid('9', seq)
  })
  return {
    timestampHeader: 'x-whoop-signature-timestamp',
    signatureHeader: 'x-whoop-signature',
    parts(seq, nowMs, key) {
      // WHOOP's field order, compact JSON, user_id a JSON number; the ids need no escaping.
      const body = `{"user_id":${WHOOP_USER_BASE + seq % users},"id":"${uuid('8', seq)}",` +
        `"type":"${WHOOP_EVENT_TYPES[seq % WHOOP_EVENT_TYPES.length]!}","trace_id":"${uuid('9', seq)}"}`
      const headers = signWhoopWebhook(body, key, nowMs)
      return { body, timestamp: headers['x-whoop-signature-timestamp']!, signature: headers['x-whoop-signature']! }
    },
    simulated(seq, nowMs, secret) {
      const body = whoopWebhookBody(fields(seq))
      const headers = signWhoopWebhook(body, secret, nowMs)
      return { body, timestamp: headers['x-whoop-signature-timestamp']!, signature: headers['x-whoop-signature']! }
    }
  }
}

/** `users` users take turns; ids carry a per-run prefix so runs never collide in a kept database. */
export function createNotificationSource(provider: Provider, secret: string, users: number): NotificationSource {
  const runId = randomBytes(4).toString('hex')
  const dialect = provider === 'oura' ? ouraDialect(runId, users) : whoopDialect(runId, users)
  const path = webhookPath(provider)
  let sequence = 0

  function bytes(target: LoadTarget, { body, timestamp, signature }: Parts): Buffer {
    return Buffer.from(`POST ${path} HTTP/1.1\r\nhost: ${target.host}:${target.port}\r\ncontent-type: application/json\r\n` +
      `${dialect.timestampHeader}: ${timestamp}\r\n${dialect.signatureHeader}: ${signature}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }

  return {
    provider,
    forTarget(target) {
      return () => bytes(target, dialect.parts(sequence++, Date.now(), secret))
    },
    get built() {
      return sequence
    },
    forged(target) {
      return bytes(target, dialect.parts(sequence++, Date.now(), `${secret}-not-the-secret`))
    },
    checkAgainstSimulator() {
      const nowMs = Date.now()
      const seq = 7
      const fast = dialect.parts(seq, nowMs, secret)
      const simulated = dialect.simulated(seq, nowMs, secret)
      if (fast.body !== simulated.body || fast.signature !== simulated.signature || fast.timestamp !== simulated.timestamp) {
        throw new Error(`${provider} notification bytes differ from the simulator's:\n${fast.body}\n${simulated.body}`)
      }
    }
  }
}
