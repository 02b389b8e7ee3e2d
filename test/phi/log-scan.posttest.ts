import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { SCAN_SUFFIX, TEST_LOG_DIR, allCanaries, canaryForms, issuedCanaries } from '../helpers/canaries.ts'

/**
 * Runs after the whole suite (scripts/run-tests.ts): every log line the bridge wrote during the run — app logs
 * at debug level, CLI and server subprocess output — and every other output a test captured for the scan (HTTP
 * error bodies, the /metrics exposition, Kafka keys and headers) must be free of the canaries seeded through the
 * tests: raw user ids, the admin token, keys, provider secrets, and every device token, API key and provider
 * OAuth token issued.
 */
interface Output {
  name: string
  text: string
}

function read(suffix: string): Output[] {
  return readdirSync(TEST_LOG_DIR).filter((name) => name.endsWith(suffix)).map((name) => ({ name, text: readFileSync(join(TEST_LOG_DIR, name), 'utf8') }))
}

function assertNoCanary(outputs: readonly Output[]): void {
  const forms = [...new Set(allCanaries().flatMap(canaryForms))]
  for (const output of outputs) {
    const leaked = forms.find((form) => output.text.includes(form))
    // The message names the file, never the value: this output is itself a log.
    assert.equal(leaked, undefined, `a canary leaked into ${output.name}`)
  }
}

test('no canary (user id, token, secret) appears in any log of the test run, raw or encoded', () => {
  assert.ok(existsSync(TEST_LOG_DIR), `no logs collected in ${TEST_LOG_DIR}`)
  const logs = read('.log')
  const lineCount = logs.reduce((sum, log) => sum + log.text.split('\n').length, 0)
  // The scan is only meaningful if the suite actually logged: requests, uploads and failures.
  assert.ok(lineCount > 200, `expected a substantial log to scan, found ${lineCount} lines`)
  assert.ok(logs.some((log) => log.text.includes('healthkit upload stored')), 'upload logs were captured')
  assert.ok(issuedCanaries().length > 5, 'device tokens and API keys issued during the run were recorded')
  assertNoCanary(logs)
})

test('no canary appears in HTTP error bodies, metric labels or Kafka keys and headers the tests captured', () => {
  const captured = read(SCAN_SUFFIX)
  const kinds = new Set(captured.map((output) => output.name.replace(/-\d+\.scan$/, '')))
  // Captured by test/http/auth-isolation.int.test.ts; Kafka only where a broker ran (required with CI=true).
  for (const kind of ['http-error-bodies', 'metrics']) assert.ok(kinds.has(kind), `nothing captured as ${kind}`)
  if (process.env.CI === 'true') assert.ok(kinds.has('kafka-keys-headers'), 'nothing captured as kafka-keys-headers')
  assert.ok(captured.every((output) => output.text.length > 0))
  assertNoCanary(captured)
})
