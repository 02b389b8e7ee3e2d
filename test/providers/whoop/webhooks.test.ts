import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { isBridgeError } from '../../../src/errors.ts'
import { parseWhoopNotification } from '../../../src/providers/whoop/notification.ts'
import { verifyWhoopSignature } from '../../../src/providers/whoop/verify.ts'

const SECRET = 'whoop-client-secret'
const NOW_MS = Date.parse('2026-01-07T08:00:12.345Z')
const TOLERANCE_SECONDS = 300
const BODY = Buffer.from('{"user_id":456,"id":"7c0e8d2a-5b1f-4b0e-9a43-2f6d1c9e0b11","type":"recovery.updated","trace_id":"1f0c3a9e-77aa"}')

/** As WHOOP signs (reference §2.5): base64 HMAC-SHA256 of the millisecond timestamp followed by the raw body. */
function sign(body: Buffer, timestamp: string, secret = SECRET): string {
  return createHmac('sha256', secret).update(timestamp).update(body).digest('base64')
}

function codeOf(run: () => void): string {
  try {
    run()
    return 'accepted'
  } catch (error) {
    return isBridgeError(error) ? error.code : String(error)
  }
}

const verify = (signature: string | undefined, timestamp: string | undefined, body = BODY, secrets = [SECRET]): string =>
  codeOf(() => { verifyWhoopSignature({ signature, timestamp, rawBody: body }, secrets, NOW_MS, TOLERANCE_SECONDS) })

describe('WHOOP webhook signature', () => {
  const timestamp = String(NOW_MS)
  const valid = sign(BODY, timestamp)

  test('accepts the documented scheme, also with the old secret of a rotation list', () => {
    assert.equal(verify(valid, timestamp), 'accepted')
    assert.equal(verify(sign(BODY, timestamp, 'old-secret'), timestamp, BODY, [SECRET, 'old-secret']), 'accepted')
  })

  const failures: Array<[string, string | undefined, string | undefined, string]> = [
    ['no signature', undefined, timestamp, 'BB_SIGNATURE_MISSING'],
    ['no timestamp', valid, undefined, 'BB_SIGNATURE_MISSING'],
    ['wrong secret', sign(BODY, timestamp, 'not-the-secret'), timestamp, 'BB_SIGNATURE_MISMATCH'],
    ['truncated signature', valid.slice(0, 30), timestamp, 'BB_SIGNATURE_MISMATCH'],
    ['hex instead of base64', createHmac('sha256', SECRET).update(timestamp).update(BODY).digest('hex'), timestamp, 'BB_SIGNATURE_MISMATCH'],
    ['signed over the body only', createHmac('sha256', SECRET).update(BODY).digest('base64'), timestamp, 'BB_SIGNATURE_MISMATCH'],
    ['stale by more than the window', sign(BODY, String(NOW_MS - 301_000)), String(NOW_MS - 301_000), 'BB_SIGNATURE_STALE'],
    ['from the future beyond the window', sign(BODY, String(NOW_MS + 301_000)), String(NOW_MS + 301_000), 'BB_SIGNATURE_STALE'],
    ['timestamp in seconds (signed correctly over it)', sign(BODY, String(Math.floor(NOW_MS / 1000))), String(Math.floor(NOW_MS / 1000)), 'BB_SIGNATURE_STALE'],
    ['timestamp not a number', sign(BODY, 'yesterday'), 'yesterday', 'BB_SIGNATURE_STALE']
  ]
  for (const [name, signature, at, expected] of failures) {
    test(`refuses: ${name}`, () => { assert.equal(verify(signature, at), expected) })
  }

  test('within the window either side is accepted', () => {
    for (const offset of [-299_000, 299_000]) assert.equal(verify(sign(BODY, String(NOW_MS + offset)), String(NOW_MS + offset)), 'accepted')
  })

  test('any change to the body or the timestamp breaks the signature', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, position, flip) => {
      const body = Buffer.from(bytes)
      const signature = sign(body, timestamp)
      assert.equal(verify(signature, timestamp, body), 'accepted')
      const altered = Buffer.from(body)
      altered[position % altered.length] = altered[position % altered.length]! ^ flip
      assert.equal(verify(signature, timestamp, altered), 'BB_SIGNATURE_MISMATCH')
      assert.equal(verify(signature, String(NOW_MS + 1), body), 'BB_SIGNATURE_MISMATCH')
    }))
  })
})

describe('WHOOP notification body', () => {
  test('reads the v2 shape; the trace id is the dedup key, the user id stays exact', () => {
    assert.deepEqual(parseWhoopNotification(BODY), {
      dataType: 'recovery', eventType: 'updated', objectId: '7c0e8d2a-5b1f-4b0e-9a43-2f6d1c9e0b11', providerUserId: '456', traceId: '1f0c3a9e-77aa'
    })
    const big = Buffer.from('{"user_id":"9007199254740993","id":12345,"type":"workout.deleted","trace_id":"t-1"}')
    assert.deepEqual(parseWhoopNotification(big), {
      dataType: 'workout', eventType: 'deleted', objectId: '12345', providerUserId: '9007199254740993', traceId: 't-1'
    })
  })

  const malformed: Array<[string, string]> = [
    ['not JSON', '{"user_id":'],
    ['an array', '[]'],
    ['no type', '{"user_id":1,"id":"a","trace_id":"t"}'],
    ['a type without an event', '{"user_id":1,"id":"a","type":"sleep","trace_id":"t"}'],
    ['a user id past int64', '{"user_id":18446744073709551616,"id":"a","type":"sleep.updated","trace_id":"t"}'],
    ['a fractional user id', '{"user_id":4.5,"id":"a","type":"sleep.updated","trace_id":"t"}'],
    ['a negative user id', '{"user_id":-1,"id":"a","type":"sleep.updated","trace_id":"t"}'],
    ['no trace id', '{"user_id":1,"id":"a","type":"sleep.updated"}'],
    ['an id with spaces', '{"user_id":1,"id":"a b","type":"sleep.updated","trace_id":"t"}'],
    ['__proto__ as the only key', '{"__proto__":{"type":"sleep.updated"}}']
  ]
  test('keeps an int64 user id past 2^53 exact (JSON numbers would round it to another user\'s id)', () => {
    const body = '{"user_id":9007199254740993,"id":"a","type":"sleep.updated","trace_id":"t"}'
    assert.equal(parseWhoopNotification(Buffer.from(body)).providerUserId, '9007199254740993')
  })
  for (const [name, body] of malformed) {
    test(`refuses ${name} with BB_WEBHOOK_MALFORMED`, () => {
      assert.equal(codeOf(() => parseWhoopNotification(Buffer.from(body))), 'BB_WEBHOOK_MALFORMED')
    })
  }

  test('unknown event types parse (they are acknowledged and ignored, not refused)', () => {
    const body = Buffer.from('{"user_id":1,"id":"a","type":"body_measurement.updated","trace_id":"t"}')
    assert.equal(parseWhoopNotification(body).dataType, 'body_measurement')
  })
})
