import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config, EncryptionKey } from './load.ts'

export interface ResolvedSecrets {
  tokenEncryptionKeys: EncryptionKey[]
  logPseudonymKey: string
  /** True when keys were generated for embedded mode (the operator should be told once). */
  generated: boolean
}

const DEV_KEYS_FILE = 'dev-keys.json'

/**
 * Embedded mode works without any configuration, so it makes its own token and pseudonym keys and keeps them
 * beside the embedded database (mode 0600). With DATABASE_URL the config loader already demanded real keys.
 */
export function resolveSecrets(config: Pick<Config, 'tokenEncryptionKeys' | 'logPseudonymKey' | 'dataDir'>): ResolvedSecrets {
  if (config.tokenEncryptionKeys !== undefined && config.logPseudonymKey !== undefined) {
    return { tokenEncryptionKeys: config.tokenEncryptionKeys, logPseudonymKey: config.logPseudonymKey, generated: false }
  }
  const fresh = { kid: 'dev1', key: randomBytes(32).toString('base64'), pseudonymKey: randomBytes(32).toString('base64url') }
  let stored = fresh
  if (config.dataDir !== 'memory://') {
    const file = join(config.dataDir, DEV_KEYS_FILE)
    if (existsSync(file)) {
      stored = JSON.parse(readFileSync(file, 'utf8')) as typeof fresh
    } else {
      mkdirSync(config.dataDir, { recursive: true })
      writeFileSync(file, JSON.stringify(fresh), { mode: 0o600 })
    }
  }
  return {
    tokenEncryptionKeys: config.tokenEncryptionKeys ?? [{ kid: stored.kid, key: Buffer.from(stored.key, 'base64') }],
    logPseudonymKey: config.logPseudonymKey ?? stored.pseudonymKey,
    generated: true
  }
}
