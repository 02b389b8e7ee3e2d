/**
 * A counting semaphore that reports what it does: tasks holding a permit, and how long each waited for one.
 * FIFO, so a burst cannot starve the receipt that waited longest.
 */
export interface Semaphore {
  /** Resolves with a release function once a permit is free; call it exactly once. */
  acquire(): Promise<() => void>
  readonly active: number
  readonly waiting: number
  readonly available: number
}

export interface SemaphoreObserver {
  /** Seconds between asking for a permit and getting it. */
  waited(seconds: number): void
  activeChanged(active: number): void
}

export function createSemaphore(permits: number, observer: SemaphoreObserver, nowMs: () => number = performance.now.bind(performance)): Semaphore {
  let active = 0
  const queue: Array<() => void> = []

  const grant = (askedAtMs: number): (() => void) => {
    active++
    observer.activeChanged(active)
    observer.waited((nowMs() - askedAtMs) / 1000)
    let released = false
    return () => {
      if (released) return
      released = true
      active--
      observer.activeChanged(active)
      queue.shift()?.()
    }
  }

  return {
    acquire() {
      const askedAtMs = nowMs()
      if (active < permits && queue.length === 0) return Promise.resolve(grant(askedAtMs))
      return new Promise((resolve) => queue.push(() => { resolve(grant(askedAtMs)) }))
    },
    get active() { return active },
    get waiting() { return queue.length },
    get available() { return Math.max(0, permits - active) }
  }
}
