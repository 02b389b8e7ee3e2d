/** One message for the bus: the relay's unit of work. */
export interface BusMessage {
  topic: string
  key: string
  value: string
  headers: Record<string, string>
}

/**
 * The bus port. `send` resolves only when the broker acknowledged every message (acks=all); it rejects with
 * a classified failure otherwise.
 */
export interface Publisher {
  send: (messages: readonly BusMessage[]) => Promise<void>
  /** Makes sure the topics exist (creating them with the broker's defaults when missing). */
  ensureTopics: (topics: readonly string[]) => Promise<void>
  close: () => Promise<void>
}

/**
 * Why a send failed, as the relay needs to know it:
 * - `unavailable`: the broker cannot be reached or is not ready; nothing is wrong with the messages, so they
 *   wait (no attempt is counted, nothing is dead-lettered).
 * - `rejected`: the broker refused something in the batch itself (too large, invalid record); retrying the
 *   same bytes will fail again, so the culprit is isolated and dead-lettered.
 */
export type SendFailureKind = 'unavailable' | 'rejected'

export class SendFailure extends Error {
  readonly kind: SendFailureKind

  constructor(kind: SendFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SendFailure'
    this.kind = kind
  }
}
