import { setTimeout as sleep } from 'node:timers/promises'

export interface WakeablePause {
  /** Waits `ms`, or less if woken meanwhile; returns at once if woken since the last pause. */
  pause(ms: number): Promise<void>
  /** Ends the current pause, or makes the next one return at once: a wake is never lost. */
  wake(): void
}

/** The idle wait of a polling loop that work arriving on this node (a commit, a receipt) cuts short. */
export function createWakeablePause(): WakeablePause {
  let cancel: (() => void) | undefined
  let woken = false
  return {
    async pause(ms) {
      if (woken) {
        woken = false
        return
      }
      const controller = new AbortController()
      cancel = () => controller.abort()
      await sleep(ms, undefined, { signal: controller.signal }).catch(() => {})
      cancel = undefined
      woken = false
    },
    wake() {
      if (cancel !== undefined) cancel()
      else woken = true
    }
  }
}
