import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import pino from 'pino'
import { createApp, type App, type AppOptions } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/lib/logger.ts'
import { CANARY, TEST_LOG_DIR, recordCanary } from './canaries.ts'
import { databaseTarget, deferCleanup, redisKeyPrefix, type AdapterName } from './services.ts'

export interface TestApp {
  app: App
  adminHeaders: Record<string, string>
  /** Issues a device token for a user through the admin API and returns upload headers. */
  deviceHeaders(userId: string): Promise<Record<string, string>>
}

let logStream: pino.DestinationStream | undefined

/** Every app built by tests logs at debug level into the run's log directory, for the PHI scan. */
function testLogStream(): pino.DestinationStream {
  if (logStream === undefined) {
    mkdirSync(TEST_LOG_DIR, { recursive: true })
    // Synchronous writes: test processes exit as soon as their tests end, and the PHI scan must see every line.
    logStream = pino.destination({ dest: join(TEST_LOG_DIR, `app-${process.pid}.log`), sync: true, append: true, mkdir: true })
  }
  return logStream
}

export const BASE_TEST_ENV: Record<string, string> = {
  ADMIN_API_TOKEN: CANARY.adminToken,
  LOG_PSEUDONYM_KEY: CANARY.pseudonymKey,
  TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey,
  LOG_LEVEL: 'debug',
  LOG_FORMAT: 'json',
  PORT: '0'
}

/** Builds the real app on the given storage adapter; stopped after the test. Undefined when skipped. */
export async function buildTestApp(
  t: TestContext, adapter: AdapterName, env: Record<string, string> = {}, options: Pick<AppOptions, 'providerTuning' | 'now'> = {}
): Promise<TestApp | undefined> {
  const target = await databaseTarget(t, adapter)
  if (target === undefined) return undefined
  const config = loadConfig({ ...BASE_TEST_ENV, ...target.env, ...env })
  const logger = createLogger({ level: 'debug', format: 'json', destination: testLogStream() })
  // Tests share one Redis: each app keeps its keys under its own prefix.
  const app = await createApp(config, config.redisUrl === undefined
    ? { ...options, logger }
    : { ...options, logger, cacheKeyPrefix: redisKeyPrefix(t, config.redisUrl) })
  deferCleanup(t, () => app.stop())
  const adminHeaders = { authorization: `Bearer ${CANARY.adminToken}` }
  return {
    app,
    adminHeaders,
    async deviceHeaders(userId) {
      const response = await app.http.inject({ method: 'POST', url: `/v1/users/${encodeURIComponent(userId)}/devices`, headers: adminHeaders })
      if (response.statusCode !== 201) throw new Error(`device creation failed: ${response.statusCode}`)
      const { token } = response.json<{ token: string }>()
      recordCanary(token)
      return { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    }
  }
}
