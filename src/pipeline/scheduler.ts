import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../lib/logger.ts'
import { describeError } from '../lib/logger.ts'
import type { Database } from '../storage/database.ts'

export interface ScheduledJob {
  /** Row name in scheduled_jobs; one run per period across all nodes. */
  name: string
  intervalMs: number
  run: () => Promise<void>
}

export interface Scheduler {
  start(): void
  stop(): Promise<void>
}

/** How often a node checks whether a job is due. Jobs run at most this much late. */
const DEFAULT_TICK_MS = 30_000
const STOP_WAIT_MS = 2_000

/**
 * Runs periodic jobs (reconciliation, subscription renewal) on exactly one node per period. The node whose
 * UPDATE moves `next_run_at` forward runs the job; the others see the row not yet due. No lease to renew: a node
 * that dies mid-run costs that one run, and the next period runs elsewhere.
 */
export function createScheduler(options: { db: Database, logger: Logger, holder: string, jobs: readonly ScheduledJob[], tickMs?: number }): Scheduler {
  const { db, logger, jobs } = options
  const tickMs = Math.min(options.tickMs ?? DEFAULT_TICK_MS, ...jobs.map((job) => job.intervalMs))
  let running = false
  let loop: Promise<void> | undefined
  const stopper = new AbortController()

  const claim = async (job: ScheduledJob): Promise<boolean> => {
    const { rowCount } = await db.query(
      `UPDATE scheduled_jobs SET next_run_at = now() + $2 * interval '1 millisecond', last_holder = $3, last_run_at = now()
       WHERE name = $1 AND next_run_at <= now()`, [job.name, job.intervalMs, options.holder])
    return rowCount === 1
  }

  const run = async (): Promise<void> => {
    for (const job of jobs) {
      await db.query('INSERT INTO scheduled_jobs (name) VALUES ($1) ON CONFLICT DO NOTHING', [job.name])
        .catch((error: unknown) => { logger.warn({ job: job.name, err: describeError(error) }, 'could not register a scheduled job') })
    }
    while (running) {
      for (const job of jobs) {
        if (!running) break
        try {
          if (await claim(job)) await job.run()
        } catch (error) {
          logger.warn({ job: job.name, err: describeError(error) }, 'scheduled job failed; it runs again next period')
        }
      }
      await sleep(tickMs, undefined, { signal: stopper.signal }).catch(() => {})
    }
  }

  return {
    start() {
      if (running || jobs.length === 0) return
      running = true
      loop = run()
    },
    async stop() {
      running = false
      stopper.abort()
      // A job in progress (e.g. a slow provider call) is not waited for beyond this: every job is idempotent and
      // runs again next period, and a stop must not hang on a provider.
      await Promise.race([loop, sleep(STOP_WAIT_MS, undefined, { ref: false })])
    }
  }
}
