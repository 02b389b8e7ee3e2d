import type { Config } from '../config/load.ts'
import { listDeadLetters, markReplayed, type DeadLetterFilter } from '../storage/dlq-repository.ts'
import { migrate } from '../storage/migrate.ts'
import { openDatabase } from '../storage/open.ts'

type Print = (text: string) => void

export type DlqCommand =
  | { action: 'list', filter: DeadLetterFilter }
  | { action: 'replay', filter: DeadLetterFilter }

/**
 * Lists or re-publishes dead letters. Replay sends the original value, key and headers to the original topic
 * and marks the letter replayed; a letter that fails again stays unreplayed and the command exits 1.
 */
export async function runDlq(config: Config, command: DlqCommand, print: Print): Promise<number> {
  const db = await openDatabase(config)
  try {
    await migrate(db)
    const letters = await listDeadLetters(db, command.filter)
    if (command.action === 'list') {
      if (letters.length === 0) print('no dead letters match')
      for (const letter of letters) {
        print([
          letter.id.padStart(6),
          letter.failedAt.toISOString(),
          letter.replayedAt === null ? 'pending ' : 'replayed',
          `topic=${letter.originalTopic}`,
          `event_id=${letter.headers.event_id ?? '-'}`,
          `retries=${letter.retryCount}`,
          `error="${letter.errorMessage}"`
        ].join('  '))
      }
      return 0
    }
    if (config.kafkaBrokers.length === 0) {
      print('KAFKA_BROKERS is not set: nothing to replay to')
      return 1
    }
    const { createKafkaPublisher } = await import('../bus/kafka.ts')
    const publisher = createKafkaPublisher({ brokers: config.kafkaBrokers, clientId: 'bridge-dlq-replay', requestTimeoutMs: 5000, retries: 3 })
    let failed = 0
    try {
      for (const letter of letters) {
        try {
          await publisher.send([{ topic: letter.originalTopic, key: letter.messageKey ?? '', value: letter.payload, headers: letter.headers }])
          await markReplayed(db, letter.id)
          print(`replayed ${letter.id} to ${letter.originalTopic}`)
        } catch (error) {
          failed++
          print(`failed ${letter.id}: ${error instanceof Error ? error.message : 'unknown error'}`)
        }
      }
    } finally {
      await publisher.close()
    }
    print(`${letters.length - failed} replayed, ${failed} failed`)
    return failed === 0 ? 0 : 1
  } finally {
    await db.close()
  }
}
