/**
 * The notifications of the webhook benchmark: Oura's body shape and signature (src/simulators/oura/webhooks.ts),
 * every one unique (its own object_id, so its own dedup key and receipt), signed when it is sent with the
 * current second as `x-oura-timestamp`. The bytes are built by hand because the load generator sends up to
 * ~20,000 a second from a process that shares two cores with the server; `checkAgainstSimulator` proves once
 * per run that they are byte for byte what the simulator's signNotification produces.
 */
import { randomBytes } from 'node:crypto'
import { OURA_DATA_TYPES } from '../../src/providers/oura/documents.ts'
import { signNotification, signOuraPayload, toNotification, type OuraEventType } from '../../src/simulators/oura/webhooks.ts'
import type { LoadTarget, RequestFactory } from '../lib/http-load.ts'

export const WEBHOOK_PATH = '/webhooks/oura'
const EVENT_TYPES: readonly OuraEventType[] = ['create', 'update']

export interface NotificationSource {
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

/** `users` Oura users take turns; ids carry a per-run prefix so runs never collide in a kept database. */
export function createNotificationSource(secret: string, users: number): NotificationSource {
  const runId = randomBytes(4).toString('hex')
  let sequence = 0
  // The timestamp and event_time change once a second; everything per second is cached.
  let second = -1
  let timestamp = ''
  let eventTime = ''

  function parts(seq: number, nowMs: number, key: string): Parts {
    const nowSecond = Math.floor(nowMs / 1000)
    if (nowSecond !== second) {
      second = nowSecond
      timestamp = String(nowSecond)
      eventTime = toNotification({ event_type: 'update', data_type: 'sleep', object_id: 'x', user_id: 'x' }, nowMs).event_time
    }
    // Oura's field order, compact JSON; the ids need no escaping.
    const body = `{"event_type":"${EVENT_TYPES[seq % EVENT_TYPES.length]!}","data_type":"${OURA_DATA_TYPES[seq % OURA_DATA_TYPES.length]!}",` +
      `"object_id":"${runId}-${seq.toString(36)}","event_time":"${eventTime}","user_id":"bench-user-${seq % users}"}`
    return { body, timestamp, signature: signOuraPayload(key, timestamp, body) }
  }

  function bytes(target: LoadTarget, { body, timestamp, signature }: Parts): Buffer {
    return Buffer.from(`POST ${WEBHOOK_PATH} HTTP/1.1\r\nhost: ${target.host}:${target.port}\r\ncontent-type: application/json\r\n` +
      `x-oura-timestamp: ${timestamp}\r\nx-oura-signature: ${signature}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }

  return {
    forTarget(target) {
      return () => bytes(target, parts(sequence++, Date.now(), secret))
    },
    get built() {
      return sequence
    },
    forged(target) {
      return bytes(target, parts(sequence++, Date.now(), `${secret}-not-the-secret`))
    },
    checkAgainstSimulator() {
      const nowMs = Date.now()
      const seq = 7
      const fast = parts(seq, nowMs, secret)
      const notification = toNotification({
        event_type: EVENT_TYPES[seq % EVENT_TYPES.length]!, data_type: OURA_DATA_TYPES[seq % OURA_DATA_TYPES.length]!,
        object_id: `${runId}-${seq.toString(36)}`, user_id: `bench-user-${seq % users}`
      }, nowMs)
      const simulated = signNotification(notification, secret, nowMs)
      if (fast.body !== simulated.body || fast.signature !== simulated.signature || fast.timestamp !== simulated.timestamp) {
        throw new Error(`notification bytes differ from the simulator's:\n${fast.body}\n${simulated.body}`)
      }
    }
  }
}
