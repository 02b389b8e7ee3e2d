import { buildEvent } from '../domain/build-event.ts'
import type { BiometricEvent } from '../domain/event.ts'
import type { Rejection } from '../domain/validation.ts'
import { BridgeError } from '../errors.ts'
import { JsonSyntaxError, createJsonSplitter, type JsonPath, type JsonValueKind } from '../lib/json-splitter.ts'
import type { Metrics } from '../metrics/registry.ts'
import {
  isSupportedExportMetric, normalizeExportPoint, normalizeExportWorkout, type ExportMetricHeader
} from '../providers/healthkit/auto-export.ts'
import { normalizeNativeSample, parseDeletion, type SampleOutcome } from '../providers/healthkit/native.ts'
import type { Database, Queryable } from '../storage/database.ts'
import { deleteRecordsWithOutbox, upsertEventsWithOutbox } from '../storage/events-repository.ts'

export type UploadFormat = 'native' | 'auto-export'

export interface SampleRejection extends Rejection {
  /** Position of the sample in the upload, counting every sample (and every export data point) from 0. */
  index: number
  /** Where the sample sits in the document, e.g. `samples[3]` or `data.metrics[1].data[7]`. */
  path: string
}

export interface UploadResult {
  /** Events identical to what was already stored (re-uploads). */
  duplicates: number
  /** Valid samples without a catalog metric (in-bed spans, metrics the bridge does not map). */
  ignored: number
  /** The first MAX_LISTED_REJECTIONS rejections; `rejected_count` has the total. */
  rejected: SampleRejection[]
  rejectedCount: number
  unsupportedMetrics: string[]
  /** Committed events (inserted or replaced by a newer revision), for the answer and after-commit work. */
  written: BiometricEvent[]
  /** The `op: "delete"` events of committed deletions, for the answer and after-commit cache invalidation. */
  removed: BiometricEvent[]
}

export interface UploadLimits {
  maxSamples: number
  maxBodyBytes: number
  /** Events buffered before a bulk write; bounds memory for any upload size. */
  flushEvents: number
}

export interface UploadDeps {
  db: Database
  metrics: Metrics
  now: () => number
}

/** Rejections listed in a response; a 100,000-sample upload of garbage must not produce a 10 MB answer. */
const MAX_LISTED_REJECTIONS = 1000

/**
 * Streams one HealthKit upload into storage: parses the body incrementally, validates each sample, and writes
 * all accepted events and their outbox rows in ONE transaction (all or nothing for the upload; per-sample
 * rejections do not abort it). Small uploads never hold a connection while the client is still sending: the
 * transaction opens only once a full flush is buffered or the body has ended.
 */
export async function ingestHealthKitUpload(
  deps: UploadDeps, userId: string, format: UploadFormat, body: AsyncIterable<Buffer>, limits: UploadLimits
): Promise<UploadResult> {
  const nowMs = deps.now()
  const origin = { userId, source: 'healthkit' as const, ingestedAt: new Date(nowMs).toISOString() }
  const result: UploadResult = {
    duplicates: 0, ignored: 0, rejected: [], rejectedCount: 0, unsupportedMetrics: [], written: [], removed: []
  }
  const unsupported = new Set<string>()
  // Keyed by event_id: a repeated sample within one flush keeps its last occurrence (PostgreSQL cannot
  // update one row twice in a statement).
  let pending = new Map<string, BiometricEvent>()
  const deletions: string[] = []
  let sampleCount = 0

  const reject = (index: number, path: string, rejection: Rejection): void => {
    result.rejectedCount++
    if (result.rejected.length < MAX_LISTED_REJECTIONS) result.rejected.push({ index, path, ...rejection })
  }
  const countSample = (): number => {
    if (++sampleCount > limits.maxSamples) {
      throw new BridgeError('BB_TOO_MANY_SAMPLES', `an upload may carry at most ${limits.maxSamples} samples`)
    }
    return sampleCount - 1
  }
  const accept = (index: number, path: string, outcome: SampleOutcome): void => {
    if (outcome.kind === 'ignored') {
      result.ignored++
      return
    }
    if (outcome.kind === 'rejected') {
      reject(index, path, outcome.rejection)
      return
    }
    const events: BiometricEvent[] = []
    for (const draft of outcome.drafts) {
      const built = buildEvent(draft, origin, { nowMs })
      if (!built.ok) {
        // One sample yields its events together or not at all.
        reject(index, path, built.rejection)
        return
      }
      events.push(built.event)
    }
    for (const event of events) {
      if (pending.has(event.event_id)) result.duplicates++
      pending.set(event.event_id, event)
    }
  }
  const parse = (raw: string, index: number, path: string): unknown => {
    try {
      return JSON.parse(raw) as unknown
    } catch {
      reject(index, path, { code: 'BB_SAMPLE_MALFORMED', message: 'sample is not valid JSON' })
      return undefined
    }
  }

  const handlers: Handlers = format === 'native'
    ? nativeHandlers(countSample, accept, parse, (index, path, raw) => {
      const deletion = parseDeletion(parse(raw, index, path))
      if ('uuid' in deletion) deletions.push(deletion.uuid)
      else reject(index, path, deletion)
    })
    : exportHandlers(countSample, accept, parse, unsupported)
  const splitter = createJsonSplitter(handlers)

  let bytes = 0
  const iterator = body[Symbol.asyncIterator]()
  let ended = false
  /** Reads the body until a flush is due or it ends. */
  const pump = async (): Promise<void> => {
    while (!ended && pending.size < limits.flushEvents) {
      const next = await iterator.next()
      if (next.done === true) {
        splitter.end()
        handlers.finish?.()
        ended = true
        break
      }
      bytes += next.value.length
      if (bytes > limits.maxBodyBytes) {
        throw new BridgeError('BB_BODY_TOO_LARGE', `an upload may be at most ${limits.maxBodyBytes} bytes`)
      }
      splitter.write(next.value)
    }
  }
  const flush = async (tx: Queryable): Promise<void> => {
    if (pending.size === 0) return
    const batch = [...pending.values()]
    pending = new Map()
    const written = await upsertEventsWithOutbox(tx, batch)
    for (const event of batch) {
      if (written.has(event.event_id)) result.written.push(event)
      else result.duplicates++
    }
  }

  try {
    await pump()
    if (ended && deletions.length === 0) {
      // The whole upload is one bulk write: that single statement is atomic on its own, so it runs without the
      // BEGIN and COMMIT round trips of an explicit transaction.
      await flush(deps.db)
    } else {
      await deps.db.transaction(async (tx) => {
        // While one flush is written, the body is read up to the next one, so parsing here and writing in the
        // database overlap instead of taking turns. Statements still run one at a time and in order; a failed
        // write is reported before a later parse error, as when they ran in turn.
        let writing = flush(tx)
        while (!ended) {
          const [written, pumped] = await Promise.allSettled([writing, pump()])
          if (written.status === 'rejected') throw written.reason
          if (pumped.status === 'rejected') throw pumped.reason
          writing = flush(tx)
        }
        await writing
        if (deletions.length > 0) {
          result.removed = await deleteRecordsWithOutbox(tx, userId, 'healthkit', deletions, origin.ingestedAt)
        }
      })
    }
  } catch (error) {
    if (error instanceof JsonSyntaxError) {
      if (error.reason === 'too_deep') throw new BridgeError('BB_PAYLOAD_TOO_DEEP', 'JSON nesting is too deep', { cause: error })
      if (error.reason === 'value_too_large') {
        throw new BridgeError('BB_INVALID_REQUEST', `a sample or key is larger than allowed (at byte ${error.offset})`, { cause: error })
      }
      throw new BridgeError('BB_MALFORMED_JSON', `body is not valid JSON (at byte ${error.offset})`, { cause: error })
    }
    throw error
  } finally {
    // Stop reading a body we no longer want (error paths); a finished iterator ignores this.
    await iterator.return?.()
  }

  result.unsupportedMetrics = [...unsupported]
  recordMetrics(deps.metrics, result)
  return result
}

function recordMetrics(metrics: Metrics, result: UploadResult): void {
  const samples = metrics.healthkitSamplesTotal
  samples.inc({ outcome: 'accepted' }, result.written.length)
  samples.inc({ outcome: 'duplicate' }, result.duplicates)
  samples.inc({ outcome: 'rejected' }, result.rejectedCount)
  samples.inc({ outcome: 'ignored' }, result.ignored)
  samples.inc({ outcome: 'deleted' }, result.removed.length)
  for (const event of result.written) {
    metrics.biometricValues.observe({ metric_type: event.metric, device_type: event.device_type }, event.value)
  }
}

function notAnUpload(message: string): BridgeError {
  return new BridgeError('BB_INVALID_REQUEST', message)
}

interface Handlers {
  capture: (path: JsonPath, kind: JsonValueKind) => boolean
  onValue: (path: JsonPath, raw: string) => void
  /** Called once the whole document has been read. */
  finish?: () => void
}

type Accept = (index: number, path: string, outcome: SampleOutcome) => void
type Parse = (raw: string, index: number, path: string) => unknown

function nativeHandlers(
  countSample: () => number, accept: Accept, parse: Parse,
  onDeletion: (index: number, path: string, raw: string) => void
): Handlers {
  let hasList = false
  return {
    capture: (path: JsonPath, kind: JsonValueKind) => {
      const inList = path[0] === 'samples' || path[0] === 'deleted'
      if (!inList) return false
      if (path.length === 1) {
        // `{"samples": 5}` or `{"samples": {}}` is a shape error, not an empty upload.
        if (kind !== 'array') throw notAnUpload('"samples" and "deleted" must be arrays')
        hasList = true
      }
      return path.length === 2
    },
    finish: () => {
      // `{}` or a misspelt key would otherwise be answered 200 with nothing stored: the client must learn of it.
      if (!hasList) throw notAnUpload('an upload needs a "samples" or "deleted" array')
    },
    onValue: (path: JsonPath, raw: string) => {
      const index = countSample()
      const where = `${String(path[0])}[${String(path[1])}]`
      if (path[0] === 'deleted') {
        onDeletion(index, where, raw)
        return
      }
      const sample = parse(raw, index, where)
      if (sample !== undefined) accept(index, where, normalizeNativeSample(sample))
    }
  }
}

/**
 * Health Auto Export nests points under `data.metrics[i].data[j]` with the metric's `name` and `units` beside
 * them. Points that arrive before their header are held until the header is known (the app writes the header
 * first, but JSON does not promise key order).
 */
function exportHandlers(countSample: () => number, accept: Accept, parse: Parse, unsupported: Set<string>): Handlers {
  const headers = new Map<number, Partial<ExportMetricHeader>>()
  let held: Array<{ metricIndex: number, index: number, path: string, raw: string }> = []

  const handlePoint = (header: ExportMetricHeader, index: number, path: string, raw: string): void => {
    if (!isSupportedExportMetric(header.name)) {
      unsupported.add(header.name.slice(0, 64))
      accept(index, path, { kind: 'ignored' })
      return
    }
    const point = parse(raw, index, path)
    if (point !== undefined) accept(index, path, normalizeExportPoint(header, point))
  }
  const releaseHeld = (metricIndex: number): void => {
    const header = headers.get(metricIndex)
    if (header?.name === undefined) return
    const ready = held.filter((entry) => entry.metricIndex === metricIndex)
    held = held.filter((entry) => entry.metricIndex !== metricIndex)
    for (const entry of ready) handlePoint({ name: header.name, units: header.units }, entry.index, entry.path, entry.raw)
  }

  let hasData = false
  return {
    capture: (path: JsonPath) => {
      if (path[0] !== 'data') return false
      if (path.length === 1) hasData = true
      if (path[1] === 'workouts') return path.length === 3
      if (path[1] !== 'metrics' || path.length !== 4) return path[1] === 'metrics' && path.length === 5 && path[3] === 'data'
      return path[3] === 'name' || path[3] === 'units'
    },
    onValue: (path: JsonPath, raw: string) => {
      if (path[1] === 'workouts') {
        const where = `data.workouts[${String(path[2])}]`
        const index = countSample()
        const workout = parse(raw, index, where)
        if (workout !== undefined) accept(index, where, normalizeExportWorkout(workout))
        return
      }
      const metricIndex = path[2] as number
      if (path.length === 4) {
        const header = headers.get(metricIndex) ?? {}
        const value: unknown = JSON.parse(raw)
        if (typeof value === 'string') {
          if (path[3] === 'name') header.name = value
          else header.units = value
        }
        headers.set(metricIndex, header)
        // Units may follow the name; points are released once both could have been seen (see below).
        return
      }
      const index = countSample()
      const where = `data.metrics[${metricIndex}].data[${String(path[4])}]`
      const header = headers.get(metricIndex)
      if (header?.name !== undefined && header.units !== undefined) {
        handlePoint({ name: header.name, units: header.units }, index, where, raw)
      } else {
        held.push({ metricIndex, index, path: where, raw })
      }
      // Entering the next metric means the previous one is complete: release what waited for its header.
      for (const waiting of new Set(held.map((entry) => entry.metricIndex))) {
        if (waiting < metricIndex) releaseHeld(waiting)
      }
    },
    finish: () => {
      if (!hasData) throw notAnUpload('a Health Auto Export upload needs a "data" object')
      for (const waiting of new Set(held.map((entry) => entry.metricIndex))) releaseHeld(waiting)
      for (const entry of held) {
        accept(entry.index, entry.path, { kind: 'rejected', rejection: { code: 'BB_SAMPLE_MALFORMED', message: 'metric has no name' } })
      }
      held = []
    }
  }
}
