/**
 * Kafka side of the end-to-end webhook benchmark (bench/webhooks/e2e.ts --kafka): a fresh topic pair per run,
 * the broker's pid for its CPU account, and reading the topic back to check it against the outbox.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Admin, Consumer, stringDeserializers } from '@platformatic/kafka'

const ROOT = new URL('../../', import.meta.url)

export interface TopicCheck {
  /** Records in the topic (sum of the partitions' end offsets). */
  records: number
  /** Records read back (all of them unless the read timed out). */
  read: number
  distinctEventIds: number
  /** Outbox rows whose event_id was never read. */
  missing: number
  /** Records beyond what the outbox holds for their event_id: at-least-once repeats (none expected). */
  duplicates: number
  /** Records whose event_id is not in the outbox at all. */
  unexpected: number
}

export interface BenchTopics {
  brokers: string[]
  topic: string
  dlqTopic: string
  partitions: number
  /** Compares the topic with the outbox's event ids (one entry per outbox row; revisions repeat an id). */
  check(expectedEventIds: readonly string[], idleMs?: number): Promise<TopicCheck>
  /** Records in the DLQ topic. */
  dlqRecords(): Promise<number>
  /** Deletes both topics and closes the admin client. */
  close(): Promise<void>
}

/** Creates `bb-bench-e2e-<random>` and its DLQ topic with `partitions` partitions each. */
export async function createBenchTopics(brokers: string[], partitions: number): Promise<BenchTopics> {
  const admin = new Admin({ clientId: 'bb-bench-e2e-admin', bootstrapBrokers: brokers })
  const suffix = randomBytes(4).toString('hex')
  const topic = `bb-bench-e2e-${suffix}`
  const dlqTopic = `bb-bench-e2e-${suffix}.dlq`
  try {
    await admin.createTopics({ topics: [topic, dlqTopic], partitions, replicas: 1 })
  } catch (error) {
    await admin.close().catch(() => {})
    throw new Error(`could not create the topics on ${brokers.join(',')} (is the broker up? bash scripts/kafka.sh up): ${(error as Error).message}`, { cause: error })
  }

  const endOffsets = async (name: string): Promise<number> => {
    const listed = await admin.listOffsets({
      topics: [{ name, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }]
    })
    return listed.flatMap((entry) => entry.partitions).reduce((sum, partition) => sum + Number(partition.offset), 0)
  }

  return {
    brokers, topic, dlqTopic, partitions,
    async check(expectedEventIds, idleMs = 15_000) {
      const records = await endOffsets(topic)
      const counts = new Map<string, number>()
      let read = 0
      await readTopic(brokers, topic, (eventId) => {
        read++
        counts.set(eventId, (counts.get(eventId) ?? 0) + 1)
      }, () => read >= records, idleMs)
      const expected = new Map<string, number>()
      for (const id of expectedEventIds) expected.set(id, (expected.get(id) ?? 0) + 1)
      let missing = 0
      let duplicates = 0
      let unexpected = 0
      for (const [id, want] of expected) {
        const got = counts.get(id) ?? 0
        if (got < want) missing += want - got
        else duplicates += got - want
      }
      for (const [id, got] of counts) if (!expected.has(id)) unexpected += got
      return { records, read, distinctEventIds: counts.size, missing, duplicates, unexpected }
    },
    dlqRecords: () => endOffsets(dlqTopic),
    async close() {
      await admin.deleteTopics({ topics: [topic, dlqTopic] }).catch(() => {})
      await admin.close().catch(() => {})
    }
  }
}

/**
 * Reads a topic from the beginning with a fresh consumer group and passes each record's event_id header on,
 * until `done()` or nothing arrived for `idleMs`.
 */
async function readTopic(brokers: string[], topic: string, onRecord: (eventId: string) => void, done: () => boolean, idleMs: number): Promise<void> {
  if (done()) return
  const consumer = new Consumer({
    groupId: `bb-bench-e2e-${randomBytes(5).toString('hex')}`, clientId: 'bb-bench-e2e-consumer', bootstrapBrokers: brokers,
    deserializers: stringDeserializers
  })
  let stream: Awaited<ReturnType<typeof consumer.consume>> | undefined
  try {
    stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 500, minBytes: 1 })
    const stop = (): void => { void stream?.close() }
    let idle = setTimeout(stop, idleMs)
    for await (const message of stream) {
      onRecord(String(message.headers.get('event_id')))
      clearTimeout(idle)
      if (done()) break
      idle = setTimeout(stop, idleMs)
    }
    clearTimeout(idle)
  } finally {
    await stream?.close().catch(() => {})
    await consumer.close(true).catch(() => {})
  }
}

/**
 * The pid of the broker scripts/kafka.sh runs, when it is the one at `brokers[0]` (its CPU then counts); another
 * broker is used without a CPU account.
 */
export function localBrokerPid(brokers: readonly string[]): number | undefined {
  const status = spawnSync('bash', [new URL('scripts/kafka.sh', ROOT).pathname, 'status'], { encoding: 'utf8' }).stderr
  const match = /pid (\d+), Kafka [\d.]+, (\S+)/.exec(status)
  return match !== null && match[2] === brokers[0] ? Number(match[1]) : undefined
}
