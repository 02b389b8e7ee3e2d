/**
 * The whole test suite, as `npm test` runs it: every test file with line coverage of src/ (failing below
 * 85 %), then the PHI scan over everything the suite logged. Unit tests need nothing; integration tests use
 * TEST_DATABASE_URL (and later Redis and Kafka) and skip loudly when those are absent, unless CI=true.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const logDir = join(root, '.cache', 'test-logs')
rmSync(logDir, { recursive: true, force: true })
mkdirSync(logDir, { recursive: true })
const env = { ...process.env, TEST_LOG_DIR: logDir }
const extraArgs = process.argv.slice(2)

const suite = spawnSync(process.execPath, [
  '--test',
  '--test-concurrency=2',
  '--experimental-test-coverage',
  '--test-coverage-include=src/**/*.ts',
  '--test-coverage-lines=85',
  '--test-reporter=spec',
  ...extraArgs,
  'test/**/*.test.ts'
], { cwd: root, env, stdio: 'inherit' })

const scan = spawnSync(process.execPath, ['--test', '--test-reporter=spec', 'test/phi/log-scan.posttest.ts'], { cwd: root, env, stdio: 'inherit' })

process.exitCode = suite.status !== 0 ? (suite.status ?? 1) : (scan.status ?? 1)
