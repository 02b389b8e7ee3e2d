/** What the token refresh benchmark's parent and its nodes (node.ts) say to each other. */

export const ARM_IDS = ['redis', 'postgres-only', 'single-process'] as const
export type ArmId = (typeof ARM_IDS)[number]
/** Nothing listens on port 1: connecting is refused at once, as when the Redis host is up but Redis is not. */
export const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1'

export interface LockCounts {
  /** tryLock answers: taken, held by another owner, or threw (Redis unreachable). */
  taken: number
  busy: number
  down: number
}

export interface ConnectionOutcome {
  id: string
  /** ms from the call to its resolution, one per attempt. */
  waitsMs: number[]
  /** The access token each attempt resolved with (undefined where it threw) and the errors. */
  tokens: Array<string | undefined>
  errors: string[]
  /** Whether this process spent the refresh token (the refresher was called here). */
  refreshedHere: boolean
}

export interface FireReply {
  type: 'fired'
  node: string
  /** How late the first attempt started after atMs (timer granularity, a busy loop). */
  startLagMs: number
  outcomes: ConnectionOutcome[]
  /** Each call to WHOOP's token endpoint made by this node, ms (fetch round trip and parsing; an added delay not included). */
  refreshCallsMs: number[]
  lock: LockCounts
  /** Each statement sent to PostgreSQL during the round (leases, polls, reloads, commits), ms, pool wait included. */
  statementsMs: number[]
  /** Each tryLock call, ms (until it answered or threw). */
  lockCallsMs: number[]
}
