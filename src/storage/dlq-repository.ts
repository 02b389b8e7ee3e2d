import type { Queryable } from './database.ts'

export interface DeadLetter {
  id: string
  originalTopic: string
  messageKey: string | null
  payload: string
  headers: Record<string, string>
  errorMessage: string
  retryCount: number
  failedAt: Date
  replayedAt: Date | null
  dlqPublished: boolean
}

interface DeadLetterRow {
  id: string
  original_topic: string
  message_key: string | null
  payload: string
  headers: Record<string, string> | string
  error_message: string
  retry_count: number
  failed_at: Date
  replayed_at: Date | null
  dlq_published: boolean
}

const COLUMNS = `id::text AS id, original_topic, message_key, payload, headers, error_message, retry_count,
  failed_at, replayed_at, dlq_published`

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    originalTopic: row.original_topic,
    messageKey: row.message_key,
    payload: row.payload,
    headers: typeof row.headers === 'string' ? JSON.parse(row.headers) as Record<string, string> : row.headers,
    errorMessage: row.error_message,
    retryCount: Number(row.retry_count),
    failedAt: row.failed_at,
    replayedAt: row.replayed_at,
    dlqPublished: row.dlq_published
  }
}

export interface NewDeadLetter {
  outboxId: string
  originalTopic: string
  messageKey: string
  payload: string
  headers: Record<string, string>
  errorMessage: string
  retryCount: number
  dlqPublished: boolean
}

/** Records a dead letter and retires its outbox row, in one transaction of the caller. */
export async function insertDeadLetter(tx: Queryable, letter: NewDeadLetter): Promise<string> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO kafka_dlq (outbox_id, original_topic, message_key, payload, headers, error_message, retry_count, dlq_published)
     VALUES ($1::bigint, $2, $3, $4, $5::jsonb, $6, $7, $8) RETURNING id::text AS id`,
    [letter.outboxId, letter.originalTopic, letter.messageKey, letter.payload, JSON.stringify(letter.headers),
      letter.errorMessage.slice(0, 1000), letter.retryCount, letter.dlqPublished])
  await tx.query('UPDATE outbox SET dead_lettered_at = now(), last_error = $2 WHERE id = $1::bigint', [letter.outboxId, letter.errorMessage.slice(0, 500)])
  return rows[0]!.id
}

export interface DeadLetterFilter {
  ids?: readonly string[] | undefined
  sinceMs?: number | undefined
  untilMs?: number | undefined
  /** Only letters not replayed yet. */
  pendingOnly?: boolean | undefined
  limit: number
}

export async function listDeadLetters(db: Queryable, filter: DeadLetterFilter): Promise<DeadLetter[]> {
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString())
  const { rows } = await db.query<DeadLetterRow>(
    `SELECT ${COLUMNS} FROM kafka_dlq
     WHERE ($1::json IS NULL OR id IN (SELECT json_array_elements_text($1::json)::bigint))
       AND ($2::timestamptz IS NULL OR failed_at >= $2)
       AND ($3::timestamptz IS NULL OR failed_at < $3)
       AND (NOT $4::boolean OR replayed_at IS NULL)
     ORDER BY kafka_dlq.id LIMIT $5`,
    [filter.ids === undefined ? null : JSON.stringify(filter.ids), iso(filter.sinceMs), iso(filter.untilMs),
      filter.pendingOnly ?? false, filter.limit])
  return rows.map(toDeadLetter)
}

export async function markReplayed(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE kafka_dlq SET replayed_at = now() WHERE id = $1::bigint', [id])
}
