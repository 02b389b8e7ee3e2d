import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { SETTINGS, SETTING_NAMES, type SettingDefinition } from '../../src/config/schema.ts'

// The variables of design §4, the configuration contract. Everything else in SETTINGS is an addition and
// must say so in the document.
const CONTRACT = [
  'PORT', 'HOST', 'PUBLIC_BASE_URL', 'DATABASE_URL', 'DATA_DIR', 'REDIS_URL', 'KAFKA_BROKERS', 'KAFKA_TOPIC',
  'KAFKA_DLQ_TOPIC', 'MAX_CONCURRENT_WEBHOOKS', 'MAX_RECEIPT_BACKLOG', 'MAX_RECEIPT_ATTEMPTS', 'REDIS_TTL_SECONDS',
  'MAX_TIMESERIES_ENTRIES', 'HEALTHKIT_ENABLED', 'HEALTHKIT_MAX_SAMPLES', 'OURA_CLIENT_ID', 'OURA_CLIENT_SECRET',
  'OURA_WEBHOOK_VERIFICATION_TOKEN', 'OURA_API_URL', 'OURA_AUTHORIZE_URL', 'WHOOP_CLIENT_ID', 'WHOOP_CLIENT_SECRET',
  'WHOOP_API_URL', 'BACKFILL_DAYS', 'WEBHOOK_TOLERANCE_SECONDS', 'TOKEN_ENCRYPTION_KEYS', 'LOG_PSEUDONYM_KEY',
  'CONNECT_SUCCESS_URL', 'ADMIN_API_TOKEN', 'LOG_LEVEL'
]
const ADDITION_MARK = '*(addition)*'
const SECRET_MARK = '**Secret.**'

interface Row {
  name: string
  defaultCell: string
  meaning: string
}

/** Every table row whose first cell is a backticked variable name: | `NAME` | default | meaning |. */
function documentedSettings(): Row[] {
  const text = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
  const rows: Row[] = []
  for (const line of text.split('\n')) {
    const match = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(line)
    if (match === null) continue
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim())
    assert.equal(cells.length, 3, `${match[1]}: expected 3 cells, got ${cells.length}`)
    rows.push({ name: match[1]!, defaultCell: cells[1]!, meaning: cells[2]! })
  }
  return rows
}

function definitionOf(name: string): SettingDefinition {
  assert.ok(Object.hasOwn(SETTINGS, name), `${name} is not in SETTINGS`)
  return SETTINGS[name as keyof typeof SETTINGS]
}

describe('docs/configuration.md', () => {
  const rows = documentedSettings()

  test('documents exactly the variables of SETTINGS', () => {
    const documented = rows.map((row) => row.name)
    const missing = SETTING_NAMES.filter((name) => !documented.includes(name))
    const stale = documented.filter((name) => !Object.hasOwn(SETTINGS, name))
    assert.deepEqual({ missing, stale }, { missing: [], stale: [] })
  })

  test('documents each variable once', () => {
    const names = rows.map((row) => row.name)
    assert.deepEqual(names.filter((name, index) => names.indexOf(name) !== index), [])
  })

  test('the schema holds every variable of the design contract', () => {
    for (const name of CONTRACT) assert.ok(Object.hasOwn(SETTINGS, name), name)
  })

  // Rule: a schema default is written as itself in backticks and nothing else; a variable without a schema
  // default is written `unset`, optionally followed by ` → ` and what happens then.
  for (const row of rows) {
    test(`${row.name}: the default column matches the schema`, () => {
      const { default: value } = definitionOf(row.name)
      if (value === undefined) {
        assert.match(row.defaultCell, /^unset(?: → .+)?$/)
      } else {
        assert.equal(row.defaultCell, `\`${value}\``)
      }
    })

    test(`${row.name}: marked secret exactly when the schema says so`, () => {
      assert.equal(row.meaning.startsWith(SECRET_MARK), definitionOf(row.name).secret === true)
      assert.equal(row.meaning.includes(SECRET_MARK), row.meaning.startsWith(SECRET_MARK))
    })

    test(`${row.name}: marked as an addition exactly when it is not in design §4`, () => {
      assert.equal(row.meaning.endsWith(ADDITION_MARK), !CONTRACT.includes(row.name))
      assert.equal(row.meaning.includes(ADDITION_MARK), row.meaning.endsWith(ADDITION_MARK))
    })

    test(`${row.name}: has a meaning`, () => {
      assert.ok(row.meaning.replace(SECRET_MARK, '').replace(ADDITION_MARK, '').trim().length >= 10)
    })
  }
})
