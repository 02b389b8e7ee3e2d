import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { isStorableText } from '../../src/domain/validation.ts'
import { OURA_DATA_TYPES, isOuraDataType } from '../../src/providers/oura/documents.ts'
import { OURA_OLD_SECRET, OURA_TEST_SECRET, OURA_VERIFICATION_TOKEN, notification, signOura } from '../fixtures/oura/webhook.ts'
import { WHOOP_OLD_SECRET, WHOOP_TEST_SECRET, signWhoop, whoopNotification } from '../fixtures/whoop/webhook.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import {
  ECHO_MARKER, InputTally, WRONG_CONTENT_TYPES, assertPrototypeUntouched, assertRefused, postChunkedUntilAnswered, prototypeSnapshot, type Answer
} from '../helpers/hostile.ts'
import { ADAPTERS } from '../helpers/services.ts'

/**
 * Hostile input to the provider webhooks (reference reliability-security §7.3: B1–B7, B12, B13). Whatever arrives,
 * the answer is never a 5xx, a refusal carries a documented code and does not echo the payload, and only a real
 * notification writes a receipt. Covered elsewhere and not repeated: test/http/{oura,whoop}-webhooks.int.test.ts
 * 'refuses every signature failure mode…' (wrong secret, ±301 s, truncated, hex/base64 swapped, ms/s confusion,
 * re-serialized body, missing headers, an old secret of the rotation list accepted), 'stores a verified
 * notification…' (a redelivery answers duplicate; unknown types are ignored and counted) and 'malformed but
 * signed bodies get 400…'. A replay after the window is the stale-timestamp case there. Here: properties.
 */

/** The app's clock, fixed so the tolerance boundaries are exact; the .5 s puts Oura's whole seconds off-centre. */
const NOW_MS = Date.UTC(2026, 0, 8, 12, 0, 0, 500)
const TOLERANCE_S = 300
const BODY_LIMIT = 64 * 1024
const ENV = {
  OURA_CLIENT_ID: 'hostile-oura-client',
  // Oura mid-rotation (new and old secret verify), WHOOP after it (the old one no longer does): B4 both ways.
  OURA_CLIENT_SECRET: `${OURA_TEST_SECRET},${OURA_OLD_SECRET}`,
  OURA_WEBHOOK_VERIFICATION_TOKEN: OURA_VERIFICATION_TOKEN,
  WHOOP_CLIENT_ID: 'hostile-whoop-client',
  WHOOP_CLIENT_SECRET: WHOOP_TEST_SECRET,
  // Intake only: receipts stay as intake stored them.
  MAX_CONCURRENT_WEBHOOKS: '0'
}

interface Dialect {
  provider: 'oura' | 'whoop'
  url: string
  secrets: readonly string[]
  signatureHeader: string
  timestampHeader: string
  /** A notification that is accepted, new work for every distinct `id`. */
  body(id: string): string
  sign(body: string | Buffer, timestamp: string, secret?: string): string
  /** The MAC bytes in the provider's encoding, and back. */
  encoding: 'hex' | 'base64'
  timestamp(skewMs?: number): string
  /** The same timestamp written in the other provider's unit: the classic ms/s mix-up. */
  wrongUnitTimestamp(skewMs: number): string
  /** What the provider's verifier must accept, as the reference states it: format and window. */
  timestampValid(timestamp: string): boolean
}

const DIALECTS: readonly Dialect[] = [{
  provider: 'oura', url: '/webhooks/oura', secrets: [OURA_TEST_SECRET, OURA_OLD_SECRET],
  signatureHeader: 'x-oura-signature', timestampHeader: 'x-oura-timestamp',
  body: (id) => notification({ object_id: id }), sign: signOura, encoding: 'hex',
  timestamp: (skewMs = 0) => String(Math.floor((NOW_MS + skewMs) / 1000)),
  wrongUnitTimestamp: (skewMs) => String(NOW_MS + skewMs),
  timestampValid: (ts) => /^\d{9,11}$/.test(ts) && Math.abs(NOW_MS / 1000 - Number(ts)) <= TOLERANCE_S
}, {
  provider: 'whoop', url: '/webhooks/whoop', secrets: [WHOOP_TEST_SECRET],
  signatureHeader: 'x-whoop-signature', timestampHeader: 'x-whoop-signature-timestamp',
  body: (id) => whoopNotification({ traceId: id }), sign: signWhoop, encoding: 'base64',
  timestamp: (skewMs = 0) => String(NOW_MS + skewMs),
  wrongUnitTimestamp: (skewMs) => String(Math.floor((NOW_MS + skewMs) / 1000)),
  timestampValid: (ts) => /^\d{12,14}$/.test(ts) && Math.abs(NOW_MS - Number(ts)) <= TOLERANCE_S * 1000
}]

function signed(dialect: Dialect, body: string | Buffer, options: { timestamp?: string, secret?: string, signature?: string } = {}): Record<string, string> {
  const timestamp = options.timestamp ?? dialect.timestamp()
  const signature = options.signature ?? dialect.sign(body, timestamp, options.secret)
  return { 'content-type': 'application/json', [dialect.timestampHeader]: timestamp, [dialect.signatureHeader]: signature }
}

/** Inserts raw `"key":value` members before the closing brace of a notification's JSON text. */
function withMembers(body: string, members: readonly string[]): string {
  return members.length === 0 ? body : `${body.slice(0, -1)},${members.join(',')}}`
}

let unique = 0
const nextId = (tag: string): string => `${tag}-${++unique}`

const tally = new InputTally()

async function send(harness: TestApp, method: 'GET' | 'POST', url: string, headers: Record<string, string | string[]>, payload?: string | Buffer): Promise<Answer> {
  const response = await harness.app.http.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })
  assert.ok(response.statusCode < 500, `${method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 200)}`)
  return response
}

async function receiptCount(harness: TestApp): Promise<number> {
  const { rows } = await harness.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_receipts')
  return rows[0]?.n ?? Number.NaN
}

/** Sends one request that must be refused; checks the answer and that no receipt was written. */
async function refused(
  harness: TestApp, dialect: Dialect, headers: Record<string, string | string[]>, payload: string | Buffer | undefined,
  expected: { status?: number, codes?: readonly string[] }
): Promise<void> {
  const before = await receiptCount(harness)
  assertRefused(await send(harness, 'POST', dialect.url, headers, payload), expected, payload)
  assert.equal(await receiptCount(harness), before, 'a refused webhook wrote a receipt')
}

const statusOf = (answer: Answer): string => (JSON.parse(answer.body) as { status: string }).status

const MISMATCH = { status: 401, codes: ['BB_SIGNATURE_MISMATCH'] }
const MALFORMED = { status: 400, codes: ['BB_WEBHOOK_MALFORMED'] }
const HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive'])

describe('Hostile webhook input', () => {
  after((suite) => { suite.diagnostic(tally.summary(`webhooks, ${ADAPTERS.join(' + ')}`)) })

  for (const adapter of ADAPTERS) {
    test(adapter, async (t) => {
      const harness = await buildTestApp(t, adapter, ENV, { now: () => NOW_MS })
      if (harness === undefined) return
      const prototypeBefore = prototypeSnapshot()

      await t.test('B1: malformed, mis-encoded or wrongly keyed signatures get 401 and write nothing', async (st) => {
        for (const dialect of DIALECTS) {
          const body = dialect.body(nextId('b1'))
          const timestamp = dialect.timestamp()
          const valid = dialect.sign(body, timestamp)
          const mac = Buffer.from(valid, dialect.encoding)
          const sha512 = createHmac('sha512', dialect.secrets[0]!).update(timestamp).update(body).digest()
          const cases: Array<[string, string | string[]]> = [
            ['empty', ''],
            ['base64url', mac.toString('base64url')],
            ['base64 without padding', mac.toString('base64').replace(/=+$/, '')],
            ['the other provider\'s encoding', dialect.encoding === 'hex' ? mac.toString('base64') : mac.toString('hex')],
            ['HMAC-SHA512 (wrong length)', sha512.toString(dialect.encoding)],
            ['HMAC-SHA1 (wrong length)', createHmac('sha1', dialect.secrets[0]!).update(timestamp + body).digest(dialect.encoding)],
            ['GitHub-style sha256= prefix', `sha256=${valid}`],
            ['timestamp after the body', createHmac('sha256', dialect.secrets[0]!).update(body + timestamp).digest(dialect.encoding)],
            ['the header twice', [valid, valid]],
            ['a non-ASCII first character', `\u00c0${valid.slice(1)}`],
            ...(dialect.provider === 'whoop' ? [['the old secret after the rotation ended', signWhoop(body, timestamp, WHOOP_OLD_SECRET)] as [string, string]] : [])
          ]
          for (const [name, signature] of cases) {
            tally.fixed++
            const headers = { ...signed(dialect, body, { timestamp }), [dialect.signatureHeader]: signature }
            await st.test(`${dialect.provider}: ${name}`, () => refused(harness, dialect, headers, body, MISMATCH))
          }

          // Any signature other than the right MAC in the right encoding: random MACs, truncations, one changed
          // character (case-insensitively different for hex), extra characters.
          const alphabet = dialect.encoding === 'hex' ? '0123456789ABCDEF' : 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
          const mutation = fc.oneof(
            fc.record({
              kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }), as: fc.constantFrom('hex', 'HEX', 'base64', 'base64url')
            }),
            fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat({ max: valid.length - 1 }) }),
            fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: 40 }), to: fc.constantFrom(...alphabet) }),
            fc.record({ kind: fc.constant('extend' as const), extra: fc.string({ unit: fc.constantFrom(...alphabet, '='), minLength: 1, maxLength: 4 }) }))
          const before = await receiptCount(harness)
          await fc.assert(fc.asyncProperty(mutation, async (change) => {
            const runBody = dialect.body(nextId('b1p'))
            const right = dialect.sign(runBody, timestamp)
            let signature: string
            if (change.kind === 'random') {
              const bytes = Buffer.from(change.bytes)
              signature = change.as === 'HEX' ? bytes.toString('hex').toUpperCase() : bytes.toString(change.as)
            } else if (change.kind === 'truncate') {
              signature = right.slice(0, change.keep)
            } else if (change.kind === 'flip') {
              fc.pre(right[change.at]!.toLowerCase() !== change.to.toLowerCase())
              signature = right.slice(0, change.at) + change.to + right.slice(change.at + 1)
            } else {
              signature = right + change.extra
            }
            tally.property++
            const answer = await send(harness, 'POST', dialect.url, signed(dialect, runBody, { timestamp, signature }), runBody)
            assertRefused(answer, MISMATCH, runBody)
          }), { seed: 42, numRuns: 60 })
          assert.equal(await receiptCount(harness), before)
        }
      })

      await t.test('B2: a replayed delivery answers 200 once stored and never writes a second receipt', async () => {
        for (const dialect of DIALECTS) {
          const plan = fc.record({
            pool: fc.integer({ min: 1, max: 3 }),
            deliveries: fc.array(fc.record({ pick: fc.nat(), skewMs: fc.integer({ min: -250_000, max: 250_000 }) }), { minLength: 1, maxLength: 8 })
          })
          await fc.assert(fc.asyncProperty(plan, async ({ pool, deliveries }) => {
            tally.property++
            const bodies = Array.from({ length: pool }, () => dialect.body(nextId('b2')))
            const before = await receiptCount(harness)
            const seen = new Set<number>()
            for (const { pick, skewMs } of deliveries) {
              const index = pick % pool
              // A provider's retry is signed again, with its own timestamp, over the same bytes.
              const answer = await send(harness, 'POST', dialect.url, signed(dialect, bodies[index]!, { timestamp: dialect.timestamp(skewMs) }), bodies[index])
              assert.equal(answer.statusCode, 200, answer.body)
              assert.equal(statusOf(answer), seen.has(index) ? 'duplicate' : 'accepted')
              seen.add(index)
            }
            assert.equal(await receiptCount(harness), before + seen.size)
          }), { seed: 42, numRuns: 20 })
        }
      })

      await t.test('B3: only timestamps in the provider\'s unit within ±300 s verify; the rest are 401 and write nothing', async () => {
        for (const dialect of DIALECTS) {
          const boundaries = [-360_000, -300_001, -300_000, -299_999, 0, 299_999, 300_000, 300_001, 360_000]
          const timestamp = fc.oneof(
            fc.oneof(fc.integer({ min: -900_000, max: 900_000 }), fc.constantFrom(...boundaries)).map((skew) => dialect.timestamp(skew)),
            fc.integer({ min: -900_000, max: 900_000 }).map((skew) => dialect.wrongUnitTimestamp(skew)),
            fc.stringMatching(/^[+-]?\d{8,15}(\.\d{1,3})?(e\d)?$/),
            fc.string({ maxLength: 16 }).filter((text) => text.trim() === text))
          await fc.assert(fc.asyncProperty(timestamp, async (ts) => {
            tally.property++
            const body = dialect.body(nextId('b3'))
            const before = await receiptCount(harness)
            const answer = await send(harness, 'POST', dialect.url, signed(dialect, body, { timestamp: ts }), body)
            if (dialect.timestampValid(ts)) {
              assert.equal(answer.statusCode, 200, `${ts} should verify`)
              assert.equal(await receiptCount(harness), before + 1)
            } else {
              assertRefused(answer, { status: 401, codes: ['BB_SIGNATURE_STALE'] }, body)
              assert.equal(await receiptCount(harness), before)
            }
          }), { seed: 42, numRuns: 80 })
        }
      })

      await t.test('B4: a delivery verifies exactly when signed with a configured secret', async () => {
        const anySecret = fc.oneof(fc.constantFrom(OURA_TEST_SECRET, OURA_OLD_SECRET, WHOOP_TEST_SECRET, WHOOP_OLD_SECRET), fc.string({ minLength: 1, maxLength: 40 }))
        for (const dialect of DIALECTS) {
          await fc.assert(fc.asyncProperty(anySecret, async (secret) => {
            tally.property++
            const body = dialect.body(nextId('b4'))
            const answer = await send(harness, 'POST', dialect.url, signed(dialect, body, { secret }), body)
            if (dialect.secrets.includes(secret)) assert.equal(statusOf(answer), 'accepted')
            else assertRefused(answer, MISMATCH, body)
          }), { seed: 42, numRuns: 30 })
        }
      })

      await t.test('B5: malformed, BOM-prefixed, mis-encoded, mistyped or missing bodies get 400/401/415, never 500', async (st) => {
        for (const dialect of DIALECTS) {
          const good = dialect.body(nextId('b5'))
          // Bad bytes in a member nobody validates: decoded leniently (U+FFFD) they would pass unnoticed.
          const [half, rest] = withMembers(dialect.body(nextId('b5')), ['"note":"~"']).split('~').map((part) => Buffer.from(part)) as [Buffer, Buffer]
          const signedBodies: Array<[string, string | Buffer]> = [
            ['truncated JSON', `{"event_type":"${ECHO_MARKER}`],
            ['a bare word', 'nul'],
            ['a trailing comma', `[1,"${ECHO_MARKER}",]`],
            ['two documents', `${good}{"${ECHO_MARKER}":1}`],
            ['a UTF-8 BOM', `\uFEFF${withMembers(good, [`"note":"${ECHO_MARKER}"`])}`],
            ['empty', ''],
            ['an invalid byte in a string', Buffer.concat([half, Buffer.from([0xff]), rest])],
            ['an overlong encoding', Buffer.concat([half, Buffer.from([0xc0, 0xaf]), rest])],
            ['a UTF-8-encoded surrogate', Buffer.concat([half, Buffer.from([0xed, 0xa0, 0x80]), rest])],
            ['a lone continuation byte', Buffer.concat([half, Buffer.from([0x80]), rest])],
            ['UTF-16LE', Buffer.from(good, 'utf16le')]
          ]
          for (const [name, body] of signedBodies) {
            tally.fixed++
            await st.test(`${dialect.provider}: signed ${name}`, () => refused(harness, dialect, signed(dialect, body), body, MALFORMED))
          }
          const unsigned: Array<[string, Record<string, string>, string | undefined, { status: number, codes: string[] }]> = [
            ['malformed and unsigned (the signature is checked first)', { 'content-type': 'application/json' }, `{"${ECHO_MARKER}"`,
              { status: 401, codes: ['BB_SIGNATURE_MISSING'] }],
            ['no body and no content type', {}, undefined, { status: 415, codes: ['BB_UNSUPPORTED_MEDIA_TYPE'] }],
            ['an empty JSON body, unsigned', { 'content-type': 'application/json' }, '', { status: 401, codes: ['BB_SIGNATURE_MISSING'] }]
          ]
          for (const contentType of WRONG_CONTENT_TYPES) {
            // Correctly signed: the content type alone decides.
            const headers = { ...signed(dialect, good), 'content-type': contentType }
            unsigned.push([`content type ${contentType}`, headers, good, { status: 415, codes: ['BB_UNSUPPORTED_MEDIA_TYPE'] }])
          }
          for (const [name, headers, body, expected] of unsigned) {
            tally.fixed++
            await st.test(`${dialect.provider}: ${name}`, () => refused(harness, dialect, headers, body, expected))
          }
        }
      })

      await t.test('B6: bodies over 64 KiB get 413 before they are read, with or without Content-Length', async () => {
        const base = await harness.app.listen()
        for (const dialect of DIALECTS) {
          // Padded to the limit exactly: still a notification; one byte more is refused.
          const padTo = (size: number): string => {
            const body = withMembers(dialect.body(nextId('b6')), ['"pad":""'])
            return body.replace('"pad":""', `"pad":"${'p'.repeat(size - Buffer.byteLength(body))}"`)
          }
          tally.fixed += 2
          const fits = padTo(BODY_LIMIT)
          assert.equal((await send(harness, 'POST', dialect.url, signed(dialect, fits), fits)).statusCode, 200)
          const over = padTo(BODY_LIMIT + 1)
          await refused(harness, dialect, signed(dialect, over), over, { status: 413, codes: ['BB_BODY_TOO_LARGE'] })

          for (const declared of [undefined, 1024 ** 3]) {
            tally.fixed++
            const headers: Record<string, string> = { ...signed(dialect, 'x'), connection: 'close' }
            if (declared !== undefined) headers['content-length'] = String(declared)
            const before = await receiptCount(harness)
            const answer = await postChunkedUntilAnswered(`${base}${dialect.url}`, headers, {
              prefix: `{"event_type":"update","pad":"${ECHO_MARKER}`, filler: ECHO_MARKER, totalBytes: 64 * BODY_LIMIT, chunkBytes: 16 * 1024
            })
            assertRefused({ statusCode: answer.status, body: answer.body }, { status: 413, codes: ['BB_BODY_TOO_LARGE'] })
            assert.equal(answer.finishedSending, false, 'answered only after the whole body')
            assert.ok(answer.bytesSent < 16 * BODY_LIMIT, `${answer.bytesSent} bytes sent before the 413`)
            assert.equal(await receiptCount(harness), before)
          }
        }
      })

      await t.test('B7: deep nesting, huge arrays and prototype keys: a fast 4xx or a plain receipt, Object.prototype untouched', async () => {
        for (const dialect of DIALECTS) {
          const deep: Array<[string, string, number]> = [
            ['100,000 nested arrays', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 413],
            ['32,000 nested arrays', `${'['.repeat(32_000)}${']'.repeat(32_000)}`, 400],
            ['10,000 nested objects', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, 400],
            // A 16-digit run takes the reviver path (exact int64 ids), which walks the whole tree.
            ['30,000 nested arrays around a 16-digit number', `${'['.repeat(30_000)}1234567890123456${']'.repeat(30_000)}`, 400],
            ['a 30,000-element array', `[${'0,'.repeat(30_000)}0]`, 400],
            ['__proto__ as the only key', `{"__proto__":${dialect.body(nextId('b7'))}}`, 400]
          ]
          for (const [name, body, status] of deep) {
            tally.fixed++
            const startedAt = performance.now()
            await refused(harness, dialect, signed(dialect, body), body, { status })
            const ms = performance.now() - startedAt
            assert.ok(ms < 500, `${dialect.provider}: ${name} took ${ms.toFixed(0)} ms`)
          }
          const hostileMembers = [
            '"__proto__":{"polluted":true,"isAdmin":true}', '"constructor":{"prototype":{"polluted":true}}',
            '"prototype":{"isAdmin":true}', '"n":12345678901234567890'
          ]
          tally.fixed++
          const body = withMembers(dialect.body(nextId('b7-proto')), hostileMembers)
          assert.equal(statusOf(await send(harness, 'POST', dialect.url, signed(dialect, body), body)), 'accepted', 'extra members are ignored')
        }
        assertPrototypeUntouched(prototypeBefore)
      })

      await t.test('B12: unknown types and extra members are acknowledged (ignored, counted); unstorable text is a 400', async () => {
        const ignoredBefore = await ignoredCount(harness)
        let ignored = 0
        const hostileText = fc.string({ unit: fc.constantFrom('a', '_', '.', 'é', '😀', '\u0000', '\ud800', '\udfff', ' '), maxLength: 12 })
        const member = fc.tuple(
          fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString')),
          fc.jsonValue({ maxDepth: 3 })
        ).filter(([key]) => !['event_type', 'data_type', 'object_id', 'event_time', 'user_id', 'id', 'type', 'trace_id'].includes(key))
          .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
        const members = fc.array(member, { maxLength: 4 })

        const oura = DIALECTS[0]!
        // Escapes JSON allows but PostgreSQL text cannot hold (these answered 500 before the fix).
        for (const [field, value] of [['data_type', 'tag\u0000'], ['data_type', 'tag\ud800'], ['event_time', '\udfff'], ['event_time', '2026\u0000']]) {
          tally.fixed++
          const body = notification({ object_id: nextId('b12-text'), [field!]: value })
          await refused(harness, oura, signed(oura, body), body, MALFORMED)
        }
        const dataType = fc.oneof(fc.constantFrom(...OURA_DATA_TYPES, 'enhanced_tag', 'session', 'workout', 'ring_configuration', 'vO2_max'),
          fc.string({ maxLength: 140 }), hostileText)
        await fc.assert(fc.asyncProperty(dataType, fc.constantFrom('create', 'update', 'delete'), members, async (type, eventType, extra) => {
          tally.property++
          const body = withMembers(notification({ object_id: nextId('b12'), data_type: type, event_type: eventType }), extra)
          const answer = await send(harness, 'POST', oura.url, signed(oura, body), body)
          if (type.length === 0 || type.length > 128 || !isStorableText(type)) {
            assertRefused(answer, MALFORMED, body)
            return
          }
          assert.equal(statusOf(answer), isOuraDataType(type) ? 'accepted' : 'ignored')
          if (!isOuraDataType(type)) ignored++
        }), { seed: 42, numRuns: 60 })

        const whoop = DIALECTS[1]!
        const word = fc.oneof(fc.constantFrom('sleep', 'recovery', 'workout', 'cycle', 'body_measurement', 'updated', 'deleted', 'created'),
          fc.stringMatching(/^[a-z_]{1,40}$/))
        const type = fc.oneof(fc.tuple(word, word).map(([data, event]) => `${data}.${event}`), fc.string({ maxLength: 30 }), hostileText)
        await fc.assert(fc.asyncProperty(type, members, async (whoopType, extra) => {
          tally.property++
          const body = withMembers(whoopNotification({ traceId: nextId('b12w'), type: whoopType }), extra)
          const answer = await send(harness, 'POST', whoop.url, signed(whoop, body), body)
          const shape = /^([a-z_]{1,40})\.([a-z_]{1,40})$/.exec(whoopType)
          if (shape === null) {
            assertRefused(answer, MALFORMED, body)
            return
          }
          const handled = ['sleep', 'recovery', 'workout'].includes(shape[1]!) && ['updated', 'deleted'].includes(shape[2]!)
          assert.equal(statusOf(answer), handled ? 'accepted' : 'ignored')
          if (!handled) ignored++
        }), { seed: 42, numRuns: 60 })
        assert.equal(await ignoredCount(harness) - ignoredBefore, ignored, 'every ignored notification is counted')
        assertPrototypeUntouched(prototypeBefore)
      })

      await t.test('B13: the Oura handshake with a wrong token is 401 and never echoes the challenge', async () => {
        const token = OURA_VERIFICATION_TOKEN
        const handshake = (query: string): Promise<Answer> => send(harness, 'GET', `/webhooks/oura?${query}`, {})
        const wrongToken = fc.oneof(fc.string({ maxLength: 60 }),
          fc.constantFrom(`${token}x`, token.slice(0, -1), token.toUpperCase(), ` ${token}`, `${token}\u0000`, `${token} `, ''))
          .filter((candidate) => candidate !== token)
        await fc.assert(fc.asyncProperty(wrongToken, fc.string({ maxLength: 40 }), async (candidate, suffix) => {
          tally.property++
          const query = new URLSearchParams({ verification_token: candidate, challenge: `${ECHO_MARKER}${suffix}` }).toString()
          assertRefused(await handshake(query), { status: 401, codes: ['BB_VERIFICATION_TOKEN_MISMATCH'] })
        }), { seed: 42, numRuns: 60 })

        // Raw query strings built from pieces: repeated keys, broken percent escapes, NULs, the right token.
        const piece = fc.constantFrom('verification_token=', token, 'challenge=', ECHO_MARKER, '&', '=', '%', '%zz', '%00', '%E0%A4%A', '+', ';', 'a')
        await fc.assert(fc.asyncProperty(fc.string({ unit: piece, maxLength: 12 }), async (query) => {
          tally.property++
          const answer = await handshake(query)
          if (answer.statusCode === 200) {
            assert.ok(query.includes(`verification_token=${token}`), `a handshake without the token answered 200: ${query}`)
          } else {
            assertRefused(answer)
          }
        }), { seed: 42, numRuns: 80 })

        const fixed: Array<[string, number]> = [
          [`verification_token=${token}&verification_token=${token}&challenge=${ECHO_MARKER}`, 401],
          [`verification_token=nope&challenge=${ECHO_MARKER}`, 401],
          [`verification_token=${token}&challenge=${ECHO_MARKER}&challenge=x`, 400],
          [`verification_token=${token}&challenge=${ECHO_MARKER}${'c'.repeat(600)}`, 400],
          [`verification_token=${token}&challenge=`, 400]
        ]
        for (const [query, status] of fixed) {
          tally.fixed++
          assertRefused(await handshake(query), { status })
        }
      })

      await t.test('arbitrary bytes, JSON and headers never get a 5xx; afterwards the app is healthy and still stores', async () => {
        const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((name) => !HOP_BY_HOP.has(name))
        const contentType = fc.oneof(fc.string({ maxLength: 30 }),
          fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/octet-stream', ''))
        const body = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
          fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)), fc.string({ maxLength: 300 }))
        const request = fc.record({
          route: fc.constantFrom(...DIALECTS.map((_, index) => index), -1),
          body, contentType, sign: fc.boolean(),
          headers: fc.dictionary(headerName, fc.string({ maxLength: 40 }), { maxKeys: 4 }),
          query: fc.string({ maxLength: 40 }).map((text) => encodeURIComponent(text))
        })
        await fc.assert(fc.asyncProperty(request, async (input) => {
          tally.property++
          if (input.route === -1) {
            const answer = await send(harness, 'GET', `/webhooks/oura?${input.query}`, input.headers)
            assert.notEqual(answer.statusCode, 200)
            assertRefused(answer)
            return
          }
          const dialect = DIALECTS[input.route]!
          const headers: Record<string, string> = { ...input.headers, 'content-type': input.contentType }
          if (input.sign) Object.assign(headers, { ...signed(dialect, input.body), 'content-type': input.contentType })
          const before = await receiptCount(harness)
          const answer = await send(harness, 'POST', dialect.url, headers, input.body)
          const stored = answer.statusCode === 200 && ['accepted', 'ignored'].includes(statusOf(answer))
          if (answer.statusCode !== 200) assertRefused(answer, {}, input.body)
          assert.equal(await receiptCount(harness), before + (stored ? 1 : 0))
        }), { seed: 42, numRuns: 200 })

        assert.equal((await send(harness, 'GET', '/healthz', {})).statusCode, 200)
        for (const dialect of DIALECTS) {
          const good = dialect.body(nextId('healthy'))
          assert.equal(statusOf(await send(harness, 'POST', dialect.url, signed(dialect, good), good)), 'accepted')
        }
        const challenge = await send(harness, 'GET', `/webhooks/oura?verification_token=${OURA_VERIFICATION_TOKEN}&challenge=still-ok`, {})
        assert.deepEqual(JSON.parse(challenge.body), { challenge: 'still-ok' })
        assertPrototypeUntouched(prototypeBefore)
      })
    })
  }
})

async function ignoredCount(harness: TestApp): Promise<number> {
  const metrics = (await harness.app.http.inject({ method: 'GET', url: '/metrics' })).body
  let total = 0
  for (const match of metrics.matchAll(/^webhook_events_ignored_total\{[^}]*\} (\d+)$/gm)) total += Number(match[1])
  return total
}
