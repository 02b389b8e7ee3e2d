/**
 * Incremental JSON scanner for large request bodies. It validates the whole document byte by byte and hands the
 * raw text of selected values to the caller, who JSON.parses each one on its own (native and fast). Memory stays
 * O(depth + one captured value + one key) however large the document is; nothing outside a captured value is
 * materialized.
 */

/** Object keys and array indices from the top-level value down; the top-level value itself is `[]`. */
export type JsonPath = readonly (string | number)[]

/** What a value is, from its first byte: a container, or a string, number, boolean or null. */
export type JsonValueKind = 'object' | 'array' | 'scalar'

export interface SplitterOptions {
  /**
   * Called at the start of every value outside a captured value, with what kind of value starts there; return
   * true to capture that value's raw text (its whole subtree). The array passed in is reused: copy it to keep it.
   */
  capture: (path: JsonPath, kind: JsonValueKind) => boolean
  /** Receives each captured value as raw JSON text, with its own copy of the path. */
  onValue: (path: JsonPath, raw: string) => void
  /** Largest number of nested objects and arrays (default 64); deeper input fails as soon as it is seen. */
  maxDepth?: number
  /** Largest captured value, in bytes (default 1 MiB); a larger one fails. */
  maxValueBytes?: number
}

/**
 * `syntax`: not RFC 8259 JSON. `too_deep`: nesting beyond `maxDepth`. `value_too_large`: a captured value over
 * `maxValueBytes`, or a key outside captured values over MAX_KEY_BYTES.
 */
export type JsonSyntaxErrorReason = 'syntax' | 'too_deep' | 'value_too_large'

export class JsonSyntaxError extends Error {
  /** Byte offset into the document (BOM included) where the problem was found. */
  readonly offset: number
  readonly reason: JsonSyntaxErrorReason

  constructor(message: string, offset: number, reason: JsonSyntaxErrorReason = 'syntax') {
    super(`${message} at byte ${offset}`)
    this.name = 'JsonSyntaxError'
    this.offset = offset
    this.reason = reason
  }
}

export interface JsonSplitter {
  /** Scans one chunk, calling `onValue` for every captured value it completes. Throws JsonSyntaxError. */
  write(chunk: Buffer): void
  /** Checks that exactly one complete top-level value was written. Throws JsonSyntaxError. */
  end(): void
}

const DEFAULT_MAX_DEPTH = 64
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** Longest key, in raw bytes between the quotes, decoded to build paths outside captured values. */
export const MAX_KEY_BYTES = 1024

// Scanner states. A chunk may end anywhere, so every position inside a token has a state to resume from.
const START = 0 // nothing read yet: a UTF-8 BOM may come first
const BOM = 1 // inside the BOM; bomIndex bytes of it read
const VALUE = 2 // a value must come: top level, after ':' or after ',' in an array
const ARRAY_FIRST = 3 // after '[': a value or ']'
const OBJECT_FIRST = 4 // after '{': a key or '}'
const KEY = 5 // after ',' in an object: a key
const COLON = 6
const AFTER_VALUE = 7 // ',' or the innermost container's closer
const DONE = 8 // top-level value complete: only whitespace may follow
const STRING = 9 // inside a string body; stringIsKey tells a key from a value
const STRING_ESCAPE = 10 // after a backslash
const STRING_HEX = 11 // inside \uXXXX; hexLeft digits still to come
const NUMBER = 12 // numberState holds the position in the number grammar
const LITERAL = 13 // inside true/false/null; literalIndex bytes of literal matched

const OBJECT = 1
const ARRAY = 2

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON_CHAR = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

const BOM_BYTES = Uint8Array.of(0xef, 0xbb, 0xbf)
const TRUE_BYTES = Uint8Array.from(Buffer.from('true'))
const FALSE_BYTES = Uint8Array.from(Buffer.from('false'))
const NULL_BYTES = Uint8Array.from(Buffer.from('null'))

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

// What the first byte of a value starts.
const KIND_INVALID = 0
const KIND_STRING = 1
const KIND_OBJECT = 2
const KIND_ARRAY = 3
const KIND_NUMBER = 4
const KIND_TRUE = 5
const KIND_FALSE = 6
const KIND_NULL = 7
const VALUE_KIND = new Uint8Array(256)
VALUE_KIND[QUOTE] = KIND_STRING
VALUE_KIND[OPEN_BRACE] = KIND_OBJECT
VALUE_KIND[OPEN_BRACKET] = KIND_ARRAY
VALUE_KIND[0x2d] = KIND_NUMBER
for (let c = 0x30; c <= 0x39; c++) VALUE_KIND[c] = KIND_NUMBER
VALUE_KIND[0x74] = KIND_TRUE
VALUE_KIND[0x66] = KIND_FALSE
VALUE_KIND[0x6e] = KIND_NULL
/** What `capture` is told about a value, by its KIND_ constant (KIND_INVALID never reaches it). */
const CAPTURED_KIND: readonly JsonValueKind[] = ['scalar', 'scalar', 'object', 'array', 'scalar', 'scalar', 'scalar', 'scalar']

/** 1 for the letters that may follow a backslash on their own: " \ / b f n r t. */
const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of Buffer.from('"\\/bfnrt')) SIMPLE_ESCAPE[c] = 1
const IS_HEX = new Uint8Array(256)
for (const c of Buffer.from('0123456789abcdefABCDEF')) IS_HEX[c] = 1

// RFC 8259 number grammar as a table: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
// NUMBER_NEXT[state << 8 | byte] is the next state, NUMBER_END when the byte ends a complete number (it
// belongs to what follows), NUMBER_BAD when the number cannot be completed.
const N_START = 0
const N_MINUS = 1
const N_ZERO = 2
const N_INT = 3
const N_DOT = 4
const N_FRAC = 5
const N_E = 6
const N_E_SIGN = 7
const N_EXP = 8
const NUMBER_END = 254
const NUMBER_BAD = 255
const NUMBER_NEXT = buildNumberTable()

function buildNumberTable(): Uint8Array {
  const table = new Uint8Array(9 << 8)
  const accepting = [N_ZERO, N_INT, N_FRAC, N_EXP]
  for (let state = 0; state < 9; state++) {
    table.fill(accepting.includes(state) ? NUMBER_END : NUMBER_BAD, state << 8, (state + 1) << 8)
  }
  const set = (state: number, chars: string, next: number): void => {
    for (const c of Buffer.from(chars)) table[(state << 8) | c] = next
  }
  const nonZero = '123456789'
  const digits = '0123456789'
  set(N_START, '-', N_MINUS)
  set(N_START, '0', N_ZERO)
  set(N_START, nonZero, N_INT)
  set(N_MINUS, '0', N_ZERO)
  set(N_MINUS, nonZero, N_INT)
  set(N_ZERO, '.', N_DOT)
  set(N_ZERO, 'eE', N_E)
  set(N_INT, digits, N_INT)
  set(N_INT, '.', N_DOT)
  set(N_INT, 'eE', N_E)
  set(N_DOT, digits, N_FRAC)
  set(N_FRAC, digits, N_FRAC)
  set(N_FRAC, 'eE', N_E)
  set(N_E, '+-', N_E_SIGN)
  set(N_E, digits, N_EXP)
  set(N_E_SIGN, digits, N_EXP)
  set(N_EXP, digits, N_EXP)
  return table
}

function isNumberComplete(state: number): boolean {
  return state === N_ZERO || state === N_INT || state === N_FRAC || state === N_EXP
}

/**
 * Creates a push scanner for one JSON document.
 *
 * Invalid UTF-8 is not detected: captured text and keys are decoded with U+FFFD replacement. Once `write` or
 * `end` has thrown, every later call throws the same error.
 *
 * @param options - what to capture and where to send it, plus depth and size limits
 * @returns `write` for each chunk in order, then `end`
 */
export function createJsonSplitter(options: SplitterOptions): JsonSplitter {
  const { capture, onValue } = options
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) throw new RangeError('maxDepth must be a positive integer')
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new RangeError('maxValueBytes must be a positive integer')
  }

  let state = START
  /** Bytes of the document in chunks before the current one. */
  let consumed = 0
  let failure: Error | undefined
  let ended = false

  // Open containers, innermost last. The path has an entry per container opened outside a captured value.
  const containers = new Uint8Array(maxDepth)
  let depth = 0
  const path: (string | number)[] = []

  let bomIndex = 0
  let stringIsKey = false
  let hexLeft = 0
  let numberState = N_START
  let literal = TRUE_BYTES
  let literalIndex = 0

  let capturing = false
  /** Depth at which the captured value started: it is complete when a value ends at this depth again. */
  let captureDepth = 0
  /** Start of the captured value in the current chunk; 0 once earlier chunks hold its beginning. */
  let captureStart = 0
  let captureOffset = 0
  let capturePath: JsonPath = []
  /** Copies of the captured value's bytes from earlier chunks. */
  let captureParts: Buffer[] = []
  let captureBytes = 0

  // Keys are tracked only outside captured values, where they become path entries.
  let keyStart = 0
  let keyParts: Buffer[] = []
  let keyBytes = 0
  let keyEscaped = false

  function syntaxError(message: string, index: number): JsonSyntaxError {
    return new JsonSyntaxError(message, consumed + index)
  }

  function keyTooLong(index: number): JsonSyntaxError {
    return new JsonSyntaxError(`key longer than ${MAX_KEY_BYTES} bytes`, consumed + index, 'value_too_large')
  }

  function tooLarge(): JsonSyntaxError {
    return new JsonSyntaxError(`value starting here is larger than ${maxValueBytes} bytes`, captureOffset,
      'value_too_large')
  }

  function startCapture(index: number): void {
    capturing = true
    captureDepth = depth
    captureStart = index
    captureOffset = consumed + index
    capturePath = path.slice()
    captureBytes = 0
  }

  /** Delivers the captured value, which ends just before `end` in `chunk`. */
  function emit(chunk: Buffer, end: number): void {
    const size = captureBytes + end - captureStart
    if (size > maxValueBytes) throw tooLarge()
    let raw: string
    if (captureParts.length === 0) {
      raw = chunk.toString('utf8', captureStart, end)
    } else {
      captureParts.push(chunk.subarray(captureStart, end))
      // Decoded only once whole, so a multi-byte character split between chunks stays intact.
      raw = Buffer.concat(captureParts, size).toString('utf8')
      captureParts = []
    }
    capturing = false
    onValue(capturePath, raw)
  }

  /**
   * Leaves the innermost container, whose closing bracket ends just before `end` in `chunk`: delivers it when it
   * was the captured value. Returns the state that follows it.
   */
  function closeContainer(chunk: Buffer, end: number): number {
    depth--
    if (!capturing) path.pop()
    else if (depth === captureDepth) emit(chunk, end)
    return depth === 0 ? DONE : AFTER_VALUE
  }

  /** Sets the innermost path entry to the key whose closing quote is at `end` in `chunk`. */
  function finishKey(chunk: Buffer, end: number): void {
    const size = keyBytes + end - keyStart
    if (size > MAX_KEY_BYTES) throw keyTooLong(end)
    let text: string
    if (keyParts.length === 0) {
      text = chunk.toString('utf8', keyStart, end)
    } else {
      keyParts.push(chunk.subarray(keyStart, end))
      text = Buffer.concat(keyParts, size).toString('utf8')
      keyParts = []
    }
    // The escapes were validated while scanning, so JSON.parse only decodes them.
    path[depth - 1] = keyEscaped ? JSON.parse(`"${text}"`) as string : text
  }

  function scan(chunk: Buffer): void {
    const n = chunk.length
    let i = 0
    let s = state
    let c = 0
    outer: while (i < n) {
      switch (s) {
        case VALUE:
        case ARRAY_FIRST: {
          c = chunk[i]!
          while (isWhitespace(c)) {
            if (++i === n) break outer
            c = chunk[i]!
          }
          if (c === CLOSE_BRACKET && s === ARRAY_FIRST) {
            i++
            s = closeContainer(chunk, i)
            continue
          }
          const kind = VALUE_KIND[c]!
          if (kind === KIND_INVALID) {
            throw syntaxError(s === VALUE && depth > 0 && containers[depth - 1] === ARRAY && c === CLOSE_BRACKET
              ? 'trailing comma'
              : 'expected a value', i)
          }
          if (!capturing && capture(path, CAPTURED_KIND[kind]!)) startCapture(i)
          switch (kind) {
            case KIND_STRING:
              i++
              stringIsKey = false
              s = STRING
              continue
            case KIND_OBJECT:
            case KIND_ARRAY:
              if (depth === maxDepth) {
                throw new JsonSyntaxError(`nesting deeper than ${maxDepth}`, consumed + i, 'too_deep')
              }
              i++
              if (kind === KIND_OBJECT) {
                containers[depth++] = OBJECT
                if (!capturing) path.push('')
                s = OBJECT_FIRST
              } else {
                containers[depth++] = ARRAY
                if (!capturing) path.push(0)
                s = ARRAY_FIRST
              }
              continue
            case KIND_NUMBER:
              numberState = N_START
              s = NUMBER
              continue
            default:
              literal = kind === KIND_TRUE ? TRUE_BYTES : kind === KIND_FALSE ? FALSE_BYTES : NULL_BYTES
              literalIndex = 0
              s = LITERAL
              continue
          }
        }

        case OBJECT_FIRST:
        case KEY:
          c = chunk[i]!
          while (isWhitespace(c)) {
            if (++i === n) break outer
            c = chunk[i]!
          }
          if (c === QUOTE) {
            i++
            stringIsKey = true
            if (!capturing) {
              keyStart = i
              keyParts = []
              keyBytes = 0
              keyEscaped = false
            }
            s = STRING
          } else if (c === CLOSE_BRACE && s === OBJECT_FIRST) {
            i++
            s = closeContainer(chunk, i)
          } else {
            throw syntaxError(c === CLOSE_BRACE ? 'trailing comma' : 'expected a string key', i)
          }
          continue

        case STRING:
          for (;;) {
            // Most string bytes are plain; only these three need a decision.
            while (i < n) {
              c = chunk[i]!
              if (c === QUOTE || c === BACKSLASH || c < 0x20) break
              i++
            }
            if (i === n) break outer
            if (c === QUOTE) {
              i++
              if (stringIsKey) {
                if (!capturing) finishKey(chunk, i - 1)
                s = COLON
              } else {
                if (capturing && depth === captureDepth) emit(chunk, i)
                s = depth === 0 ? DONE : AFTER_VALUE
              }
              continue outer
            }
            if (c === BACKSLASH) {
              if (stringIsKey) keyEscaped = true
              if (i + 1 === n) {
                i++
                s = STRING_ESCAPE
                continue outer
              }
              const e = chunk[i + 1]!
              if (SIMPLE_ESCAPE[e] === 1) {
                i += 2
              } else if (e === 0x75) {
                if (i + 6 <= n) {
                  for (let k = i + 2; k < i + 6; k++) {
                    if (IS_HEX[chunk[k]!] !== 1) throw syntaxError('bad \\u escape', k)
                  }
                  i += 6
                } else {
                  i += 2
                  hexLeft = 4
                  s = STRING_HEX
                  continue outer
                }
              } else {
                throw syntaxError('bad escape', i + 1)
              }
              continue
            }
            throw syntaxError('control character in string', i)
          }

        case STRING_ESCAPE:
          c = chunk[i]!
          if (SIMPLE_ESCAPE[c] === 1) {
            s = STRING
          } else if (c === 0x75) {
            hexLeft = 4
            s = STRING_HEX
          } else {
            throw syntaxError('bad escape', i)
          }
          i++
          continue

        case STRING_HEX:
          while (hexLeft > 0) {
            if (i === n) break outer
            if (IS_HEX[chunk[i]!] !== 1) throw syntaxError('bad \\u escape', i)
            i++
            hexLeft--
          }
          s = STRING
          continue

        case COLON:
          c = chunk[i]!
          while (isWhitespace(c)) {
            if (++i === n) break outer
            c = chunk[i]!
          }
          if (c !== COLON_CHAR) throw syntaxError('expected \':\'', i)
          i++
          s = VALUE
          continue

        case AFTER_VALUE: {
          c = chunk[i]!
          while (isWhitespace(c)) {
            if (++i === n) break outer
            c = chunk[i]!
          }
          const container = containers[depth - 1]
          if (c === COMMA) {
            i++
            if (container === ARRAY) {
              if (!capturing) path[depth - 1] = (path[depth - 1] as number) + 1
              s = VALUE
            } else {
              s = KEY
            }
          } else if (c === (container === ARRAY ? CLOSE_BRACKET : CLOSE_BRACE)) {
            i++
            s = closeContainer(chunk, i)
          } else {
            throw syntaxError(container === ARRAY ? 'expected \',\' or \']\'' : 'expected \',\' or \'}\'', i)
          }
          continue
        }

        case NUMBER: {
          let ns = numberState
          let next = 0
          while (i < n) {
            next = NUMBER_NEXT[(ns << 8) | chunk[i]!]!
            if (next >= NUMBER_END) break
            ns = next
            i++
          }
          numberState = ns
          if (i === n) break outer
          if (next === NUMBER_BAD) throw syntaxError('malformed number', i)
          if (capturing && depth === captureDepth) emit(chunk, i)
          s = depth === 0 ? DONE : AFTER_VALUE
          continue
        }

        case LITERAL:
          while (literalIndex < literal.length) {
            if (i === n) break outer
            if (chunk[i] !== literal[literalIndex]) throw syntaxError('invalid literal', i)
            i++
            literalIndex++
          }
          if (capturing && depth === captureDepth) emit(chunk, i)
          s = depth === 0 ? DONE : AFTER_VALUE
          continue

        case DONE:
          c = chunk[i]!
          while (isWhitespace(c)) {
            if (++i === n) break outer
            c = chunk[i]!
          }
          throw syntaxError('unexpected data after the top-level value', i)

        case START:
          if (chunk[i] === BOM_BYTES[0]) {
            i++
            bomIndex = 1
            s = BOM
          } else {
            s = VALUE
          }
          continue

        case BOM:
          if (chunk[i] !== BOM_BYTES[bomIndex]) throw syntaxError('expected a value', i)
          i++
          if (++bomIndex === BOM_BYTES.length) s = VALUE
          continue

        default:
          throw new Error(`json-splitter: unknown state ${s}`)
      }
    }
    state = s

    // The chunk ends inside a captured value or a key: keep a copy of its tail, since the caller may reuse the
    // chunk's memory.
    if (capturing) {
      captureBytes += n - captureStart
      if (captureBytes > maxValueBytes) throw tooLarge()
      if (captureStart < n) captureParts.push(Buffer.from(chunk.subarray(captureStart)))
      captureStart = 0
    }
    if (stringIsKey && !capturing && (s === STRING || s === STRING_ESCAPE || s === STRING_HEX)) {
      keyBytes += n - keyStart
      if (keyBytes > MAX_KEY_BYTES) throw keyTooLong(n)
      if (keyStart < n) keyParts.push(Buffer.from(chunk.subarray(keyStart)))
      keyStart = 0
    }
    consumed += n
  }

  function finish(): void {
    if (state === NUMBER && depth === 0) {
      if (!isNumberComplete(numberState)) throw syntaxError('malformed number', 0)
      if (capturing) emit(Buffer.alloc(0), 0)
      state = DONE
    }
    if (state !== DONE) throw syntaxError('unexpected end of input', 0)
  }

  function guarded(step: () => void): void {
    if (failure !== undefined) throw failure
    if (ended) throw new Error('json-splitter: already ended')
    try {
      step()
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error))
      throw failure
    }
  }

  return {
    write(chunk: Buffer): void {
      guarded(() => scan(chunk))
    },
    end(): void {
      guarded(finish)
      ended = true
    }
  }
}
