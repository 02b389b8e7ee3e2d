import { appendFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Canary values: secrets and identifiers seeded through the test suite. test/phi/log-scan.posttest.ts fails if
 * any of them (raw or encoded) shows up in what the bridge logged during the run.
 */
export const CANARY = {
  userId: 'canary.patient@example.com',
  otherUserId: 'canary-user-2f9d41',
  adminToken: 'canary-admin-token-3b0c1f0e9d8a7b6c5d4e3f2a1b0c9d8e',
  pseudonymKey: 'canary-pseudonym-key-0a1b2c3d4e5f60718293a4b5c6d7e8f9',
  /** kid:base64 of 32 bytes */
  encryptionKey: `k1:${Buffer.from('canary-encryption-key-32-bytes!!').toString('base64')}`
} as const

/** Where logs and issued tokens of this test run are collected (scripts/run-tests.ts sets it). */
export const TEST_LOG_DIR = process.env.TEST_LOG_DIR ?? join(process.cwd(), '.cache', 'test-logs')

/** Records a secret issued during the tests (device tokens, API keys) so the log scan looks for it too. */
export function recordCanary(value: string): void {
  mkdirSync(TEST_LOG_DIR, { recursive: true })
  appendFileSync(join(TEST_LOG_DIR, 'canaries.txt'), `${value}\n`)
}
