import { randomUUID } from 'node:crypto'
import { createLocalBudget, type RateWindow, type RequestBudget } from '../providers/client/rate-budget.ts'

/**
 * What nodes of one deployment agree on beyond the database: short locks and the provider apps' request budgets.
 * Redis (`REDIS_URL`) makes them span every node; the in-process adapter serves a single node. Neither is what
 * correctness rests on: a lock here only spares the database contention (the fence is the token row's version),
 * and a budget refused by the provider still ends in a 429 that the receipt retries.
 */
export interface Coordination {
  readonly kind: 'redis' | 'memory'
  /**
   * Takes `name` for `ttlMs`: the owner token, or undefined while another owner holds it. Throws when the lock
   * service cannot answer (Redis down); callers then fall back to the database.
   */
  tryLock(name: string, ttlMs: number): Promise<string | undefined>
  /** Releases `name` if `owner` still holds it (a lock that expired and was taken again is left alone). */
  unlock(name: string, owner: string): Promise<void>
  /** The budget named `name` (one per provider app), shared by every node of this coordination. */
  budget(name: string, windows: readonly RateWindow[]): RequestBudget
  close(): Promise<void>
}

/** Locks and budgets of this process only: correct for one node (the embedded mode). */
export function createMemoryCoordination(now: () => number): Coordination {
  const locks = new Map<string, { owner: string, untilMs: number }>()
  const budgets = new Map<string, RequestBudget>()
  return {
    kind: 'memory',
    tryLock(name, ttlMs) {
      const held = locks.get(name)
      if (held !== undefined && held.untilMs > now()) return Promise.resolve(undefined)
      const owner = randomUUID()
      locks.set(name, { owner, untilMs: now() + ttlMs })
      return Promise.resolve(owner)
    },
    unlock(name, owner) {
      if (locks.get(name)?.owner === owner) locks.delete(name)
      return Promise.resolve()
    },
    budget(name, windows) {
      let budget = budgets.get(name)
      if (budget === undefined) {
        budget = createLocalBudget(windows, now)
        budgets.set(name, budget)
      }
      return budget
    },
    async close() {}
  }
}
