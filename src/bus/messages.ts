import type { BusMessage } from './publisher.ts'

/**
 * Builds the Kafka message of an outbox payload (design §6): key = user_id (per-user order), value = the event
 * JSON exactly as committed, headers event_id, schema_version, source, content-type. Returns undefined when the
 * payload is not an event (a serialization fault: it is dead-lettered, never guessed at).
 */
export function eventMessage(topic: string, userId: string, payload: string): BusMessage | undefined {
  let event: unknown
  try {
    event = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (typeof event !== 'object' || event === null) return undefined
  const { event_id: eventId, schema_version: schemaVersion, source } = event as Record<string, unknown>
  if (typeof eventId !== 'string' || typeof schemaVersion !== 'number' || typeof source !== 'string') return undefined
  return {
    topic,
    key: userId,
    value: payload,
    headers: { event_id: eventId, schema_version: String(schemaVersion), source, 'content-type': 'application/json' }
  }
}

/** The dead-letter copy of a message: the original value and key, the original headers plus why it failed. */
export function deadLetterMessage(
  dlqTopic: string, original: BusMessage, errorMessage: string, retryCount: number, failedAt: Date
): BusMessage {
  return {
    topic: dlqTopic,
    key: original.key,
    value: original.value,
    headers: {
      ...original.headers,
      original_topic: original.topic,
      error_message: errorMessage,
      failed_at: failedAt.toISOString(),
      retry_count: String(retryCount)
    }
  }
}
