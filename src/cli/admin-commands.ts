import { createApiKey, createDevice, revokeApiKey } from '../auth/credentials-repository.ts'
import type { Scope } from '../auth/principals.ts'
import { createAudit } from '../auth/audit.ts'
import { createPseudonymizer } from '../auth/secrets.ts'
import { resolveSecrets } from '../config/dev-keys.ts'
import type { Config } from '../config/load.ts'
import { createMetrics } from '../metrics/registry.ts'
import type { Database } from '../storage/database.ts'
import { migrate } from '../storage/migrate.ts'
import { openDatabase } from '../storage/open.ts'

type Print = (text: string) => void

async function withDatabase<T>(config: Config, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config)
  try {
    await migrate(db)
    return await work(db)
  } finally {
    await db.close()
  }
}

/** The audit writer of a CLI command: principal `cli`, subjects pseudonymized with the configured key. */
export function auditFor(config: Config) {
  return createAudit(createPseudonymizer(resolveSecrets(config).logPseudonymKey), createMetrics())
}

export async function runMigrate(config: Config, print: Print): Promise<number> {
  const db = await openDatabase(config)
  try {
    const applied = await migrate(db)
    print(applied.length === 0 ? 'database is up to date' : `applied migrations: ${applied.join(', ')}`)
    return 0
  } finally {
    await db.close()
  }
}

export type ApiKeysCommand = { action: 'create', name: string, scopes: Scope[] } | { action: 'revoke', id: string }

export async function runApiKeys(config: Config, command: ApiKeysCommand, print: Print): Promise<number> {
  const audit = auditFor(config)
  return withDatabase(config, async (db) => {
    if (command.action === 'create') {
      const key = await createApiKey(db, command.name, command.scopes)
      await audit(db, { principal: 'cli', action: 'api_key.create', detail: { key_id: key.id, scopes: command.scopes.join(' ') } })
      print(`id:    ${key.id}\ntoken: ${key.token}\nscopes: ${command.scopes.join(', ')}\nThe token is shown once; store it now.`)
      return 0
    }
    const revoked = await revokeApiKey(db, command.id)
    if (!revoked) {
      print(`no active API key with id ${command.id}`)
      return 1
    }
    await audit(db, { principal: 'cli', action: 'api_key.revoke', detail: { key_id: command.id } })
    print(`revoked ${command.id}`)
    return 0
  })
}

export async function runDevices(config: Config, command: { userId: string, name: string | undefined }, print: Print): Promise<number> {
  const audit = auditFor(config)
  return withDatabase(config, async (db) => {
    const device = await createDevice(db, command.userId, command.name)
    await audit(db, { principal: 'cli', action: 'device.create', userId: command.userId, detail: { device_id: device.id } })
    print(`device_id: ${device.id}\ntoken:     ${device.token}\nThe token is shown once; configure it in the iOS app now.`)
    return 0
  })
}
