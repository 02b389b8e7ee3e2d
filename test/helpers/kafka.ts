import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { TestContext } from 'node:test'
import { Admin, Consumer, stringDeserializers } from '@platformatic/kafka'
import { requireService } from './services.ts'

/** Broker of the integration tests; `bash scripts/kafka.sh up` provides one on this address. */
export const TEST_KAFKA_BROKERS = (process.env.TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((entry) => entry.trim())

let reachable: Promise<string | undefined> | undefined

function checkKafka(): Promise<string | undefined> {
  reachable ??= new Promise((resolve) => {
    const [host, port] = TEST_KAFKA_BROKERS[0]!.split(':')
    const socket = connect(Number(port), host)
    socket.setTimeout(3000)
    socket.once('connect', () => { socket.destroy(); resolve(undefined) })
    socket.once('timeout', () => { socket.destroy(); resolve('timed out') })
    socket.once('error', (error) => resolve(error.message))
  })
  return reachable
}

/** Skips (locally) or fails (CI) the test when the broker is unreachable. Returns false when the test must stop. */
export async function requireKafka(t: TestContext): Promise<boolean> {
  return requireService(t, await checkKafka(), 'Kafka at TEST_KAFKA_BROKERS', 'bash scripts/kafka.sh up')
}

/** A fresh topic pair per test, so tests never see each other's messages. */
export function testTopics(): { topic: string, dlqTopic: string, env: Record<string, string> } {
  const topic = `bb-test-${randomBytes(5).toString('hex')}`
  const dlqTopic = `${topic}.dlq`
  return { topic, dlqTopic, env: { KAFKA_BROKERS: TEST_KAFKA_BROKERS.join(','), KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: dlqTopic } }
}

/** Creates a topic with explicit settings (e.g. a small max.message.bytes to provoke rejections). */
export async function createTopic(name: string, partitions: number, configs: Record<string, string> = {}): Promise<void> {
  const admin = new Admin({ clientId: 'bb-test-admin', bootstrapBrokers: TEST_KAFKA_BROKERS })
  try {
    await admin.createTopics({
      topics: [name], partitions, replicas: 1,
      configs: Object.entries(configs).map(([key, value]) => ({ name: key, value }))
    })
  } finally {
    await admin.close()
  }
}

export interface ConsumedMessage {
  key: string
  value: string
  headers: Record<string, string>
  partition: number
  offset: bigint
}

/**
 * Reads a topic from the beginning until `expected` messages arrived or `timeoutMs` passed, and returns
 * what it read (the caller asserts on it: a short read is a failure the assertion reports, not a hang).
 */
export async function readTopic(
  topic: string, expected: number, timeoutMs = 60_000,
  /** Counts what was read towards `expected`; by default every message counts. */
  count: (messages: readonly ConsumedMessage[]) => number = (messages) => messages.length,
  /** Another broker than the shared test broker (e.g. a test's private one). */
  brokers: readonly string[] = TEST_KAFKA_BROKERS
): Promise<ConsumedMessage[]> {
  const consumer = new Consumer({
    groupId: `bb-test-${randomBytes(5).toString('hex')}`,
    clientId: 'bb-test-consumer',
    bootstrapBrokers: [...brokers],
    deserializers: stringDeserializers
  })
  const messages: ConsumedMessage[] = []
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 })
    const deadline = setTimeout(() => { void stream.close() }, timeoutMs)
    try {
      for await (const message of stream) {
        messages.push({
          key: message.key,
          value: message.value,
          headers: Object.fromEntries([...message.headers].map(([key, value]) => [String(key), String(value)])),
          partition: message.partition,
          offset: message.offset
        })
        if (count(messages) >= expected) break
      }
    } finally {
      clearTimeout(deadline)
      await stream.close().catch(() => {})
    }
  } finally {
    await consumer.close(true).catch(() => {})
  }
  return messages
}

/** Changes one topic's settings, e.g. to lift a size limit once a test has provoked a rejection. */
export async function setTopicConfig(name: string, configs: Record<string, string>): Promise<void> {
  const admin = new Admin({ clientId: 'bb-test-admin', bootstrapBrokers: TEST_KAFKA_BROKERS })
  try {
    await admin.alterConfigs({
      resources: [{ resourceType: 2, resourceName: name, configs: Object.entries(configs).map(([key, value]) => ({ name: key, value })) }]
    })
  } finally {
    await admin.close()
  }
}
