import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { ERROR_CODES } from '../../src/errors.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { buildTestApp, type TestApp } from '../helpers/app.ts'
import {
  ECHO_MARKER, InputTally, WRONG_CONTENT_TYPES, assertNoEcho, assertPrototypeUntouched, assertRefused, postChunkedUntilAnswered, prototypeSnapshot,
  rowCounts, type Answer
} from '../helpers/hostile.ts'
import { ADAPTERS } from '../helpers/services.ts'

/**
 * Hostile input to the HealthKit uploads (reference reliability-security §7.3: B5–B11). A broken body is a 4xx
 * that stores nothing; a broken sample is a per-sample rejection with a documented code inside a 200; what is
 * stored is finite, in range and in the catalog's unit. Covered elsewhere and not repeated:
 * test/http/healthkit.int.test.ts 'rejects oversized uploads with 413 and stores nothing' (Content-Length over
 * the limit, a chunked body through inject), 'answers malformed JSON with 400…' (truncated JSON, trailing
 * garbage, 50,000 nested arrays, form/text content types, a BOM accepted, one __proto__ sample), 'streams a large
 * upload…' (a syntax error after the first flush rolls back); test/domain/{build-event,validation,units}.test.ts
 * hold the pure properties of conversion, bounds and time checks.
 */

/** The app's clock, fixed so the 24-hour future bound is exact. */
const NOW_MS = Date.UTC(2026, 0, 8, 12, 0, 0)
const MAX_SAMPLES = 5500
const MAX_BODY_BYTES = 1024 * 1024
const ENV = { HEALTHKIT_MAX_SAMPLES: String(MAX_SAMPLES), HEALTHKIT_MAX_BODY_BYTES: String(MAX_BODY_BYTES) }
const ROUTES = ['/v1/healthkit/batch', '/v1/healthkit/auto-export'] as const
const TABLES = ['events', 'outbox'] as const
const SAMPLE_CODES = Object.keys(ERROR_CODES).filter((code) => code.startsWith('BB_SAMPLE_'))
const HOUR_MS = 3_600_000
const HR = 'HKQuantityTypeIdentifierHeartRate'

interface UploadBody {
  accepted: number
  duplicates: number
  rejected: Array<{ index: number, path: string, code: string, message: string }>
  rejected_count: number
  ignored: number
  deleted: number
  unsupported_metrics: string[]
}

let unique = 0
const nextUuid = (): string => `HOSTILE-${++unique}`
const iso = (ms: number): string => new Date(ms).toISOString()
/** A heart-rate sample without source and device: small, so 5,501 of them fit under the body limit. */
const lean = (index: number, overrides: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ ...heartRate(index), uuid: nextUuid(), source: undefined, device: undefined, ...overrides })

const tally = new InputTally()

/** A 200 upload answer: every rejection has a documented sample code and a message without the payload. */
function uploadBody(answer: Answer, payload?: string): UploadBody {
  assert.equal(answer.statusCode, 200, answer.body.slice(0, 300))
  const body = JSON.parse(answer.body) as UploadBody
  for (const rejection of body.rejected) assert.ok(SAMPLE_CODES.includes(rejection.code), rejection.code)
  assert.ok(body.rejected_count >= body.rejected.length)
  assertNoEcho(body.rejected.map((rejection) => rejection.message).join('\n'), payload)
  return body
}

const codeAt = (body: UploadBody, index: number): string | undefined => body.rejected.find((rejection) => rejection.index === index)?.code

describe('Hostile HealthKit input', () => {
  after((suite) => { suite.diagnostic(tally.summary(`healthkit, ${ADAPTERS.join(' + ')}`)) })

  for (const adapter of ADAPTERS) {
    test(adapter, async (t) => {
      const harness: TestApp | undefined = await buildTestApp(t, adapter, ENV, { now: () => NOW_MS })
      if (harness === undefined) return
      const { app } = harness
      const headers = await harness.deviceHeaders(`hostile-${adapter}`)
      const prototypeBefore = prototypeSnapshot()
      const counts = () => rowCounts(app.db, TABLES)
      const send = async (url: string, payload: string | Buffer | Readable | undefined, requestHeaders: Record<string, string> = headers): Promise<Answer> => {
        const response = await app.http.inject({ method: 'POST', url, headers: requestHeaders, ...(payload === undefined ? {} : { payload }) })
        assert.ok(response.statusCode < 500, `${url} answered ${response.statusCode}: ${response.body.slice(0, 200)}`)
        return response
      }
      /** Sends a request that must be refused as a whole, and checks that nothing was stored. */
      const refused = async (
        url: string, payload: string | Buffer | Readable | undefined, expected: { status: number, codes?: string[] }, requestHeaders = headers
      ): Promise<void> => {
        const before = await counts()
        assertRefused(await send(url, payload, requestHeaders), expected, typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : undefined)
        assert.deepEqual(await counts(), before, 'a refused upload stored something')
      }
      const storedValue = async (uuid: string): Promise<number | undefined> => {
        const { rows } = await app.db.query<{ value: number }>('SELECT value FROM events WHERE source_record_id = $1', [uuid])
        return rows[0]?.value
      }

      await t.test('B5: malformed, mis-encoded, mistyped or missing bodies get 400/415 and store nothing', async () => {
        const valid = batch([lean(0)])
        const malformed = { status: 400, codes: ['BB_MALFORMED_JSON'] }
        const unsupported = { status: 415, codes: ['BB_UNSUPPORTED_MEDIA_TYPE'] }
        for (const url of ROUTES) {
          const cases: Array<[string | Buffer | undefined, Record<string, string>, { status: number, codes: string[] }]> = [
            [`{"samples":[{"uuid":"${ECHO_MARKER}`, headers, malformed],
            ['nul', headers, malformed],
            [`[1,"${ECHO_MARKER}",]`, headers, malformed],
            [`\uFEFF{"samples":[{"${ECHO_MARKER}"`, headers, malformed],
            ['', headers, malformed],
            [Buffer.concat([Buffer.from([0xff]), Buffer.from(valid)]), headers, malformed],
            [Buffer.from(valid, 'utf16le'), headers, malformed],
            [undefined, { authorization: headers.authorization! }, unsupported]
          ]
          for (const contentType of WRONG_CONTENT_TYPES) {
            cases.push([valid, { ...headers, 'content-type': contentType }, unsupported])
          }
          for (const [payload, requestHeaders, expected] of cases) {
            tally.fixed++
            await refused(url, payload, expected, requestHeaders)
          }
        }
        // Valid JSON that is not an upload (nothing to store, a misspelt key) is refused, never a 200 with 0 stored.
        const notAnUpload = { status: 400, codes: ['BB_INVALID_REQUEST'] }
        const shapes: Array<[string, string]> = [
          [ROUTES[0], '{}'], [ROUTES[0], '[]'], [ROUTES[0], '42'], [ROUTES[0], `{"sample":[${JSON.stringify(lean(0))}]}`],
          [ROUTES[0], `{"samples":{"0":${JSON.stringify(lean(0))}}}`], [ROUTES[0], '{"samples":5}'], [ROUTES[0], '{"samples":{}}'],
          [ROUTES[0], '{"deleted":null}'], [ROUTES[0], '{"samples":"[]"}'], [ROUTES[1], '{}'], [ROUTES[1], '{"metrics":[]}']
        ]
        for (const [url, payload] of shapes) {
          tally.fixed++
          await refused(url, payload, notAnUpload)
        }
        tally.fixed++
        assert.equal(uploadBody(await send(ROUTES[0], '{"samples":[]}')).accepted, 0, 'an empty list is a valid (empty) upload')
        // Invalid UTF-8 inside a string is that sample's problem only (the splitter decodes it as U+FFFD).
        tally.fixed++
        const [head, tail] = batch([lean(0, { uuid: 'BAD~UTF8' }), lean(1)]).split('~') as [string, string]
        const mixed = uploadBody(await send(ROUTES[0], Buffer.concat([Buffer.from(head), Buffer.from([0xc3, 0x28]), Buffer.from(tail)])))
        assert.deepEqual([mixed.accepted, codeAt(mixed, 0)], [1, 'BB_SAMPLE_MALFORMED'])
      })

      await t.test('B6: bodies over the limit get 413 while still arriving, chunked or with a false Content-Length', async () => {
        const base = await app.listen()
        for (const url of ROUTES) {
          for (const declared of [undefined, 1024 ** 3]) {
            tally.fixed++
            const requestHeaders: Record<string, string> = { ...headers, connection: 'close' }
            if (declared !== undefined) requestHeaders['content-length'] = String(declared)
            const before = await counts()
            const answer = await postChunkedUntilAnswered(`${base}${url}`, requestHeaders, {
              prefix: `{"samples":[${JSON.stringify(lean(0))}],"pad":"`, filler: ECHO_MARKER, totalBytes: 16 * MAX_BODY_BYTES, chunkBytes: 32 * 1024
            })
            assertRefused({ statusCode: answer.status, body: answer.body }, { status: 413, codes: ['BB_BODY_TOO_LARGE'] })
            assert.equal(answer.finishedSending, false, 'answered only after the whole body')
            assert.ok(answer.bytesSent < 4 * MAX_BODY_BYTES, `${answer.bytesSent} bytes sent before the 413`)
            assert.deepEqual(await counts(), before)
          }
        }
      })

      await t.test('B7: deep nesting and huge arrays get a fast 4xx; prototype keys are plain data', async () => {
        const fast = async (url: string, payload: string | Readable, expected: { status: number, codes: string[] }): Promise<void> => {
          tally.fixed++
          const startedAt = performance.now()
          await refused(url, payload, expected)
          const ms = performance.now() - startedAt
          assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`)
        }
        const tooDeep = { status: 400, codes: ['BB_PAYLOAD_TOO_DEEP'] }
        for (const url of ROUTES) {
          await fast(url, '['.repeat(100_000), tooDeep)
          await fast(url, `{"samples":[{"value":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`, tooDeep)
          await fast(url, `{"data":{"metrics":[{"name":"heart_rate","data":[${'['.repeat(100_000)}`, tooDeep)
        }
        // A million-element array, streamed without Content-Length: refused at sample 5,501, long before its end.
        const million = Readable.from((function * () {
          yield '{"samples":['
          for (let i = 0; i < 100; i++) yield `${'0,'.repeat(10_000)}`
          yield '0]}'
        })())
        await fast(ROUTES[0], million, { status: 413, codes: ['BB_TOO_MANY_SAMPLES'] })

        tally.fixed++
        const hostileKeys = '"__proto__":{"polluted":true,"isAdmin":true},"constructor":{"prototype":{"polluted":true}},"prototype":{"isAdmin":true}'
        const sample = JSON.stringify(lean(0))
        const body = `{${hostileKeys},"__proto__":{"samples":[${JSON.stringify(lean(1))}]},"samples":[${sample.slice(0, -1)},${hostileKeys}},` +
          `{"__proto__":${sample}},${JSON.stringify(lean(2, { value: Array.from({ length: 100_000 }, () => 0) }))}]}`
        const native = uploadBody(await send(ROUTES[0], body))
        assert.deepEqual([native.accepted, codeAt(native, 1), codeAt(native, 2), native.rejected_count], [1, 'BB_SAMPLE_MALFORMED', 'BB_SAMPLE_MALFORMED', 2])

        tally.fixed++
        const point = { date: '2026-01-07 08:00:00 +0000', qty: 60, source: ECHO_MARKER }
        const span = (value: string) => ({ value, startDate: '2026-01-07 01:00:00 +0000', endDate: '2026-01-07 02:00:00 +0000' })
        const exported = uploadBody(await send(ROUTES[1], JSON.stringify({ data: {
          metrics: [...['__proto__', 'constructor', 'toString', 'hasOwnProperty'].map((name) => ({ name, units: 'count/min', data: [point] })),
            // A stage named after an Object.prototype member answered 500 before the fix.
            { name: 'sleep_analysis', units: 'hr', data: ['constructor', '__proto__', 'toString', 'valueOf'].map(span) }],
          workouts: [{ id: '__proto__', start: '2026-01-07 08:00:00 +0000', end: '2026-01-07 09:00:00 +0000', constructor: { qty: 1 } }]
        } })))
        assert.deepEqual([exported.accepted, exported.ignored, exported.rejected_count], [0, 9, 0])
        assert.deepEqual(exported.unsupported_metrics.sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString'])

        // Samples made of hostile keys and arbitrary values: answered per sample, never a 5xx, never pollution.
        const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'uuid', 'type', 'value', 'unit', 'start', 'end', 'source', 'device')
        const member = fc.tuple(key, fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(HR, '2026-01-07T08:00:00Z', 'count/min', 60)))
          .map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`)
        await fc.assert(fc.asyncProperty(fc.array(fc.array(member, { maxLength: 8 }), { minLength: 1, maxLength: 10 }), async (samples) => {
          tally.property++
          const payload = `{"samples":[${samples.map((members) => `{${members.join(',')}}`).join(',')}]}`
          const answer = uploadBody(await send(ROUTES[0], payload))
          assert.equal(answer.accepted + answer.duplicates + answer.rejected_count + answer.ignored, samples.length)
        }), { seed: 42, numRuns: 40 })
        assertPrototypeUntouched(prototypeBefore)
      })

      await t.test('B8: one sample over HEALTHKIT_MAX_SAMPLES is a 413 that stores nothing, even after a flush', async () => {
        const tooMany = { status: 413, codes: ['BB_TOO_MANY_SAMPLES'] }
        tally.fixed++
        // 5,000 events are written in the open transaction before sample 5,501 arrives: all rolled back.
        await refused(ROUTES[0], batch(Array.from({ length: MAX_SAMPLES + 1 }, (_, i) => lean(i))), tooMany)
        tally.fixed++
        const kept = lean(0)
        assert.equal(uploadBody(await send(ROUTES[0], batch([kept]))).accepted, 1)
        await refused(ROUTES[0], batch([], Array.from({ length: MAX_SAMPLES + 1 }, () => ({ uuid: kept.uuid, type: HR }))), tooMany)
        assert.equal(await storedValue(kept.uuid as string), kept.value, 'the refused deletions deleted nothing')
        tally.fixed++
        const points = Array.from({ length: MAX_SAMPLES + 1 }, (_, i) => ({ date: `2026-01-07 08:00:00 +0000`, qty: 60, source: `s${i}` }))
        await refused(ROUTES[1], JSON.stringify({ data: { metrics: [{ name: 'heart_rate', units: 'count/min', data: points }] } }), tooMany)
      })

      await t.test('B9: units are converted to the catalog\'s (stored = converted input) or the sample is rejected', async () => {
        type Conversion = [unit: string | undefined, toUnit: (x: number) => number, fromUnit: (v: number) => number]
        const linear = (unit: string | undefined, factor: number): Conversion => [unit, (x) => x / factor, (v) => v * factor]
        const kinds: Array<{ type: string, min: number, max: number, units: Conversion[] }> = [
          { type: HR, min: 20, max: 300, units: [linear('count/min', 1), linear('bpm', 1), linear(undefined, 1), linear('count/s', 60)] },
          {
            type: 'HKQuantityTypeIdentifierDistanceWalkingRunning', min: 0, max: 500_000,
            units: [linear('m', 1), linear('km', 1000), linear('mi', 1609.344), linear('ft', 0.3048)]
          },
          {
            type: 'HKQuantityTypeIdentifierActiveEnergyBurned', min: 0, max: 20_000,
            units: [linear('kcal', 1), linear('Cal', 1), linear('kJ', 1 / 4.184), linear('cal', 0.001)]
          },
          {
            type: 'HKQuantityTypeIdentifierAppleSleepingWristTemperature', min: 20, max: 45,
            units: [linear('degC', 1), ['degF', (x) => x * 9 / 5 + 32, (v) => (v - 32) * 5 / 9]]
          }
        ]
        const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))
        const sample = fc.record({
          kind: fc.nat(), unit: fc.nat(), position: fc.double({ min: -0.25, max: 1.25, noNaN: true }),
          wrongUnit: fc.option(fc.constantFrom('kg', 'lb', 'mg/dL', 'mmol/L', 'furlongs'), { freq: 5 })
        })
        await fc.assert(fc.asyncProperty(fc.array(sample, { minLength: 1, maxLength: 8 }), async (drawn) => {
          tally.property++
          const planned = drawn.map(({ kind: k, unit: u, position, wrongUnit }) => {
            const kind = kinds[k % kinds.length]!
            const [unit, toUnit, fromUnit] = kind.units[u % kind.units.length]!
            // x: the measurement in the catalog's unit, somewhat beyond both bounds too.
            const x = kind.min + position * (kind.max - kind.min)
            const value = toUnit(x)
            return { kind, value, expected: fromUnit(value), x, wrongUnit, body: lean(0, { type: kind.type, value, unit: wrongUnit ?? unit }) }
          })
          const answer = uploadBody(await send(ROUTES[0], batch(planned.map((entry) => entry.body))))
          for (const [index, entry] of planned.entries()) {
            const stored = await storedValue(entry.body.uuid as string)
            if (entry.wrongUnit !== null) {
              assert.equal(codeAt(answer, index), 'BB_SAMPLE_UNIT_UNSUPPORTED')
            } else if (stored !== undefined) {
              assert.ok(close(stored, entry.expected) && close(stored, entry.x), `${entry.value} ${String(entry.body.unit)} stored as ${stored}, expected ${entry.expected}`)
              assert.ok(stored >= entry.kind.min && stored <= entry.kind.max)
            } else {
              assert.equal(codeAt(answer, index), 'BB_SAMPLE_OUT_OF_RANGE')
              assert.ok(entry.expected < entry.kind.min + 1e-6 || entry.expected > entry.kind.max - 1e-6, `${entry.expected} was in range`)
            }
          }
          // A body mass in kg or lb has no catalog metric: refused per sample whatever its unit.
        }), { seed: 42, numRuns: 40 })
        tally.fixed++
        const mass = uploadBody(await send(ROUTES[0], batch(['kg', 'lb'].map((unit) => lean(0, { type: 'HKQuantityTypeIdentifierBodyMass', value: 70, unit })))))
        assert.deepEqual(mass.rejected.map((rejection) => rejection.code), ['BB_SAMPLE_UNKNOWN_TYPE', 'BB_SAMPLE_UNKNOWN_TYPE'])
      })

      await t.test('B10: NaN, infinities, -0, absurd values and strings-as-numbers are rejected per sample with a code', async () => {
        const expectedFor = (text: string): string | number => {
          const value: unknown = JSON.parse(text)
          if (typeof value !== 'number') return 'BB_SAMPLE_MALFORMED'
          if (!Number.isFinite(value)) return 'BB_SAMPLE_NOT_FINITE'
          return value >= 20 && value <= 300 ? value : 'BB_SAMPLE_OUT_OF_RANGE'
        }
        const check = async (texts: readonly string[], unit = 'count/min'): Promise<void> => {
          const uuids = texts.map(() => nextUuid())
          const samples = texts.map((text, index) =>
            `{"uuid":"${uuids[index]}","type":"${HR}","start":"2026-01-07T08:00:00Z","end":"2026-01-07T08:00:00Z","value":${text},"unit":"${unit}"}`)
          const answer = uploadBody(await send(ROUTES[0], `{"samples":[${samples.join(',')}]}`))
          for (const [index, text] of texts.entries()) {
            const expected = unit === 'count/min' ? expectedFor(text) : 'BB_SAMPLE_NOT_FINITE'
            const stored = await storedValue(uuids[index]!)
            if (typeof expected === 'number') {
              assert.equal(stored, expected, `value ${text}`)
            } else {
              assert.equal(codeAt(answer, index), expected, `value ${text}`)
              assert.equal(stored, undefined)
            }
          }
        }
        const fixed = [
          '1e400', '-1e400', '"NaN"', '"Infinity"', '"60"', '-0', '0', '-60', '1e6', '1e-400', 'true', 'null', '[]', '{}', '60.0000000000000001', '1E2',
          '9'.repeat(400)
        ]
        tally.fixed += fixed.length + 1
        await check(fixed)
        // Finite as sent, infinite once converted (1e308 beats per second in beats per minute).
        await check(['1e308'], 'count/s')

        // JSON has no NaN or infinities: NaN goes as a string, an infinity as a literal that parses to one.
        const asJson = (value: number): string =>
          Object.is(value, -0) ? '-0' : Number.isNaN(value) ? '"NaN"' : Number.isFinite(value) ? String(value) : value > 0 ? '1e400' : '-1e400'
        const valueText = fc.oneof(fc.double().map(asJson), fc.double({ min: 0, max: 400 }).map(asJson), fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)))
        await fc.assert(fc.asyncProperty(fc.array(valueText, { minLength: 1, maxLength: 8 }), async (texts) => {
          tally.property++
          await check(texts)
        }), { seed: 42, numRuns: 50 })
      })

      await t.test('B11: future, pre-2000, reversed, over-long and invalid times are rejected per sample', async () => {
        const cases: Array<[string, Record<string, unknown>, string | undefined]> = [
          ['end 24 h after now', { start: iso(NOW_MS), end: iso(NOW_MS + 24 * HOUR_MS) }, undefined],
          ['end 24 h + 1 s after now', { start: iso(NOW_MS), end: iso(NOW_MS + 24 * HOUR_MS + 1000) }, 'BB_SAMPLE_IN_FUTURE'],
          ['in 2100', { start: '2100-01-01T00:00:00Z', end: '2100-01-01T00:00:00Z' }, 'BB_SAMPLE_IN_FUTURE'],
          ['epoch 0', { start: iso(0), end: iso(0) }, 'BB_SAMPLE_TOO_OLD'],
          ['before the epoch', { start: '1969-07-20T20:17:40Z', end: '1969-07-20T20:17:40Z' }, 'BB_SAMPLE_TOO_OLD'],
          ['the last instant of 1999', { start: '1999-12-31T23:59:59.999Z', end: '2000-01-01T00:00:00Z' }, 'BB_SAMPLE_TOO_OLD'],
          ['the first instant of 2000', { start: '2000-01-01T00:00:00Z', end: '2000-01-01T00:00:00Z' }, undefined],
          ['end 1 ms before start', { start: '2026-01-07T08:00:00.001Z', end: '2026-01-07T08:00:00Z' }, 'BB_SAMPLE_END_BEFORE_START'],
          ['end before start across offsets', { start: '2026-01-07T10:00:00+02:00', end: '2026-01-07T07:59:59Z' }, 'BB_SAMPLE_END_BEFORE_START'],
          ['a span of 8 days + 1 s', { start: '2025-12-20T00:00:00Z', end: '2025-12-28T00:00:01Z', value: 60 }, 'BB_SAMPLE_SPAN_TOO_LONG'],
          ['February 30th', { start: '2026-02-30T10:00:00Z' }, 'BB_SAMPLE_BAD_TIME'],
          ['month 13', { end: '2026-13-01T00:00:00Z' }, 'BB_SAMPLE_BAD_TIME'],
          ['hour 25', { start: '2026-01-07T25:00:00Z' }, 'BB_SAMPLE_BAD_TIME'],
          ['no zone', { start: '2026-01-07T08:00:00', end: '2026-01-07T08:00:00' }, 'BB_SAMPLE_BAD_TIME'],
          ['a DST-gap local time without zone', { start: '2026-03-08T02:30:00', end: '2026-03-08T02:30:00' }, 'BB_SAMPLE_BAD_TIME'],
          ['a word', { start: 'yesterday' }, 'BB_SAMPLE_BAD_TIME'],
          ['epoch milliseconds as a number', { start: NOW_MS, end: NOW_MS }, 'BB_SAMPLE_BAD_TIME'],
          ['null', { end: null }, 'BB_SAMPLE_BAD_TIME'],
          ['a six-digit year', { start: '+275760-09-13T00:00:00Z' }, 'BB_SAMPLE_BAD_TIME'],
          ['an invalid updated_at', { updated_at: '2026-01-07T08:00:00' }, 'BB_SAMPLE_BAD_TIME']
        ]
        tally.fixed += cases.length
        const answer = uploadBody(await send(ROUTES[0], batch(cases.map(([, times]) => lean(0, times)))))
        assert.deepEqual(cases.map((_, index) => codeAt(answer, index)), cases.map(([, , code]) => code), cases.map(([name]) => name).join(' | '))

        const DAY = 24 * HOUR_MS
        const span = fc.record({
          startMs: fc.integer({ min: Date.UTC(1990, 0, 1), max: NOW_MS + 3 * DAY }),
          durationMs: fc.oneof(fc.integer({ min: -2 * DAY, max: 10 * DAY }), fc.constantFrom(0, -1, 8 * DAY, 8 * DAY + 1)),
          offsetMinutes: fc.integer({ min: -12 * 60, max: 14 * 60 })
        })
        const withOffset = (ms: number, minutes: number): string => {
          const sign = minutes < 0 ? '-' : '+'
          const abs = Math.abs(minutes)
          return `${iso(ms + minutes * 60_000).slice(0, -1)}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
        }
        const oracle = ({ startMs, durationMs }: { startMs: number, durationMs: number }): string | undefined => {
          const endMs = startMs + durationMs
          if (endMs < startMs) return 'BB_SAMPLE_END_BEFORE_START'
          if (startMs < Date.UTC(2000, 0, 1)) return 'BB_SAMPLE_TOO_OLD'
          if (endMs > NOW_MS + DAY) return 'BB_SAMPLE_IN_FUTURE'
          return durationMs > 8 * DAY ? 'BB_SAMPLE_SPAN_TOO_LONG' : undefined
        }
        await fc.assert(fc.asyncProperty(fc.array(span, { minLength: 1, maxLength: 6 }), async (spans) => {
          tally.property++
          const samples = spans.map((s) => lean(0, { start: withOffset(s.startMs, s.offsetMinutes), end: withOffset(s.startMs + s.durationMs, -s.offsetMinutes) }))
          const result = uploadBody(await send(ROUTES[0], batch(samples)))
          for (const [index, s] of spans.entries()) {
            assert.equal(codeAt(result, index), oracle(s), JSON.stringify(samples[index]))
            assert.equal(await storedValue(samples[index]!.uuid as string) !== undefined, oracle(s) === undefined)
          }
        }), { seed: 42, numRuns: 40 })
      })

      await t.test('text PostgreSQL cannot store, and long units, are rejected per sample without echo', async () => {
        tally.fixed += 2
        const at = { date: '2026-01-07 08:00:00 +0000', qty: 60 }
        const exported = uploadBody(await send(ROUTES[1], JSON.stringify({ data: {
          // These answered 500 before the fix: NUL and unpaired surrogates reached the record id.
          metrics: [{ name: 'heart_rate', units: 'count/min', data: [{ ...at, source: 'a\u0000b' }, { ...at, source: 'watch\ud800' }, { ...at, source: 'ok' }] }],
          workouts: [{ id: 'w\u0000', start: '2026-01-07 08:00:00 +0000', end: '2026-01-07 09:00:00 +0000', distance: { qty: 1, units: 'km' } }]
        } })))
        assert.deepEqual([exported.accepted, exported.rejected.map((rejection) => rejection.code)], [1, ['BB_SAMPLE_MALFORMED', 'BB_SAMPLE_MALFORMED', 'BB_SAMPLE_MALFORMED']])
        const longUnit = `${'x'.repeat(5000)}${ECHO_MARKER}`
        const longType = `HKQuantityTypeIdentifier${'Z'.repeat(5000)}${ECHO_MARKER}`
        const answer = await send(ROUTES[0], batch([lean(0, { unit: longUnit }), lean(1, { type: longType })]))
        const body = uploadBody(answer, longUnit)
        assert.deepEqual(body.rejected.map((rejection) => rejection.code), ['BB_SAMPLE_UNIT_UNSUPPORTED', 'BB_SAMPLE_UNKNOWN_TYPE'])
        assert.ok(answer.body.length < 1000, `a ${answer.body.length}-byte answer to two bad samples`)
      })

      await t.test('arbitrary bytes, JSON and headers never get a 5xx; afterwards the app is healthy and still stores', async () => {
        const sampleLike = fc.record({
          uuid: fc.string({ maxLength: 10 }), type: fc.constantFrom(HR, 'HKCategoryTypeIdentifierSleepAnalysis', 'x'), value: fc.jsonValue({ maxDepth: 1 }),
          start: fc.string({ maxLength: 25 }), end: fc.constant('2026-01-07T08:00:00Z')
        }, { requiredKeys: [] })
        const body = fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
          fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
          fc.string({ maxLength: 300 }),
          fc.array(sampleLike, { maxLength: 5 }).map((samples) => JSON.stringify({ samples, deleted: [{ uuid: 'x' }] })))
        const contentType = fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', ''),
          fc.string({ maxLength: 30 }))
        const extra = fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,16}$/), fc.string({ maxLength: 40 }), { maxKeys: 3 })
        await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES), body, contentType, extra, fc.boolean(), async (url, payload, type, more, authorized) => {
          tally.property++
          const requestHeaders: Record<string, string> = { ...more, 'content-type': type, ...(authorized ? { authorization: headers.authorization! } : {}) }
          const before = await counts()
          const answer = await send(url, payload, requestHeaders)
          if (answer.statusCode === 200) {
            uploadBody(answer)
          } else {
            assertRefused(answer, {}, payload)
            assert.deepEqual(await counts(), before)
          }
        }), { seed: 42, numRuns: 150 })

        assert.equal((await app.http.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
        const healthy = lean(3, { value: 72 })
        assert.equal(uploadBody(await send(ROUTES[0], batch([healthy]))).accepted, 1)
        assert.equal(await storedValue(healthy.uuid as string), 72)
        assertPrototypeUntouched(prototypeBefore)
      })
    })
  }
})
