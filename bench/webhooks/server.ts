/**
 * A server under test of the webhook benchmark, run as a child process (bench/lib/child.ts) so its CPU and
 * memory are its own. BENCH_PROVIDER (oura, the default, or whoop) picks the notifications the servers other
 * than the bridge take; the bridge takes what its configuration enables. BENCH_SERVER=
 * - `bridge`: the real app (createApp with loadConfig(process.env), as `bridge serve` builds it);
 * - `baseline`: a bare Fastify POST /webhooks/<provider> with the bridge's raw-body parser and the bridge's own
 *   signature check and notification parser (`verifyOuraSignature` + `parseOuraNotification`, or
 *   `verifyWhoopSignature` + `parseWhoopNotification`, with the dedup key the bridge's dialect derives), and no
 *   I/O: no database, no cache, no metrics or hooks. What the bridge adds on top of it is the receipt.
 * - `floor`: the baseline plus the bridge's own `insertReceipt` (one autocommit INSERT per webhook, a pool of
 *   DB_POOL_SIZE connections): the least a durable intake with a commit per webhook does, without the
 *   bridge's dedup cache, backlog check, metrics and hooks.
 * - `floor-batched`: the baseline plus group commit: the receipts of all requests parsed in one turn of the event
 *   loop (at most MAX_BATCH) go into one INSERT … SELECT FROM unnest(…), and each request is answered after that
 *   statement committed. The idea of the bridge's own intake batcher (src/lib/batcher.ts) with nothing else
 *   around it.
 *
 * Answers `{ type: 'usage' }` with its CPU time, memory and event-loop utilization, so the parent can take
 * differences around a measurement. With BENCH_PROFILE=1 it also answers `profile-start` / `profile-stop`
 * (V8 CPU profiler via node:inspector, only around the measured phase). Stops on 'stop', SIGTERM or when the
 * parent goes away.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { ouraDedupKey, parseOuraNotification } from '../../src/providers/oura/notification.ts'
import { verifyOuraSignature } from '../../src/providers/oura/verify.ts'
import { parseWhoopNotification } from '../../src/providers/whoop/notification.ts'
import { verifyWhoopSignature } from '../../src/providers/whoop/verify.ts'
import type { Database } from '../../src/storage/database.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { insertReceipt } from '../../src/storage/receipts-repository.ts'
import { startChildProfiler } from '../lib/profiler.ts'
// Types only: the notification builders and simulators stay out of the servers' memory.
import type { Provider } from './notifications.ts'

/** Mirrors the bridge's webhook body limit. */
const WEBHOOK_BODY_LIMIT_BYTES = 64 * 1024
/** Mirrors WEBHOOK_TOLERANCE_SECONDS' default. */
const TOLERANCE_SECONDS = 300
/** Receipts per statement of `floor-batched`; more wait for the next statement. */
const MAX_BATCH = 256

export interface Usage {
  type: 'usage'
  /** process.cpuUsage() since start, in µs: user + system, and system alone (syscalls: socket reads and writes). */
  cpuUs: number
  cpuSystemUs: number
  rssBytes: number
  /** Peak resident set size since start (getrusage ru_maxrss), in KiB. */
  maxRssKb: number
  heapUsedBytes: number
  /** V8 heap reserved (heapTotal) and memory outside it (external: Buffers and ArrayBuffers included). */
  heapTotalBytes: number
  externalBytes: number
  /** performance.eventLoopUtilization() since start: time the loop was busy and idle, in ms. */
  eluActiveMs: number
  eluIdleMs: number
}

interface Served {
  address: string
  stop(): Promise<void>
}

async function serveBridge(): Promise<Served> {
  // Imported here, so that the other servers' memory does not include the app's module graph.
  const { createApp } = await import('../../src/app.ts')
  const { loadConfig } = await import('../../src/config/load.ts')
  const prefix = process.env.BENCH_CACHE_PREFIX
  const app = await createApp(loadConfig(process.env), prefix === undefined ? {} : { cacheKeyPrefix: prefix })
  return { address: await app.listen(), stop: () => app.stop() }
}

/** What a floor stores of a verified notification: its receipt's fields, as the bridge's dialect derives them. */
interface Receipt {
  dedupKey: string
  eventType: string
  dataType: string
  objectId: string
  providerUserId: string
}

/**
 * One provider's signature check and parser, the bridge's own functions called as src/providers/webhooks/dialects.ts
 * calls them (the same headers, tolerance and dedup key).
 */
interface Dialect {
  /** The variable holding the client secrets (comma-separated: rotation), as the bridge reads it. */
  secretsVariable: string
  /** Throws BB_SIGNATURE_* unless the raw bytes carry a valid signature. */
  verify(header: (name: string) => string | undefined, rawBody: Buffer, secrets: readonly string[], nowMs: number): void
  /** Throws BB_WEBHOOK_MALFORMED. */
  parse(rawBody: Buffer): Receipt
}

const DIALECTS: Record<Provider, Dialect> = {
  oura: {
    secretsVariable: 'OURA_CLIENT_SECRET',
    verify: (header, rawBody, secrets, nowMs) => verifyOuraSignature(
      { signature: header('x-oura-signature'), timestamp: header('x-oura-timestamp'), rawBody }, secrets, nowMs, TOLERANCE_SECONDS),
    parse(rawBody) {
      const notification = parseOuraNotification(rawBody)
      return { ...notification, dedupKey: ouraDedupKey(notification) }
    }
  },
  whoop: {
    secretsVariable: 'WHOOP_CLIENT_SECRET',
    verify: (header, rawBody, secrets, nowMs) => verifyWhoopSignature(
      { signature: header('x-whoop-signature'), timestamp: header('x-whoop-signature-timestamp'), rawBody }, secrets, nowMs, TOLERANCE_SECONDS),
    parse(rawBody) {
      const notification = parseWhoopNotification(rawBody)
      // trace_id identifies the triggering event: the bridge's dedup key for WHOOP.
      return { ...notification, dedupKey: notification.traceId }
    }
  }
}

const provider = (process.env.BENCH_PROVIDER ?? 'oura') as Provider
if (!Object.hasOwn(DIALECTS, provider)) throw new Error(`BENCH_PROVIDER must be one of ${Object.keys(DIALECTS).join(', ')}`)

/** Stores a verified notification's receipt; resolves true when it was new. */
type Store = (receipt: Receipt) => Promise<boolean>

/** Group commit: every receipt handed over in one turn of the event loop goes into one statement. */
function batchedStore(db: Database): Store {
  let queue: { receipt: Receipt, resolve: (stored: boolean) => void, reject: (error: unknown) => void }[] = []
  let scheduled = false
  function flush(): void {
    scheduled = false
    const batch = queue.slice(0, MAX_BATCH)
    queue = queue.slice(MAX_BATCH)
    if (queue.length > 0 && !scheduled) {
      scheduled = true
      setImmediate(flush)
    }
    if (batch.length === 0) return
    const keys = batch.map(({ receipt }) => receipt.dedupKey)
    db.query<{ dedup_key: string }>(
      `INSERT INTO webhook_receipts (provider, dedup_key, event_type, data_type, object_id, provider_user_id)
       SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (provider, dedup_key) DO NOTHING RETURNING dedup_key`,
      [provider, keys, batch.map(({ receipt }) => receipt.eventType), batch.map(({ receipt }) => receipt.dataType),
        batch.map(({ receipt }) => receipt.objectId), batch.map(({ receipt }) => receipt.providerUserId)]
    ).then(({ rows }) => {
      const stored = new Set(rows.map((row) => row.dedup_key))
      for (const [i, entry] of batch.entries()) entry.resolve(stored.has(keys[i]!))
    }, (error: unknown) => {
      for (const entry of batch) entry.reject(error)
    })
  }
  return (receipt) => new Promise<boolean>((resolve, reject) => {
    queue.push({ receipt, resolve, reject })
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  })
}

function singleStore(db: Database): Store {
  return (receipt) => insertReceipt(db, {
    provider, dedupKey: receipt.dedupKey, eventType: receipt.eventType, dataType: receipt.dataType,
    objectId: receipt.objectId, providerUserId: receipt.providerUserId, status: 'pending'
  })
}

async function serveBaseline(store?: Store): Promise<Served> {
  const dialect = DIALECTS[provider]
  const secrets = (process.env[dialect.secretsVariable] ?? '').split(',').map((secret) => secret.trim()).filter((secret) => secret !== '')
  if (secrets.length === 0) throw new Error(`${dialect.secretsVariable} is required`)
  const app = Fastify({ logger: false })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT_BYTES }, (_request, body, parsed) => {
    parsed(null, body)
  })
  app.post(`/webhooks/${provider}`, (request: FastifyRequest, reply: FastifyReply) => {
    const rawBody = request.body
    if (!Buffer.isBuffer(rawBody)) throw new Error('webhooks must be application/json')
    const header = (name: string): string | undefined => {
      const value = request.headers[name]
      return typeof value === 'string' ? value : undefined
    }
    dialect.verify(header, rawBody, secrets, Date.now())
    const receipt = dialect.parse(rawBody)
    if (store === undefined) return reply.send({ status: 'accepted' })
    return store(receipt).then((stored) => ({ status: stored ? 'accepted' : 'duplicate' }))
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return { address, stop: () => app.close() }
}

async function serveFloor(batched: boolean): Promise<Served> {
  const db = createPostgresDatabase({ url: process.env.DATABASE_URL ?? '', poolSize: Number(process.env.DB_POOL_SIZE ?? 10) })
  await migrate(db)
  const served = await serveBaseline(batched ? batchedStore(db) : singleStore(db))
  return {
    address: served.address,
    async stop() {
      await served.stop()
      await db.close()
    }
  }
}

const mode = process.env.BENCH_SERVER
let served: Served
switch (mode) {
  case 'bridge': served = await serveBridge(); break
  case 'baseline': served = await serveBaseline(); break
  case 'floor': served = await serveFloor(false); break
  case 'floor-batched': served = await serveFloor(true); break
  default: throw new Error('BENCH_SERVER must be bridge, baseline, floor or floor-batched')
}
process.send?.({ type: 'listening', address: served.address })

const profiler = await startChildProfiler()

function usage(): Usage {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  const elu = performance.eventLoopUtilization()
  return {
    type: 'usage',
    cpuUs: cpu.user + cpu.system,
    cpuSystemUs: cpu.system,
    rssBytes: memory.rss,
    maxRssKb: process.resourceUsage().maxRSS,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    eluActiveMs: elu.active,
    eluIdleMs: elu.idle
  }
}

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  await served.stop()
  process.exit(0)
}

async function onMessage(message: unknown): Promise<void> {
  if (message === 'stop') return stop()
  const command = message as { type?: string, file?: string }
  if (command.type === 'usage') process.send?.(usage())
  else await profiler.handle(command, (reply) => process.send?.(reply))
}

process.on('SIGTERM', () => void stop())
process.on('message', (message) => void onMessage(message))
process.on('disconnect', () => void stop())
