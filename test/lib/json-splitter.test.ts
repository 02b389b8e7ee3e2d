// node:test's describe and it return promises that the runner itself awaits; nothing here is left floating.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createJsonSplitter, JsonSyntaxError, MAX_KEY_BYTES, type JsonPath, type JsonValueKind, type SplitterOptions
} from '../../src/lib/json-splitter.ts'

interface Captured {
  path: JsonPath
  raw: string
}

type Limits = Pick<SplitterOptions, 'maxDepth' | 'maxValueBytes'>

const BOM = Buffer.from([0xef, 0xbb, 0xbf])

const isSample = (path: JsonPath): boolean => path.length === 2 && path[0] === 'samples'
const isRoot = (path: JsonPath): boolean => path.length === 0

/** Cuts `bytes` at the given offsets (any order, duplicates and out-of-range values allowed). */
function chunksOf(bytes: Buffer, cuts: readonly number[] = []): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point))
    from = point
  }
  return chunks
}

function split(
  input: string | Buffer, capture: (path: JsonPath, kind: JsonValueKind) => boolean, cuts: readonly number[] = [], limits: Limits = {}
): Captured[] {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input
  const captured: Captured[] = []
  const splitter = createJsonSplitter({ capture, onValue: (path, raw) => captured.push({ path, raw }), ...limits })
  for (const chunk of chunksOf(bytes, cuts)) splitter.write(chunk)
  splitter.end()
  return captured
}

function splitError(
  input: string | Buffer, cuts: readonly number[] = [], limits: Limits = {}, capture = isSample
): JsonSyntaxError {
  try {
    split(input, capture, cuts, limits)
  } catch (error) {
    assert.ok(error instanceof JsonSyntaxError, `expected JsonSyntaxError, got ${String(error)}`)
    return error
  }
  assert.fail('expected the splitter to throw')
}

/** Whether the platform parser accepts the bytes, read the way a client means them (a leading BOM skipped). */
function jsonParseAccepts(bytes: Buffer): boolean {
  const body = bytes.subarray(0, 3).equals(BOM) ? bytes.subarray(3) : bytes
  try {
    JSON.parse(body.toString('utf8'))
    return true
  } catch {
    return false
  }
}

function splitterAccepts(bytes: Buffer, cuts: readonly number[], capture: (path: JsonPath) => boolean): boolean {
  try {
    split(bytes, capture, cuts, { maxDepth: 10_000, maxValueBytes: 1 << 30 })
    return true
  } catch (error) {
    assert.ok(error instanceof JsonSyntaxError, `expected JsonSyntaxError, got ${String(error)}`)
    return false
  }
}

describe('createJsonSplitter', () => {
  describe('splits valid documents', () => {
    const cases: { name: string, input: string, capture: (path: JsonPath) => boolean, expected: Captured[] }[] = [
      {
        name: 'each element of samples',
        input: '{"samples":[{"a":1},{"b":[2,3]}],"deleted":["x"]}',
        capture: isSample,
        expected: [{ path: ['samples', 0], raw: '{"a":1}' }, { path: ['samples', 1], raw: '{"b":[2,3]}' }]
      },
      {
        name: 'the root value',
        input: ' {"a": [1, 2.5e-3, true, false, null, "s"]} \n',
        capture: isRoot,
        expected: [{ path: [], raw: '{"a": [1, 2.5e-3, true, false, null, "s"]}' }]
      },
      {
        name: 'scalars inside an array, keeping their exact text',
        input: '[0, -0, 1.50, 1E+2, -3e-0, "a\\"b", true, false, null]',
        capture: (path) => path.length === 1,
        expected: ['0', '-0', '1.50', '1E+2', '-3e-0', '"a\\"b"', 'true', 'false', 'null']
          .map((raw, index) => ({ path: [index], raw }))
      },
      {
        name: 'a top-level number, completed only by end()',
        input: '-12.5e3',
        capture: isRoot,
        expected: [{ path: [], raw: '-12.5e3' }]
      },
      {
        name: 'a top-level literal',
        input: '\tnull\r\n',
        capture: isRoot,
        expected: [{ path: [], raw: 'null' }]
      },
      {
        name: 'an escaped key as its decoded name',
        input: '{"sam\\u0070les":[{"k":"v"}], "\\"q\\"": 1}',
        capture: (path) => isSample(path) || path[0] === '"q"',
        expected: [{ path: ['samples', 0], raw: '{"k":"v"}' }, { path: ['"q"'], raw: '1' }]
      },
      {
        name: 'a __proto__ key as a plain key',
        input: '{"__proto__":{"polluted":true},"samples":[{"__proto__":{"x":1}}]}',
        capture: (path) => path[0] === '__proto__' || isSample(path),
        expected: [
          { path: ['__proto__'], raw: '{"polluted":true}' },
          { path: ['samples', 0], raw: '{"__proto__":{"x":1}}' }
        ]
      },
      {
        name: 'nothing from empty containers',
        input: '{"samples":[],"other":{}}',
        capture: isSample,
        expected: []
      },
      {
        name: 'multi-byte UTF-8 text intact',
        input: '{"samples":["Grüße 💓", {"ключ":"値"}]}',
        capture: isSample,
        expected: [{ path: ['samples', 0], raw: '"Grüße 💓"' }, { path: ['samples', 1], raw: '{"ключ":"値"}' }]
      },
      {
        name: 'a document after a UTF-8 BOM',
        input: '\uFEFF{"samples":[1]}',
        capture: isSample,
        expected: [{ path: ['samples', 0], raw: '1' }]
      },
      {
        name: 'the outer value only, never values nested inside it',
        input: '{"samples":[[{"samples":[1]}]]}',
        capture: (path) => path[0] === 'samples',
        expected: [{ path: ['samples'], raw: '[[{"samples":[1]}]]' }]
      }
    ]
    for (const { name, input, capture, expected } of cases) {
      it(name, () => {
        assert.deepEqual(split(input, capture), expected)
        // Every byte boundary must give the same result.
        const bytes = Buffer.from(input)
        for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(split(bytes, capture, [cut]), expected)
      })
    }
  })

  describe('rejects malformed input', () => {
    const cases: { name: string, input: string | Buffer, offset?: number }[] = [
      { name: 'empty input', input: '', offset: 0 },
      { name: 'whitespace only', input: ' \n\t ' },
      { name: 'a BOM only', input: BOM },
      { name: 'a truncated BOM', input: Buffer.from([0xef, 0xbb, 0x7b, 0x7d]) },
      { name: 'a BOM after whitespace', input: Buffer.concat([Buffer.from(' '), BOM, Buffer.from('1')]) },
      { name: 'an unterminated string', input: '{"samples":["abc' },
      { name: 'an unterminated key', input: '{"sam' },
      { name: 'a bad escape letter', input: '["a\\x"]', offset: 4 },
      { name: 'a short \\u escape', input: '["\\u12"]', offset: 6 },
      { name: 'a non-hex \\u escape', input: '["\\u12G4"]', offset: 6 },
      { name: 'a \\u escape with three digits', input: '["\\u123"]', offset: 7 },
      { name: 'a raw newline in a string', input: '["a\nb"]', offset: 3 },
      { name: 'a raw NUL in a key', input: '{"a\u0000":1}', offset: 3 },
      { name: 'a trailing comma in an array', input: '[1,2,]', offset: 5 },
      { name: 'a trailing comma in an object', input: '{"a":1,}', offset: 7 },
      { name: 'a missing colon', input: '{"a" 1}', offset: 5 },
      { name: 'a missing comma', input: '[1 2]', offset: 3 },
      { name: 'a missing value', input: '{"a":}', offset: 5 },
      { name: 'an unquoted key', input: '{a:1}', offset: 1 },
      { name: 'a single-quoted string', input: "['a']", offset: 1 },
      { name: 'a leading zero', input: '[01]', offset: 2 },
      { name: 'a lone minus', input: '[-]', offset: 2 },
      { name: 'a lone top-level minus', input: '-' },
      { name: 'a number ending in a dot', input: '1.' },
      { name: 'a number starting with a dot', input: '[.5]', offset: 1 },
      { name: 'a plus sign', input: '[+1]', offset: 1 },
      { name: 'an exponent without digits', input: '[1e]', offset: 3 },
      { name: 'an exponent sign without digits', input: '[1e+]', offset: 4 },
      { name: 'a hexadecimal number', input: '[0x10]', offset: 2 },
      { name: 'a letter after digits', input: '[12a]', offset: 3 },
      { name: 'NaN', input: '[NaN]', offset: 1 },
      { name: 'a truncated literal', input: 'tru' },
      { name: 'a misspelt literal', input: '[nul1]', offset: 4 },
      { name: 'a capitalized literal', input: '[True]', offset: 1 },
      { name: 'a literal with extra letters', input: '[truex]', offset: 5 },
      { name: 'data after the top-level value', input: '{"samples":[]} {}', offset: 15 },
      { name: 'a second top-level number', input: '1 2', offset: 2 },
      { name: 'a bracket closed by a brace', input: '{"samples":[1}', offset: 13 },
      { name: 'a brace closed by a bracket', input: '[{"a":1]]', offset: 7 },
      { name: 'an extra closer', input: '[1]]', offset: 3 },
      { name: 'an unclosed container', input: '{"samples":[1,2' },
      { name: 'a comment', input: '[1 /* no */]', offset: 3 },
      { name: 'a non-ASCII byte outside strings', input: '[1,\u00e9]', offset: 3 }
    ]
    for (const { name, input, offset } of cases) {
      it(name, () => {
        const error = splitError(input)
        assert.equal(error.reason, 'syntax')
        if (offset !== undefined) assert.equal(error.offset, offset)
        const bytes = typeof input === 'string' ? Buffer.from(input) : input
        for (let cut = 0; cut <= bytes.length; cut++) {
          const chunked = splitError(bytes, [cut])
          assert.equal(chunked.offset, error.offset, `offset differs with a cut at ${cut}`)
        }
      })
    }
  })

  describe('limits', () => {
    it('fails fast with too_deep on 100k opening brackets, without recursion', () => {
      const error = splitError('['.repeat(100_000))
      assert.equal(error.reason, 'too_deep')
      assert.equal(error.offset, 64)
    })

    it('accepts nesting up to maxDepth and rejects one level more', () => {
      const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels)
      assert.deepEqual(split(nested(5), isRoot, [], { maxDepth: 5 }), [{ path: [], raw: nested(5) }])
      assert.equal(splitError(`{"a":${nested(5)}}`, [], { maxDepth: 5 }).reason, 'too_deep')
    })

    it('counts depth inside captured values too', () => {
      assert.equal(splitError(`{"samples":[${'['.repeat(70)}]}`).reason, 'too_deep')
    })

    it('rejects a captured value over maxValueBytes with value_too_large', () => {
      const doc = `{"samples":[${JSON.stringify('x'.repeat(200))},"ok"]}`
      const error = splitError(doc, [], { maxValueBytes: 100 })
      assert.equal(error.reason, 'value_too_large')
      assert.equal(error.offset, doc.indexOf('"x'))
      assert.equal(splitError(doc, [20, 40, 60], { maxValueBytes: 100 }).reason, 'value_too_large')
    })

    it('rejects a value spanning chunks once its bytes exceed maxValueBytes', () => {
      const splitter = createJsonSplitter({ capture: isSample, onValue: () => {}, maxValueBytes: 100 })
      splitter.write(Buffer.from('{"samples":["'))
      splitter.write(Buffer.from('x'.repeat(60)))
      assert.throws(() => splitter.write(Buffer.from('x'.repeat(60))),
        (error) => error instanceof JsonSyntaxError && error.reason === 'value_too_large')
    })

    it('accepts a captured value of exactly maxValueBytes', () => {
      const value = JSON.stringify('x'.repeat(98))
      assert.deepEqual(split(`[${value}]`, (path) => path.length === 1, [5], { maxValueBytes: 100 }),
        [{ path: [0], raw: value }])
    })

    it('does not limit values that are not captured', () => {
      const big = JSON.stringify('x'.repeat(10_000))
      assert.deepEqual(split(`{"deleted":${big},"samples":[1]}`, isSample, [], { maxValueBytes: 10 }),
        [{ path: ['samples', 0], raw: '1' }])
    })

    it('rejects a key longer than the key limit outside captured values with value_too_large', () => {
      const key = 'k'.repeat(MAX_KEY_BYTES + 1)
      assert.equal(splitError(`{"${key}":1}`).reason, 'value_too_large')
      assert.equal(splitError(`{"${key}":1}`, [500, 1000]).reason, 'value_too_large')
      assert.deepEqual(split(`{"${'k'.repeat(MAX_KEY_BYTES)}":1}`, isSample), [])
    })

    it('does not decode keys inside captured values', () => {
      const inner = `{"${'k'.repeat(MAX_KEY_BYTES * 4)}":1}`
      assert.deepEqual(split(`{"samples":[${inner}]}`, isSample, [700, 3000]), [{ path: ['samples', 0], raw: inner }])
    })

    it('refuses a maxDepth that is not a positive integer', () => {
      assert.throws(() => createJsonSplitter({ capture: isRoot, onValue: () => {}, maxDepth: 0 }), RangeError)
    })
  })

  describe('paths and lifecycle', () => {
    it('asks capture about every value outside captured ones, in document order', () => {
      const seen: JsonPath[] = []
      split('{"a":[true,{"b":null}],"c":{"d":[]}}', (path) => {
        seen.push([...path])
        return path[0] === 'c'
      })
      assert.deepEqual(seen, [[], ['a'], ['a', 0], ['a', 1], ['a', 1, 'b'], ['c']])
    })

    it('tells capture what kind of value starts, before any of it is read', () => {
      const seen: string[] = []
      split('{"a":[true,{"b":null}],"c":"x","d":-1,"e":[]}', (path, kind) => {
        seen.push(`${path.join('.')}:${kind}`)
        return false
      })
      assert.deepEqual(seen, [':object', 'a:array', 'a.0:scalar', 'a.1:object', 'a.1.b:scalar', 'c:scalar', 'd:scalar', 'e:array'])
    })

    it('gives onValue a path that later values do not change', () => {
      const captured = split('{"samples":[1,2,3]}', isSample)
      assert.deepEqual(captured.map(({ path }) => path), [['samples', 0], ['samples', 1], ['samples', 2]])
    })

    it('decodes a key split inside an escape', () => {
      const doc = '{"sam\\u0070les":[7]}'
      for (let cut = 1; cut < doc.length; cut++) {
        for (let second = cut; second < doc.length; second++) {
          assert.deepEqual(split(doc, isSample, [cut, second]), [{ path: ['samples', 0], raw: '7' }])
        }
      }
    })

    it('keeps a captured value intact when the caller reuses chunk memory', () => {
      const doc = Buffer.from('{"samples":["abcdef"]}')
      const captured: string[] = []
      const splitter = createJsonSplitter({ capture: isSample, onValue: (_path, raw) => captured.push(raw) })
      const scratch = Buffer.alloc(4)
      for (let offset = 0; offset < doc.length; offset += 4) {
        const length = doc.copy(scratch, 0, offset, offset + 4)
        splitter.write(scratch.subarray(0, length))
        scratch.fill(0x7a)
      }
      splitter.end()
      assert.deepEqual(captured, ['"abcdef"'])
    })

    it('accepts empty chunks', () => {
      const splitter = createJsonSplitter({ capture: isRoot, onValue: () => {} })
      splitter.write(Buffer.alloc(0))
      splitter.write(Buffer.from('[1]'))
      splitter.write(Buffer.alloc(0))
      splitter.end()
    })

    it('keeps failing after an error', () => {
      const splitter = createJsonSplitter({ capture: isRoot, onValue: () => {} })
      assert.throws(() => splitter.write(Buffer.from('[}')), JsonSyntaxError)
      assert.throws(() => splitter.write(Buffer.from(']')), JsonSyntaxError)
      assert.throws(() => splitter.end(), JsonSyntaxError)
    })

    it('passes on an error thrown by onValue and stops', () => {
      const splitter = createJsonSplitter({ capture: isSample, onValue: () => { throw new Error('rejected') } })
      assert.throws(() => splitter.write(Buffer.from('{"samples":[1,2]}')), /rejected/)
      assert.throws(() => splitter.end(), /rejected/)
    })

    it('refuses writes after end', () => {
      const splitter = createJsonSplitter({ capture: isRoot, onValue: () => {} })
      splitter.write(Buffer.from('{}'))
      splitter.end()
      assert.throws(() => splitter.write(Buffer.from(' ')), /already ended/)
    })
  })

  describe('properties', () => {
    // Full Unicode and control characters, so JSON.stringify emits multi-byte UTF-8 and every kind of escape.
    const jsonValue = fc.jsonValue({ stringUnit: 'binary', maxDepth: 6 })
    const cuts = fc.array(fc.nat(), { maxLength: 12 })
    const spaced = fc.constantFrom<number | undefined>(undefined, 0, 2)

    it('captures each element of samples, whatever the chunk boundaries', () => {
      fc.assert(fc.property(fc.array(jsonValue, { maxLength: 8 }), jsonValue, spaced, cuts,
        (elements, other, indent, points) => {
          const bytes = Buffer.from(JSON.stringify({ before: other, samples: elements, after: other }, null, indent))
          const captured = split(bytes, isSample, points, { maxDepth: 100 })
          assert.deepEqual(captured.map(({ path }) => path), elements.map((_element, index) => ['samples', index]))
          assert.deepEqual(captured.map(({ raw }) => JSON.parse(raw) as unknown),
            elements.map((element) => JSON.parse(JSON.stringify(element)) as unknown))
        }), { numRuns: 500 })
    })

    it('captures the root as exactly the serialized text', () => {
      fc.assert(fc.property(jsonValue, fc.boolean(), cuts, (value, withBom, points) => {
        const text = JSON.stringify(value)
        const bytes = Buffer.concat([withBom ? BOM : Buffer.alloc(0), Buffer.from(text)])
        const captured = split(bytes, isRoot, points, { maxDepth: 100 })
        assert.deepEqual(captured, [{ path: [], raw: text }])
        assert.deepEqual(JSON.parse(captured[0]!.raw), JSON.parse(text))
      }), { numRuns: 500 })
    })

    // Bytes that change what a document means: structure, number grammar, escapes, UTF-8 lead and continuation.
    const interestingByte = fc.oneof(
      fc.constantFrom(...Buffer.from('{}[],:"\\ \n0123456789-+.eEtrufalsn/bx'), 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xef),
      fc.integer({ min: 0, max: 255 }))
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: interestingByte }),
      fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), byte: interestingByte }))
    type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

    function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
      let out = bytes
      for (const change of mutations) {
        const at = change.at % (out.length + 1)
        if (change.kind === 'delete') {
          out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)])
        } else if (change.kind === 'insert') {
          out = Buffer.concat([out.subarray(0, at), Buffer.of(change.byte), out.subarray(at)])
        } else if (at < out.length) {
          out = Buffer.from(out)
          out[at] = change.byte
        }
      }
      return out
    }

    it('throws exactly when JSON.parse throws on a mutated document', () => {
      fc.assert(fc.property(jsonValue, spaced, fc.boolean(), fc.array(mutation, { minLength: 1, maxLength: 3 }),
        cuts, fc.constantFrom(isRoot, isSample, (path: JsonPath) => path.length === 1),
        (value, indent, withBom, mutations, points, capture) => {
          const text = JSON.stringify({ samples: [value] }, null, indent)
          const bytes = mutate(Buffer.concat([withBom ? BOM : Buffer.alloc(0), Buffer.from(text)]), mutations)
          assert.equal(splitterAccepts(bytes, points, capture), jsonParseAccepts(bytes), bytes.toString('latin1'))
        }), { numRuns: 3000 })
    })

    it('throws exactly when JSON.parse throws on token soup', () => {
      const token = fc.constantFrom('{', '}', '[', ']', ',', ':', ' ', '"a"', '"\\u00e9"', '"\\x"', '"', '\\',
        '0', '1', '-', '.', 'e', 'E', '+', 'true', 'nul', 'null', 'false', '\u00e9', '\t', '\u0001')
      fc.assert(fc.property(fc.array(token, { maxLength: 12 }), cuts, (tokens, points) => {
        const bytes = Buffer.from(tokens.join(''))
        assert.equal(splitterAccepts(bytes, points, isRoot), jsonParseAccepts(bytes), tokens.join(''))
      }), { numRuns: 3000 })
    })
  })
})
