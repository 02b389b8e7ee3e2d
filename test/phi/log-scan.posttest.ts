import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { CANARY, TEST_LOG_DIR } from '../helpers/canaries.ts'

/**
 * Runs after the whole suite (scripts/run-tests.ts): every log line the bridge wrote during the run — app logs
 * at debug level, CLI and server subprocess output — must be free of the canaries seeded through the tests:
 * raw user ids, the admin token, keys, and every device token and API key issued.
 */
function encodings(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8')
  return [value, encodeURIComponent(value), bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')]
}

test('no canary (user id, token, secret) appears in any log of the test run, raw or encoded', () => {
  assert.ok(existsSync(TEST_LOG_DIR), `no logs collected in ${TEST_LOG_DIR}`)
  const files = readdirSync(TEST_LOG_DIR).filter((name) => name.endsWith('.log'))
  const logs = files.map((name) => ({ name, text: readFileSync(join(TEST_LOG_DIR, name), 'utf8') }))
  const lineCount = logs.reduce((sum, log) => sum + log.text.split('\n').length, 0)
  // The scan is only meaningful if the suite actually logged: requests, uploads and failures.
  assert.ok(lineCount > 200, `expected a substantial log to scan, found ${lineCount} lines`)
  assert.ok(logs.some((log) => log.text.includes('healthkit upload stored')), 'upload logs were captured')

  const issuedFile = join(TEST_LOG_DIR, 'canaries.txt')
  const issued = existsSync(issuedFile) ? readFileSync(issuedFile, 'utf8').split('\n').filter((line) => line !== '') : []
  assert.ok(issued.length > 5, 'device tokens and API keys issued during the run were recorded')
  const canaries = [...Object.values(CANARY), ...issued, CANARY.encryptionKey.split(':')[1]!]
  for (const canary of canaries) {
    for (const form of encodings(canary)) {
      for (const log of logs) {
        assert.ok(!log.text.includes(form), `a canary leaked into ${log.name}`)
      }
    }
  }
})
