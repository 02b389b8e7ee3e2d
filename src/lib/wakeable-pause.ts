export interface WakeablePause {
  /** Waits `ms`, or less if woken meanwhile; returns at once if woken since the last pause. */
  pause(ms: number): Promise<void>
  /** Ends the current pause, or makes the next one return at once: a wake is never lost. */
  wake(): void
}

/**
 * The idle wait of a polling loop that work arriving on this node (a commit, a receipt) cuts short. A plain
 * timer and resolver rather than an aborted sleep: aborting builds an AbortError with a stack trace, and a busy
 * node wakes its loops for nearly every notification.
 */
export function createWakeablePause(): WakeablePause {
  let endPause: (() => void) | undefined
  let woken = false
  return {
    pause(ms) {
      if (woken) {
        woken = false
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => {
        const end = (): void => {
          clearTimeout(timer)
          endPause = undefined
          woken = false
          resolve()
        }
        const timer = setTimeout(end, ms)
        endPause = end
      })
    },
    wake() {
      if (endPause !== undefined) endPause()
      else woken = true
    }
  }
}
