import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { BridgeError } from '../../src/errors.ts'

const key = (kid: string) => ({ kid, key: randomBytes(32) })

describe('token cipher (AES-256-GCM, key ids, row-bound)', () => {
  const k1 = key('k1')
  const k2 = key('k2')

  test('round-trips any token, and never stores it in the clear', () => {
    const cipher = createTokenCipher([k1])
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 400 }), fc.uuid(), (token, rowId) => {
      const sealed = cipher.encrypt(token, rowId)
      assert.equal(cipher.decrypt(sealed, rowId).plaintext, token)
      if (token.length >= 8) assert.ok(!sealed.includes(Buffer.from(token, 'utf8')), 'no plaintext inside the ciphertext')
    }))
  })

  test('uses a fresh nonce each time: the same token encrypts differently', () => {
    const cipher = createTokenCipher([k1])
    assert.notDeepEqual(cipher.encrypt('same-token', 'row'), cipher.encrypt('same-token', 'row'))
  })

  test('a ciphertext moved to another row does not decrypt', () => {
    const cipher = createTokenCipher([k1])
    const sealed = cipher.encrypt('access-token-value', 'row-a')
    assert.throws(() => cipher.decrypt(sealed, 'row-b'), (error: unknown) => error instanceof BridgeError && error.code === 'BB_TOKEN_UNREADABLE')
  })

  test('any flipped byte is detected', () => {
    const cipher = createTokenCipher([k1])
    const sealed = cipher.encrypt('refresh-token-value', 'row')
    for (let index = 0; index < sealed.length; index++) {
      const tampered = Buffer.from(sealed)
      tampered[index]! ^= 0x01
      assert.throws(() => cipher.decrypt(tampered, 'row'), BridgeError, `byte ${index}`)
    }
    assert.throws(() => cipher.decrypt(sealed.subarray(0, 20), 'row'), BridgeError, 'truncated')
  })

  test('rotation: old tokens still decrypt and are flagged stale; new ones use the newest key', () => {
    const before = createTokenCipher([k1])
    const sealedWithOld = before.encrypt('old-token', 'row')
    const after = createTokenCipher([k2, k1])
    assert.deepEqual(after.decrypt(sealedWithOld, 'row'), { plaintext: 'old-token', stale: true })
    const resealed = after.encrypt('old-token', 'row')
    assert.deepEqual(after.decrypt(resealed, 'row'), { plaintext: 'old-token', stale: false })
    const onlyNew = createTokenCipher([k2])
    assert.throws(() => onlyNew.decrypt(sealedWithOld, 'row'), /k1 is not configured/)
  })
})
