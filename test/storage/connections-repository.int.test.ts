import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { createTokenCipher } from '../../src/auth/token-crypto.ts'
import { BridgeError } from '../../src/errors.ts'
import {
  deleteConnection, listConnections, loadConnection, markReauthRequired, saveConnection, writeTokens
} from '../../src/storage/connections-repository.ts'
import { migrate } from '../../src/storage/migrate.ts'
import { recordCanary } from '../helpers/canaries.ts'
import { ADAPTERS, openTestDatabase } from '../helpers/services.ts'

const k1 = { kid: 'k1', key: randomBytes(32) }
const k2 = { kid: 'k2', key: randomBytes(32) }
const ACCESS = `canary-access-${randomBytes(8).toString('hex')}`
const REFRESH = `canary-refresh-${randomBytes(8).toString('hex')}`
recordCanary(ACCESS)
recordCanary(REFRESH)

const expiresAt = new Date(Date.UTC(2026, 11, 1))
const connection = {
  userId: 'conn-user', provider: 'oura' as const, providerUserId: 'oura-123', scopes: ['daily', 'heartrate', 'personal'],
  tokens: { accessToken: ACCESS, refreshToken: REFRESH, accessExpiresAt: expiresAt }
}

for (const adapter of ADAPTERS) {
  describe(`connections repository (${adapter})`, () => {
    test('stores tokens encrypted, lists without them, and decrypts them for use', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const cipher = createTokenCipher([k1])
      const id = await saveConnection(db, cipher, connection)
      const { rows } = await db.query<{ dump: string }>("SELECT encode(access_token_enc, 'escape') || encode(refresh_token_enc, 'escape') || row_to_json(connections)::text AS dump FROM connections")
      assert.ok(!rows[0]!.dump.includes(ACCESS) && !rows[0]!.dump.includes(REFRESH), 'no plaintext token in a dump')
      assert.deepEqual(await listConnections(db, 'conn-user'), [{
        id, userId: 'conn-user', provider: 'oura', providerUserId: 'oura-123', status: 'active',
        scopes: ['daily', 'heartrate', 'personal'], accessExpiresAt: expiresAt
      }])
      const loaded = await loadConnection(db, cipher, 'conn-user', 'oura')
      assert.equal(loaded?.accessToken, ACCESS)
      assert.equal(loaded?.refreshToken, REFRESH)
      assert.equal(loaded?.tokenVersion, 1)
    })

    test('a writer holding an old version cannot overwrite a newer token pair', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const cipher = createTokenCipher([k1])
      const id = await saveConnection(db, cipher, connection)
      const seen = (await loadConnection(db, cipher, 'conn-user', 'oura'))!
      const next = { accessToken: 'access-2', refreshToken: 'refresh-2', accessExpiresAt: expiresAt }
      assert.equal(await writeTokens(db, cipher, id, seen.tokenVersion, next), true, 'the first refresher wins')
      assert.equal(await writeTokens(db, cipher, id, seen.tokenVersion, { ...next, refreshToken: 'stale' }), false, 'the stale one loses')
      assert.equal((await loadConnection(db, cipher, 'conn-user', 'oura'))?.refreshToken, 'refresh-2')
      await markReauthRequired(db, id)
      assert.equal((await listConnections(db, 'conn-user'))[0]?.status, 'reauth_required')
      assert.equal(await loadConnection(db, cipher, 'conn-user', 'oura'), undefined, 'no tokens to use')
      await saveConnection(db, cipher, connection)
      assert.equal((await listConnections(db, 'conn-user'))[0]?.status, 'active', 'reconnecting reactivates')
      assert.equal(await deleteConnection(db, 'conn-user', 'oura'), true)
      assert.deepEqual(await listConnections(db, 'conn-user'), [])
    })

    test('a ciphertext moved to another row does not decrypt; rotation re-encrypts on use', async (t) => {
      const db = await openTestDatabase(t, adapter)
      if (db === undefined) return
      await migrate(db)
      const oldCipher = createTokenCipher([k1])
      await saveConnection(db, oldCipher, connection)
      await saveConnection(db, oldCipher, { ...connection, userId: 'other-user', providerUserId: 'oura-456' })
      await db.query(`UPDATE connections SET access_token_enc = (SELECT access_token_enc FROM connections WHERE user_id = 'conn-user')
                      WHERE user_id = 'other-user'`)
      await assert.rejects(loadConnection(db, oldCipher, 'other-user', 'oura'), (error: unknown) => error instanceof BridgeError && error.code === 'BB_TOKEN_UNREADABLE')

      const rotated = createTokenCipher([k2, k1])
      const before = (await loadConnection(db, rotated, 'conn-user', 'oura'))!
      assert.equal(before.accessToken, ACCESS)
      const { rows } = await db.query<{ version: number }>("SELECT token_version AS version FROM connections WHERE user_id = 'conn-user'")
      assert.equal(Number(rows[0]!.version), 2, 'loading with an old key re-encrypted the pair')
      const newOnly = createTokenCipher([k2])
      assert.equal((await loadConnection(db, newOnly, 'conn-user', 'oura'))?.refreshToken, REFRESH, 'readable without the retired key')
    })
  })
}
