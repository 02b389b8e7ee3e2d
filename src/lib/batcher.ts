/**
 * Coalesces concurrent single writes into multi-row writes (group commit). The first write of an idle batcher
 * goes out at once, so a quiet system sees no added latency; writes arriving while batches are in flight wait
 * for the next one. Under load this turns N commits into N / batch size, which is what bounds intake on a small
 * PostgreSQL: one fsync per commit.
 */
export interface Batcher<In, Out> {
  submit(item: In): Promise<Out>
}

export interface BatcherOptions {
  /** Items per write. */
  maxBatch: number
  /** Writes in flight at once; more lets a slow commit not stall everyone, fewer makes batches bigger. */
  maxInFlight: number
}

/** `write` returns one result per item, in order; if it throws, every item of that batch gets the error. */
export function createBatcher<In, Out>(write: (items: In[]) => Promise<Out[]>, options: BatcherOptions): Batcher<In, Out> {
  interface Waiting { item: In, resolve: (out: Out) => void, reject: (error: unknown) => void }
  let queue: Waiting[] = []
  let inFlight = 0

  const drain = (): void => {
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.slice(0, options.maxBatch)
      queue = queue.slice(batch.length)
      inFlight++
      write(batch.map((waiting) => waiting.item))
        .then((results) => {
          batch.forEach((waiting, i) => { waiting.resolve(results[i]!) })
        }, (error: unknown) => {
          for (const waiting of batch) waiting.reject(error)
        })
        .finally(() => {
          inFlight--
          drain()
        })
    }
  }

  return {
    submit(item) {
      return new Promise<Out>((resolve, reject) => {
        queue.push({ item, resolve, reject })
        drain()
      })
    }
  }
}
