import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import {
  BridgeError, ConfigError, ERROR_CODES, isBridgeError, toError, type ErrorCode
} from '../src/errors.ts'

const CODES = Object.keys(ERROR_CODES) as ErrorCode[]
// The `error_type` label values fixed by design §8.
const ERROR_TYPES = [
  'rate_limit_error', 'authentication_error', 'validation_error', 'duplicate_event', 'signature_error',
  'upstream_error', 'timeout_error', 'storage_error', 'publish_error'
]

interface DocumentedCode {
  code: string
  status: number
  retryable: boolean
  errorType: string
  section: string
}

/** Rows of the form | `BB_X` | status | yes/no | `error_type` | when | what to do |, with their section. */
function documentedCodes(): DocumentedCode[] {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
  const rows: DocumentedCode[] = []
  let section = ''
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) section = line.slice(3).trim()
    const match = /^\|\s*`(BB_[A-Z0-9_]+)`\s*\|/.exec(line)
    if (match === null) continue
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim())
    assert.equal(cells.length, 6, `${match[1]}: expected 6 cells, got ${cells.length}`)
    const [, status = '', retryable = '', errorType = ''] = cells
    assert.match(retryable, /^(yes|no)$/, `${match[1]}: retryable must be yes or no`)
    rows.push({
      code: match[1]!,
      status: Number(/^\d{3}/.exec(status)?.[0]),
      retryable: retryable === 'yes',
      errorType: errorType.replaceAll('`', ''),
      section
    })
  }
  return rows
}

describe('docs/errors.md', () => {
  const rows = documentedCodes()

  test('lists every code of ERROR_CODES and nothing else', () => {
    const documented = rows.map((row) => row.code)
    const missing = CODES.filter((code) => !documented.includes(code))
    const stale = documented.filter((code) => !Object.hasOwn(ERROR_CODES, code))
    assert.deepEqual({ missing, stale }, { missing: [], stale: [] })
  })

  test('lists each code once', () => {
    const seen = new Set<string>()
    for (const { code } of rows) {
      assert.ok(!seen.has(code), `${code} is listed twice`)
      seen.add(code)
    }
  })

  for (const row of rows) {
    test(`${row.code}: status, retryable and error_type match its definition`, () => {
      assert.ok(Object.hasOwn(ERROR_CODES, row.code))
      const definition = ERROR_CODES[row.code as ErrorCode]
      assert.deepEqual(
        { status: row.status, retryable: row.retryable, errorType: row.errorType },
        { status: definition.status, retryable: definition.retryable, errorType: definition.errorType })
    })
  }

  test('per-sample codes are documented as rejections, the others as request errors or background processing', () => {
    for (const row of rows) {
      const expected = row.code.startsWith('BB_SAMPLE_') ? ['Per-sample rejections'] : ['Request errors', 'Background processing']
      assert.ok(expected.includes(row.section), `${row.code} is under "${row.section}"`)
    }
  })
})

describe('ERROR_CODES', () => {
  test('every error_type is a design §8 label value', () => {
    for (const code of CODES) assert.ok(ERROR_TYPES.includes(ERROR_CODES[code].errorType), code)
  })

  test('every retryable code answers 503, and every 503 is retryable', () => {
    for (const code of CODES) {
      const { status, retryable } = ERROR_CODES[code]
      assert.equal(retryable, status === 503, code)
    }
  })

  test('500 errors are never exposed to clients', () => {
    for (const code of CODES) {
      if (ERROR_CODES[code].status === 500) assert.equal(ERROR_CODES[code].expose, false, code)
    }
  })

  test('per-sample codes are 422 and not retryable', () => {
    for (const code of CODES.filter((name) => name.startsWith('BB_SAMPLE_'))) {
      assert.equal(ERROR_CODES[code].status, 422, code)
      assert.equal(ERROR_CODES[code].retryable, false, code)
    }
  })
})

describe('BridgeError', () => {
  for (const code of CODES) {
    test(`${code} takes status, expose, retryable and error type from its definition`, () => {
      const error = new BridgeError(code, 'something happened')
      const definition = ERROR_CODES[code]
      assert.equal(error.code, code)
      assert.equal(error.status, definition.status)
      assert.equal(error.expose, definition.expose)
      assert.equal(error.retryable, definition.retryable)
      assert.equal(error.errorType, definition.errorType)
    })
  }

  test('is an Error with its name, message and a stack', () => {
    const error = new BridgeError('BB_NOT_FOUND', 'no such user')
    assert.ok(error instanceof Error)
    assert.equal(error.name, 'BridgeError')
    assert.equal(error.message, 'no such user')
    assert.match(error.stack ?? '', /BridgeError: no such user/)
  })

  test('keeps its cause', () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:5432')
    const error = new BridgeError('BB_STORAGE_UNAVAILABLE', 'storage is unavailable', { cause })
    assert.equal(error.cause, cause)
  })

  test('keeps a non-Error cause as it was', () => {
    const cause = { code: '57P01' }
    assert.equal(new BridgeError('BB_STORAGE_UNAVAILABLE', 'm', { cause }).cause, cause)
  })

  test('has no cause property when none was given', () => {
    assert.equal(Object.hasOwn(new BridgeError('BB_INTERNAL', 'm'), 'cause'), false)
  })

  test('carries Retry-After seconds when given', () => {
    assert.equal(new BridgeError('BB_OVERLOADED', 'busy', { retryAfterSeconds: 7 }).retryAfterSeconds, 7)
    assert.equal(new BridgeError('BB_OVERLOADED', 'busy').retryAfterSeconds, undefined)
  })
})

describe('ConfigError', () => {
  const problems = ['PORT must be an integer from 0 to 65535', 'LOG_LEVEL must be one of info, debug']

  test('is a BB_CONFIG_INVALID BridgeError: 500, not exposed, not retryable', () => {
    const error = new ConfigError(problems)
    assert.ok(error instanceof BridgeError)
    assert.ok(isBridgeError(error))
    assert.equal(error.name, 'ConfigError')
    assert.equal(error.code, 'BB_CONFIG_INVALID')
    assert.equal(error.status, 500)
    assert.equal(error.expose, false)
    assert.equal(error.retryable, false)
  })

  test('keeps every problem and lists each on its own line', () => {
    const error = new ConfigError(problems)
    assert.deepEqual(error.problems, problems)
    assert.equal(error.message, 'invalid configuration:\n  - PORT must be an integer from 0 to 65535\n  - LOG_LEVEL must be one of info, debug')
  })
})

describe('toError', () => {
  test('returns an Error unchanged', () => {
    const error = new TypeError('boom')
    assert.equal(toError(error), error)
    const bridge = new BridgeError('BB_INTERNAL', 'x')
    assert.equal(toError(bridge), bridge)
  })

  test('wraps a thrown string, keeping it as message and cause', () => {
    const error = toError('disk full')
    assert.ok(error instanceof Error)
    assert.equal(error.message, 'disk full')
    assert.equal(error.cause, 'disk full')
  })

  const others: Array<[string, unknown]> = [
    ['a number', 42],
    ['an object', { reason: 'nope' }],
    ['null', null],
    ['undefined', undefined],
    ['a symbol', Symbol('s')]
  ]
  for (const [title, value] of others) {
    test(`wraps ${title} with a generic message, keeping it as cause`, () => {
      const error = toError(value)
      assert.ok(error instanceof Error)
      assert.equal(error.message, 'non-error thrown')
      assert.equal(error.cause, value)
      assert.ok(Object.hasOwn(error, 'cause'))
    })
  }
})

describe('isBridgeError', () => {
  test('tells BridgeErrors from other values', () => {
    assert.equal(isBridgeError(new BridgeError('BB_INTERNAL', 'x')), true)
    assert.equal(isBridgeError(new ConfigError([])), true)
    assert.equal(isBridgeError(new Error('x')), false)
    assert.equal(isBridgeError({ code: 'BB_INTERNAL', status: 500 }), false)
    assert.equal(isBridgeError(undefined), false)
  })
})
