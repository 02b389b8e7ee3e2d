import type { Config } from '../config/load.ts'
import { auditFor } from './admin-commands.ts'
import { migrate } from '../storage/migrate.ts'
import { openDatabase } from '../storage/open.ts'
import { listDeadReceipts, replayDeadReceipts } from '../storage/receipts-repository.ts'

type Print = (text: string) => void

export type ReceiptsCommand =
  | { action: 'list', limit: number }
  | { action: 'replay', ids: string[] | undefined }

/**
 * Dead-lettered webhook receipts: list them, or put them back to work. A replayed receipt gets a fresh attempt
 * budget and is picked up by the running bridge's workers within a poll interval.
 */
export async function runReceipts(config: Config, command: ReceiptsCommand, print: Print): Promise<number> {
  const db = await openDatabase(config)
  try {
    await migrate(db)
    if (command.action === 'list') {
      const dead = await listDeadReceipts(db, command.limit)
      if (dead.length === 0) print('no dead-lettered receipts')
      for (const receipt of dead) {
        print([
          receipt.id.padStart(8),
          receipt.receivedAt.toISOString(),
          receipt.provider,
          `${receipt.eventType}/${receipt.dataType}`,
          `attempts=${receipt.attempts}`,
          `error=${receipt.lastErrorCode ?? '-'}`
        ].join('  '))
      }
      return 0
    }
    const replayed = await replayDeadReceipts(db, command.ids)
    await auditFor(config)(db, { principal: 'cli', action: 'receipts.replay', detail: { receipts: replayed, all: command.ids === undefined } })
    print(`${replayed} receipt${replayed === 1 ? '' : 's'} put back to work`)
    return command.ids !== undefined && replayed < command.ids.length ? 1 : 0
  } finally {
    await db.close()
  }
}
