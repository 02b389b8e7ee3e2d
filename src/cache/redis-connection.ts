import type { Redis } from 'ioredis'

/** ioredis's rejection of a command unanswered within `commandTimeout`; stable across ioredis 5.x. */
const COMMAND_TIMEOUT_MESSAGE = 'Command timed out'

/**
 * A command went unanswered on a connection ioredis believes ready: the mark of a half-open connection (a peer
 * or a middlebox gone without a reset), which nothing would close for tens of minutes. The caller dials again.
 */
export function isUnansweredOnReadyConnection(client: Redis, error: unknown): boolean {
  return error instanceof Error && error.message === COMMAND_TIMEOUT_MESSAGE && client.status === 'ready'
}
