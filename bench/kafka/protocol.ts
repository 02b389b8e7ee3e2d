/** Commands and replies between bench/kafka/run.ts and its node children (bench/kafka/node.ts). */

/** Commands of the parent. */
export type Command =
  | { type: 'start-relay' }
  | { type: 'prepare', databaseUrl: string }
  | { type: 'go' }
  /** Builds the uploads of a fixed-rate load (untimed); replies `load-prepared`. */
  | { type: 'prepare-load', intervalMs: number, perTick: number, warmupTicks: number, ticks: number, users: number, notify: boolean }
  /** Runs the prepared load; replies with a LoadReport. */
  | { type: 'run-load' }
  | { type: 'profile-start' }
  | { type: 'profile-stop', file: string }
  | { type: 'stop' }

/** One measured tick of a `load`: the events' ids and when their commit (or send) started and finished. */
export interface TickRecord {
  ids: string[]
  scheduledMs: number
  startMs: number
  doneMs: number
}

export interface LoadReport {
  type: 'load-done'
  records: TickRecord[]
  /** How late ticks started against their absolute schedule (event-loop delay), ms. */
  maxStartLagMs: number
  ticksStartedOver5MsLate: number
  /** Most ticks in flight at once (commits or sends still running when later ticks came due). */
  maxConcurrentTicks: number
}

/** CLOCK_MONOTONIC in milliseconds: the same clock in every process of the machine. */
export const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6
