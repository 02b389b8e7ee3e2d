import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { OURA_OLD_SECRET, OURA_TEST_SECRET, OURA_VERIFICATION_TOKEN as OURA_FIXTURE_VERIFICATION_TOKEN } from '../fixtures/oura/webhook.ts'
import { WHOOP_OLD_SECRET, WHOOP_TEST_SECRET } from '../fixtures/whoop/webhook.ts'

/**
 * Canary values: secrets and identifiers seeded through the test suite. test/phi/log-scan.posttest.ts fails if
 * any of them (raw or encoded) shows up in what the bridge logged during the run, or in any other output a test
 * handed over with captureForScan (error bodies, metrics, Kafka keys and headers).
 */
export const CANARY = {
  userId: 'canary.patient@example.com',
  otherUserId: 'canary-user-2f9d41',
  adminToken: 'canary-admin-token-3b0c1f0e9d8a7b6c5d4e3f2a1b0c9d8e',
  pseudonymKey: 'canary-pseudonym-key-0a1b2c3d4e5f60718293a4b5c6d7e8f9',
  /** kid:base64 of 32 bytes */
  encryptionKey: `k1:${Buffer.from('canary-encryption-key-32-bytes!!').toString('base64')}`,
  /** Client secrets of the simulated provider apps (test/helpers/oura.ts, whoop.ts); they also key webhook signatures. */
  ouraClientSecret: 'canary-oura-client-secret-5f0e2d7c9a',
  whoopClientSecret: 'canary-whoop-client-secret-81b4c3e6d0',
  ouraVerificationToken: 'canary-oura-verification-token-3c9a7e'
} as const

/** Webhook secrets and verification tokens of the provider fixtures, scanned for like the CANARY values. */
const FIXTURE_SECRETS = [OURA_TEST_SECRET, OURA_OLD_SECRET, OURA_FIXTURE_VERIFICATION_TOKEN, WHOOP_TEST_SECRET, WHOOP_OLD_SECRET]

/** Where logs and issued tokens of this test run are collected (scripts/run-tests.ts sets it). */
export const TEST_LOG_DIR = process.env.TEST_LOG_DIR ?? join(process.cwd(), '.cache', 'test-logs')

const ISSUED_FILE = 'canaries.txt'

/**
 * Records a secret issued during the tests (device tokens, API keys, OAuth tokens minted by the provider
 * simulators, provider user ids) so the scan looks for it too.
 */
export function recordCanary(value: string): void {
  mkdirSync(TEST_LOG_DIR, { recursive: true })
  appendFileSync(join(TEST_LOG_DIR, ISSUED_FILE), `${value}\n`)
}

/** Canaries recorded during the run (recordCanary), in order. */
export function issuedCanaries(): string[] {
  const file = join(TEST_LOG_DIR, ISSUED_FILE)
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line !== '') : []
}

/** Every value the scan must not find: the fixed canaries, the raw encryption key and whatever was issued. */
export function allCanaries(): string[] {
  return [...new Set([...Object.values(CANARY), CANARY.encryptionKey.split(':')[1]!, ...FIXTURE_SECRETS, ...issuedCanaries()])]
}

/** The forms a leaked value takes in text: raw, URL-encoded, base64, base64url and hex. */
export function canaryForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8')
  return [...new Set([value, encodeURIComponent(value), bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')])]
}

/** Suffix of files handed to the post-suite scan besides logs. */
export const SCAN_SUFFIX = '.scan'

/**
 * Hands output other than logs to the post-suite canary scan (test/phi/log-scan.posttest.ts): HTTP error bodies,
 * the /metrics exposition, Kafka keys and headers. Appends to `<name>-<pid>.scan` in the run's log directory;
 * `name` says what it is, so the scan can insist that each kind was captured.
 */
export function captureForScan(name: string, text: string): void {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`capture name must be lower-case words: ${name}`)
  mkdirSync(TEST_LOG_DIR, { recursive: true })
  appendFileSync(join(TEST_LOG_DIR, `${name}-${process.pid}${SCAN_SUFFIX}`), `${text}\n`)
}
