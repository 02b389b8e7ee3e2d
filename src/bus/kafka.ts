import { Admin, Producer, findErrorBy, stringSerializer, type Serializer, type Serializers } from '@platformatic/kafka'
import { toError } from '../errors.ts'
import type { BusMessage, Publisher } from './publisher.ts'
import { SendFailure } from './publisher.ts'

export interface KafkaOptions {
  brokers: readonly string[]
  clientId: string
  /**
   * Upper bound of one request to the broker, in milliseconds. The relay's lease must outlive a whole send
   * (timeout × retries), so a node that lost its lease cannot still be publishing.
   */
  requestTimeoutMs: number
  retries: number
}

// Broker answers that condemn the message, not the connection (Kafka protocol error ids).
const MESSAGE_REJECTIONS = ['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TOPIC_EXCEPTION']

function classify(error: unknown): SendFailure {
  for (const apiId of MESSAGE_REJECTIONS) {
    if (findErrorBy(toError(error), 'apiId', apiId) !== null) {
      return new SendFailure('rejected', `broker rejected the message (${apiId})`, { cause: error })
    }
  }
  return new SendFailure('unavailable', 'broker unavailable', { cause: error })
}

/**
 * UTF-8 serializer that keeps the bytes of short strings it has seen (up to `maxEntries`), for header names and
 * the few header values that repeat on every message (content type, schema version, source): encoding them anew
 * for each of thousands of messages per batch is a measurable share of the publisher's CPU. Longer strings (event
 * ids, keys, values) are encoded every time. The library copies these bytes into its request and never writes
 * to them.
 */
function reusingSerializer(maxLength: number, maxEntries: number): Serializer<string> {
  const known = new Map<string, Buffer>()
  return (data) => {
    if (typeof data !== 'string' || data.length > maxLength) return stringSerializer(data)
    let bytes = known.get(data)
    if (bytes === undefined) {
      bytes = stringSerializer(data)!
      if (known.size < maxEntries) known.set(data, bytes)
    }
    return bytes
  }
}

const SERIALIZERS: Serializers<string, string, string, string> = {
  key: stringSerializer,
  value: stringSerializer,
  headerKey: reusingSerializer(64, 256),
  headerValue: reusingSerializer(20, 256)
}

/** The Kafka adapter of the bus port: an idempotent producer with acks=all (the library default for idempotence). */
export function createKafkaPublisher(options: KafkaOptions): Publisher {
  const base = {
    clientId: options.clientId,
    bootstrapBrokers: [...options.brokers],
    timeout: options.requestTimeoutMs,
    connectTimeout: options.requestTimeoutMs,
    retries: options.retries,
    retryDelay: 250
  }
  const newProducer = (): Producer<string, string, string, string> =>
    new Producer({ ...base, idempotent: true, acks: -1, serializers: SERIALIZERS, autocreateTopics: false })
  let producer = newProducer()
  /** Every attempt of one send with the delays between them (the library's retryDelay is 250 ms). */
  const sendDeadlineMs = options.requestTimeoutMs * (options.retries + 1) + 250 * options.retries
  let admin: Admin | undefined
  /**
   * After a send failed for want of the broker, the next one starts on fresh connections. A connection whose peer
   * went silent (a hung broker, a black-holed link) is otherwise kept and every later request queues on it until
   * the operating system gives up on it — publishing stayed stalled ~15 s after such a link came back. Messages of
   * the failed send may still arrive (they stay in the outbox and are sent again): at-least-once, same event_id.
   */
  const replaceProducer = (): void => {
    const stale = producer
    producer = newProducer()
    stale.close(true).catch(() => {})
  }

  return {
    async send(messages: readonly BusMessage[]): Promise<void> {
      if (messages.length === 0) return
      let deadline: NodeJS.Timeout | undefined
      try {
        const sent = producer.send({
          messages: messages.map((message) => ({
            topic: message.topic,
            key: message.key,
            value: message.value,
            headers: new Map(Object.entries(message.headers))
          }))
        })
        // The client's own request timeout does not fire while a connection's peer is silent (measured: a send on a
        // black-holed link hung ~30 s); past every attempt's time the send counts as failed.
        const expired = new Promise<never>((_resolve, reject) => {
          deadline = setTimeout(() => reject(new Error(`no answer from the broker within ${sendDeadlineMs} ms`)), sendDeadlineMs)
        })
        sent.catch(() => {})
        await Promise.race([sent, expired])
      } catch (error) {
        const failure = classify(error)
        if (failure.kind === 'unavailable') replaceProducer()
        throw failure
      } finally {
        clearTimeout(deadline)
      }
    },
    async ensureTopics(topics: readonly string[]): Promise<void> {
      admin ??= new Admin(base)
      try {
        const metadata = await admin.metadata({ topics: [...topics], autocreateTopics: false }).catch(() => undefined)
        const missing = topics.filter((topic) => metadata?.topics.get(topic) === undefined)
        if (missing.length > 0) {
          // -1 partitions/replicas: the broker's defaults (KIP-464), so operators size topics in one place.
          await admin.createTopics({ topics: missing, partitions: -1, replicas: -1 }).catch((error: unknown) => {
            if (findErrorBy(toError(error), 'apiId', 'TOPIC_ALREADY_EXISTS') === null) throw error
          })
        }
      } catch (error) {
        throw classify(error)
      }
    },
    async close(): Promise<void> {
      await Promise.allSettled([producer.close(), admin?.close()])
    }
  }
}
