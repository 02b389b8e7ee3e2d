/**
 * What simulators report while they run, per stream (a data type such as HealthKit heart rate, or an Oura
 * document type). Counts are the bridge's own answers, summed over the stream's requests; the demo renders
 * them live and totals them at the end.
 */
export interface OutcomeCounts {
  /** Events stored (inserted or replaced by a newer revision). */
  accepted: number
  /** Events identical to what was already stored. */
  duplicates: number
  /** Valid input without a catalog metric (e.g. in-bed spans). */
  ignored: number
  /** Samples refused one by one inside a 2xx answer. */
  rejected: number
  /** Events removed by deletions. */
  deleted: number
}

export interface StreamProgress extends OutcomeCounts {
  simulator: string
  stream: string
  /** Short human name, e.g. `heart rate`. */
  label: string
  /** Samples (or documents) the simulator will send on this stream. */
  plannedItems: number
  sentItems: number
  requests: number
  done: boolean
}

export const ZERO_COUNTS: Readonly<OutcomeCounts> = { accepted: 0, duplicates: 0, ignored: 0, rejected: 0, deleted: 0 }

export function addCounts(a: OutcomeCounts, b: Partial<OutcomeCounts>): OutcomeCounts {
  return {
    accepted: a.accepted + (b.accepted ?? 0),
    duplicates: a.duplicates + (b.duplicates ?? 0),
    ignored: a.ignored + (b.ignored ?? 0),
    rejected: a.rejected + (b.rejected ?? 0),
    deleted: a.deleted + (b.deleted ?? 0)
  }
}

/** One simulator's view of the board: it names its streams, the board keys them by simulator too. */
export interface ProgressReporter {
  declare(stream: string, label: string, plannedItems: number): void
  /** Records one answered request of `items` samples. */
  record(stream: string, items: number, counts: Partial<OutcomeCounts>): void
  finish(stream: string): void
}

/**
 * Shared, synchronous tally of every stream of every simulator. Listeners are called after each change; a
 * renderer throttles on its own.
 */
export class ProgressBoard {
  #streams = new Map<string, StreamProgress>()
  #listeners = new Set<(stream: StreamProgress) => void>()

  reporter(simulator: string): ProgressReporter {
    const key = (stream: string): string => `${simulator}\u0000${stream}`
    const entry = (stream: string): StreamProgress => {
      const found = this.#streams.get(key(stream))
      if (found === undefined) throw new Error(`stream ${simulator}/${stream} was not declared`)
      return found
    }
    return {
      declare: (stream, label, plannedItems) => {
        const existing = this.#streams.get(key(stream))
        if (existing !== undefined) {
          existing.plannedItems += plannedItems
          existing.done = false
          this.#emit(existing)
          return
        }
        const created: StreamProgress = {
          simulator, stream, label, plannedItems, sentItems: 0, requests: 0, done: false, ...ZERO_COUNTS
        }
        this.#streams.set(key(stream), created)
        this.#emit(created)
      },
      record: (stream, items, counts) => {
        const found = entry(stream)
        Object.assign(found, addCounts(found, counts))
        found.sentItems += items
        found.requests++
        this.#emit(found)
      },
      finish: (stream) => {
        const found = entry(stream)
        found.done = true
        this.#emit(found)
      }
    }
  }

  /** Streams in the order they were declared. */
  streams(): StreamProgress[] {
    return [...this.#streams.values()].map((stream) => ({ ...stream }))
  }

  totals(): OutcomeCounts & { plannedItems: number, sentItems: number, requests: number } {
    let counts: OutcomeCounts = { ...ZERO_COUNTS }
    let plannedItems = 0
    let sentItems = 0
    let requests = 0
    for (const stream of this.#streams.values()) {
      counts = addCounts(counts, stream)
      plannedItems += stream.plannedItems
      sentItems += stream.sentItems
      requests += stream.requests
    }
    return { ...counts, plannedItems, sentItems, requests }
  }

  /** Returns an unsubscribe function. */
  onChange(listener: (stream: StreamProgress) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #emit(stream: StreamProgress): void {
    for (const listener of this.#listeners) listener({ ...stream })
  }
}
