import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ERROR_CODES } from '../../src/errors.ts'
import type { Queryable } from '../../src/storage/database.ts'

/**
 * Shared checks of the hostile-input suites (reference reliability-security §7.3, B1–B13): what every refused
 * request must look like, that nothing was written, that Object.prototype is untouched, and how many inputs
 * were tried (the docs quote these figures).
 */

/** Planted in hostile payloads: an error body that contains it echoed the input. */
export const ECHO_MARKER = 'EchoCanary7f3a9c'

/** Content types a JSON route must refuse with 415, look-alikes included. */
export const WRONG_CONTENT_TYPES = [
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json', 'application/jsonx'
] as const

/** Counts the inputs one suite tried: fast-check runs and fixed cases, one request each unless said otherwise. */
export class InputTally {
  property = 0
  fixed = 0

  summary(label: string): string {
    return `inputs tried (${label}): ${this.property + this.fixed} = ${this.property} fast-check runs + ${this.fixed} fixed cases`
  }
}

export interface Answer {
  statusCode: number
  body: string
}

/**
 * A refused request: the status belongs to the code (src/errors.ts, docs/errors.md), the body is exactly the
 * contract's `{error: {code, message}}`, and neither the marker nor a payload of 12+ characters comes back.
 */
export function assertRefused(answer: Answer, expected: { status?: number, codes?: readonly string[] } = {}, payload?: string | Buffer): string {
  assert.ok(answer.statusCode >= 400 && answer.statusCode < 500, `expected a 4xx, got ${answer.statusCode}: ${answer.body.slice(0, 200)}`)
  if (expected.status !== undefined) assert.equal(answer.statusCode, expected.status, answer.body.slice(0, 200))
  const parsed = JSON.parse(answer.body) as { error?: { code?: unknown, message?: unknown } }
  assert.deepEqual(Object.keys(parsed), ['error'])
  assert.deepEqual(Object.keys(parsed.error ?? {}).sort(), ['code', 'message'])
  const code = parsed.error?.code
  assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_CODES, code), `undocumented code ${String(code)}`)
  assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES].status, answer.statusCode, `${code} answered with another status`)
  if (expected.codes !== undefined) assert.ok(expected.codes.includes(code), `${code} is not one of ${expected.codes.join(', ')}`)
  assertNoEcho(answer.body, payload)
  return code
}

/** Neither the marker nor (when 12+ characters, so not a coincidence) the payload itself is in `body`. */
export function assertNoEcho(body: string, payload?: string | Buffer): void {
  assert.ok(!body.includes(ECHO_MARKER), 'the answer echoes the payload')
  if (payload === undefined) return
  const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload
  if (text.length >= 12) assert.ok(!body.includes(text), 'the answer echoes the payload')
}

/** Row counts of the tables a request could write to. */
export async function rowCounts(db: Queryable, tables: readonly string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const table of tables) {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
    counts[table] = rows[0]?.n ?? Number.NaN
  }
  return counts
}

/** Own property names of Object.prototype, to compare before and after hostile input. */
export function prototypeSnapshot(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort()
}

export function assertPrototypeUntouched(before: readonly string[]): void {
  const probe = {} as Record<string, unknown>
  for (const key of ['polluted', 'isAdmin', ECHO_MARKER]) assert.equal(probe[key], undefined, `Object.prototype.${key} was set`)
  assert.deepEqual(prototypeSnapshot(), before)
}

export interface StreamedAnswer {
  status: number
  body: string
  /** Bytes handed to the socket when the answer arrived. */
  bytesSent: number
  /** Whether the whole planned body had been sent by then (false: the server answered mid-body). */
  finishedSending: boolean
  /** Tries cut off by the server before its answer could be read (a reset racing the 413); at most 2. */
  cutOff: number
}

interface StreamOptions { prefix: string, filler: string, totalBytes: number, chunkBytes: number }

/**
 * POSTs `totalBytes` of `filler` (after `prefix`) without Content-Length — Transfer-Encoding: chunked, unless the
 * headers declare a length — in `chunkBytes` pieces, pausing between them, and stops sending as soon as an
 * answer arrives. A server that buffers the whole body before answering only answers once everything was sent.
 * A server that refuses early closes the connection while the client still writes; when its reset beats the
 * answer to the client (EPIPE, ECONNRESET), the request is tried again, at most twice.
 */
export async function postChunkedUntilAnswered(url: string, headers: Record<string, string>, options: StreamOptions): Promise<StreamedAnswer> {
  for (let cutOff = 0; ; cutOff++) {
    try {
      return { ...await streamOnce(url, headers, options), cutOff }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (cutOff >= 2 || (code !== 'EPIPE' && code !== 'ECONNRESET')) throw error
    }
  }
}

async function streamOnce(url: string, headers: Record<string, string>, options: StreamOptions): Promise<Omit<StreamedAnswer, 'cutOff'>> {
  const target = new URL(url)
  const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent: false, headers })
  let bytesSent = 0
  let finishedSending = false
  let answered = false
  const answer = new Promise<Omit<StreamedAnswer, 'cutOff'>>((resolve, reject) => {
    req.on('error', reject)
    req.on('response', (response) => {
      answered = true
      const sentWhenAnswered = bytesSent
      const finishedWhenAnswered = finishedSending
      const parts: Buffer[] = []
      response.on('data', (part: Buffer) => parts.push(part))
      response.on('error', reject)
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), bytesSent: sentWhenAnswered, finishedSending: finishedWhenAnswered })
      })
    })
  })
  // Awaited below; a rejection while the loop still writes must not count as unhandled.
  answer.catch(() => {})
  try {
    const chunk = options.filler.repeat(Math.ceil(options.chunkBytes / options.filler.length)).slice(0, options.chunkBytes)
    // Headers first: a server that refuses on a declared Content-Length answers before any body byte is sent.
    req.flushHeaders()
    await Promise.race([once(req, 'response'), sleep(20)]).catch(() => {})
    if (answered) return await answer
    req.write(options.prefix)
    bytesSent += Buffer.byteLength(options.prefix)
    while (!answered && bytesSent < options.totalBytes && !req.destroyed) {
      if (!req.write(chunk)) await Promise.race([once(req, 'drain'), once(req, 'close'), answer]).catch(() => {})
      bytesSent += chunk.length
      // Paced like a slow client, so the server reads (and can refuse) while the body is still arriving; the
      // setImmediate lets an answer that arrived meanwhile be read before the next write.
      await sleep(1)
      await new Promise((resolve) => setImmediate(resolve))
    }
    if (!answered && !req.destroyed) {
      finishedSending = true
      req.end()
    }
    return await answer
  } finally {
    // Never leave the connection open: the app's stop would wait for it.
    req.destroy()
  }
}
