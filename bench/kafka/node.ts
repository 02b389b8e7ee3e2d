/**
 * One node of the Kafka benchmark, run as a child process of bench/kafka/run.ts so that its CPU time and CPU
 * profile are its own. Configuration comes from the environment; commands and replies go over IPC.
 *
 * BENCH_MODE=relay — the system under test: the outbox relay wired as createApp wires it (src/app.ts): the app's
 *   config loader and database pool (DB_POOL_SIZE, default 10), createKafkaPublisher with the app's options, and
 *   createOutboxRelay with DEFAULT_RELAY_OPTIONS. The relay starts on `start-relay`. `load` commits uploads
 *   through upsertEventsWithOutbox on the same pool (what the HealthKit route does for an upload that fits one
 *   flush) and, unless `notify` is false, calls relay.notify() after each commit, as the route does.
 * BENCH_MODE=raw — the baseline: a bare @platformatic/kafka producer (idempotent, acks=all, string serializers,
 *   the publisher's timeouts), no database. `prepare` reads the pending rows of an outbox and builds the messages
 *   the relay would send for them (eventMessage: same key, value and headers), grouped by lane in id order; `go`
 *   sends them in batches of the relay's batch size, one concurrent sender per lane. `load` sends one upload's
 *   messages per tick.
 *
 * Replies `ready` once warm: pool connections open, producer id obtained and broker metadata cached (one message
 * to BENCH_WARM_TOPIC). With BENCH_PROFILE=1 it answers profile-start / profile-stop { file } (V8 CPU profiler).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Producer, stringSerializers, type MessageToProduce } from '@platformatic/kafka'
import pg from 'pg'
import { createKafkaPublisher } from '../../src/bus/kafka.ts'
import { eventMessage } from '../../src/bus/messages.ts'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/lib/logger.ts'
import { createMetrics } from '../../src/metrics/registry.ts'
import { DEFAULT_RELAY_OPTIONS, createOutboxRelay } from '../../src/pipeline/outbox-relay.ts'
import { upsertEventsWithOutbox } from '../../src/storage/events-repository.ts'
import { openDatabase } from '../../src/storage/open.ts'
import { clockMs, type Command, type LoadReport, type TickRecord } from './protocol.ts'
import { userEvents, userIdOf } from './workload.ts'
import { startChildProfiler } from '../lib/profiler.ts'

type Message = MessageToProduce<string, string, string, string>

const mode = process.env.BENCH_MODE
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter((broker) => broker !== '')
const topic = process.env.KAFKA_TOPIC ?? ''
const warmTopic = process.env.BENCH_WARM_TOPIC ?? ''
const reply = (message: unknown): void => {
  process.send?.(message)
}

/**
 * Runs `count` ticks on an absolute schedule (tick i is due at start + i × interval), never waiting for an
 * earlier tick to finish: the arrival rate holds even when the system falls behind.
 */
async function schedule(count: number, intervalMs: number, tick: (index: number, scheduledMs: number) => Promise<void>):
Promise<Omit<LoadReport, 'type' | 'records'>> {
  const startMs = clockMs() + 20
  const running = new Set<Promise<void>>()
  const errors: unknown[] = []
  let maxStartLagMs = 0
  let late = 0
  let maxConcurrent = 0
  for (let index = 0; index < count; index++) {
    const dueMs = startMs + index * intervalMs
    const waitMs = dueMs - clockMs()
    if (waitMs >= 1) await sleep(Math.floor(waitMs))
    const lagMs = Math.max(0, clockMs() - dueMs)
    maxStartLagMs = Math.max(maxStartLagMs, lagMs)
    if (lagMs > 5) late++
    const pending: Promise<void> = tick(index, dueMs).catch((error: unknown) => { errors.push(error) }).finally(() => running.delete(pending))
    running.add(pending)
    maxConcurrent = Math.max(maxConcurrent, running.size)
  }
  await Promise.all(running)
  if (errors.length > 0) throw new AggregateError(errors, `${errors.length} ticks failed`)
  return { maxStartLagMs, ticksStartedOver5MsLate: late, maxConcurrentTicks: maxConcurrent }
}

/** Prebuilt uploads of a load (untimed): tick i is one upload of `perTick` events of user i mod `users`. */
function uploads(count: number, perTick: number, users: number): ReturnType<typeof userEvents>[] {
  return Array.from({ length: count }, (_, index) => userEvents(userIdOf(index % users), perTick))
}

const profiler = await startChildProfiler()
const profileCommand = (command: Command): Promise<boolean> => profiler.handle(command, reply)

async function relayNode(): Promise<(command: Command) => Promise<void>> {
  // As in src/app.ts: config → database pool → publisher → relay.
  const config = loadConfig(process.env)
  const logger = createLogger({ level: config.logLevel, format: 'json' })
  const metrics = createMetrics()
  const db = await openDatabase(config)
  const publisher = createKafkaPublisher({ brokers: config.kafkaBrokers, clientId: 'biometric-bridge', requestTimeoutMs: 3000, retries: 2 })
  // BENCH_IDLE_POLL_MS only for experiments (run.ts --idle-poll-ms); unset, the relay runs with the app's options.
  const idlePollMs = process.env.BENCH_IDLE_POLL_MS === undefined ? {} : { idlePollMs: Number(process.env.BENCH_IDLE_POLL_MS) }
  const relay = createOutboxRelay({
    db, publisher, metrics, logger, options: { ...DEFAULT_RELAY_OPTIONS, topic: config.kafkaTopic, dlqTopic: config.kafkaDlqTopic, ...idlePollMs }
  })
  // Warm: every pool connection open, producer id and broker connection established.
  await Promise.all(Array.from({ length: config.dbPoolSize }, () => db.query('SELECT 1')))
  await publisher.send([{ topic: warmTopic, key: 'warm-up', value: '{}', headers: {} }])
  let prepared: (() => Promise<LoadReport>) | undefined

  return async (command) => {
    switch (command.type) {
      case 'start-relay':
        relay.start()
        reply({ type: 'relay-started' })
        return
      case 'prepare-load': {
        const batches = uploads(command.warmupTicks + command.ticks, command.perTick, command.users)
        prepared = async () => {
          const records: TickRecord[] = []
          const stats = await schedule(batches.length, command.intervalMs, async (index, scheduledMs) => {
            const events = batches[index]!
            const startMs = clockMs()
            const written = await upsertEventsWithOutbox(db, events)
            const doneMs = clockMs()
            if (command.notify) relay.notify()
            if (written.size !== events.length) throw new Error(`wrote ${written.size} of ${events.length} events`)
            if (index >= command.warmupTicks) records.push({ ids: events.map((event) => event.event_id), scheduledMs, startMs, doneMs })
          })
          return { type: 'load-done', records, ...stats }
        }
        reply({ type: 'load-prepared' })
        return
      }
      case 'run-load':
        if (prepared === undefined) throw new Error('run-load before prepare-load')
        reply(await prepared())
        return
      case 'stop':
        await relay.stop()
        await publisher.close()
        await db.close()
        process.exit(0)
        return
      default:
        if (!(await profileCommand(command))) throw new Error(`relay node: unexpected command ${command.type}`)
    }
  }
}

async function rawNode(): Promise<(command: Command) => Promise<void>> {
  // The publisher's client options (src/bus/kafka.ts), without the adapter around them.
  const producer = new Producer({
    clientId: 'bb-bench-raw', bootstrapBrokers: brokers, timeout: 3000, connectTimeout: 3000, retries: 2, retryDelay: 250,
    idempotent: true, acks: -1, serializers: stringSerializers, autocreateTopics: false
  })
  await producer.send({ messages: [{ topic: warmTopic, key: 'warm-up', value: '{}' }] })
  let lanes: Message[][][] = []
  let prepared: (() => Promise<LoadReport>) | undefined

  return async (command) => {
    switch (command.type) {
      case 'prepare': {
        const client = new pg.Client({ connectionString: command.databaseUrl })
        await client.connect()
        const byLane = new Map<number, Message[]>()
        try {
          const { rows } = await client.query<{ lane: number, user_id: string, payload: string }>(
            'SELECT lane, user_id, payload FROM outbox WHERE published_at IS NULL AND dead_lettered_at IS NULL ORDER BY id')
          for (const row of rows) {
            const message = eventMessage(topic, row.user_id, row.payload)
            if (message === undefined) throw new Error('outbox row is not an event')
            const lane = byLane.get(row.lane) ?? []
            lane.push({ topic, key: message.key, value: message.value, headers: new Map(Object.entries(message.headers)) })
            byLane.set(row.lane, lane)
          }
        } finally {
          await client.end()
        }
        const size = DEFAULT_RELAY_OPTIONS.batchSize
        lanes = [...byLane.values()].map((messages) =>
          Array.from({ length: Math.ceil(messages.length / size) }, (_, i) => messages.slice(i * size, (i + 1) * size)))
        reply({ type: 'prepared', lanes: lanes.length, messages: lanes.flat(2).length })
        return
      }
      case 'go': {
        const startMs = clockMs()
        await Promise.all(lanes.map(async (batches) => {
          for (const messages of batches) await producer.send({ messages })
        }))
        reply({ type: 'done', ms: clockMs() - startMs })
        return
      }
      case 'prepare-load': {
        const batches = uploads(command.warmupTicks + command.ticks, command.perTick, command.users).map((events) => ({
          ids: events.map((event) => event.event_id),
          messages: events.map((event): Message => {
            const message = eventMessage(topic, event.user_id, JSON.stringify(event))!
            return { topic, key: message.key, value: message.value, headers: new Map(Object.entries(message.headers)) }
          })
        }))
        prepared = async () => {
          const records: TickRecord[] = []
          const stats = await schedule(batches.length, command.intervalMs, async (index, scheduledMs) => {
            const { ids, messages } = batches[index]!
            const startMs = clockMs()
            await producer.send({ messages })
            const doneMs = clockMs()
            if (index >= command.warmupTicks) records.push({ ids, scheduledMs, startMs, doneMs })
          })
          return { type: 'load-done', records, ...stats }
        }
        reply({ type: 'load-prepared' })
        return
      }
      case 'run-load':
        if (prepared === undefined) throw new Error('run-load before prepare-load')
        reply(await prepared())
        return
      case 'stop':
        await producer.close()
        process.exit(0)
        return
      default:
        if (!(await profileCommand(command))) throw new Error(`raw node: unexpected command ${command.type}`)
    }
  }
}

const handle = mode === 'relay' ? await relayNode() : mode === 'raw' ? await rawNode() : undefined
if (handle === undefined) throw new Error('BENCH_MODE must be relay or raw')
process.on('message', (command: Command) => {
  handle(command).catch((error: unknown) => {
    reply({ type: 'error', message: (error as Error).stack ?? String(error) })
  })
})
process.on('disconnect', () => process.exit(0))
reply({ type: 'ready' })
