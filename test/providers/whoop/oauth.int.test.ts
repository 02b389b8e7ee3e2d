import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { Config } from '../../../src/config/load.ts'
import { isBridgeError } from '../../../src/errors.ts'
import { GrantRejectedError } from '../../../src/providers/client/provider-client.ts'
import {
  WHOOP_SCOPES, exchangeWhoopCode, fetchWhoopUserId, refreshWhoopToken, revokeWhoopAccess, whoopAuthorizeUrl
} from '../../../src/providers/whoop/oauth.ts'
import { startWhoopSimulator, type WhoopSimulator } from '../../../src/simulators/whoop/index.ts'

type WhoopConfig = NonNullable<Config['whoop']>
const REDIRECT_URI = 'https://bridge.example.test/oauth/whoop/callback'

async function setup(t: TestContext): Promise<{ sim: WhoopSimulator, whoop: WhoopConfig, userId: string }> {
  const sim = await startWhoopSimulator({ seed: 3 })
  t.after(() => sim.close())
  const userId = '4560001234567'
  sim.addUser({ userId, days: 2 })
  return { sim, whoop: { clientId: sim.clientId, clientSecrets: [sim.clientSecret, 'old-secret'], apiUrl: sim.baseUrl, requestsPerMinute: 100, requestsPerDay: 10_000 }, userId }
}

describe('WHOOP OAuth (against the simulator)', () => {
  test('authorize URL asks for offline; the code exchange, the profile id and a rotating refresh work', async (t) => {
    const { sim, whoop, userId } = await setup(t)
    const authorize = new URL(whoopAuthorizeUrl(whoop, 'state-1', REDIRECT_URI))
    assert.equal(`${authorize.origin}${authorize.pathname}`, sim.authorizeUrl)
    assert.deepEqual(authorize.searchParams.get('scope')?.split(' '), [...WHOOP_SCOPES])
    authorize.searchParams.set('sim_user_id', userId)
    const redirect = await fetch(authorize, { redirect: 'manual' })
    const location = new URL(redirect.headers.get('location')!)
    assert.equal(location.searchParams.get('state'), 'state-1')

    const nowMs = Date.now()
    const tokens = await exchangeWhoopCode(whoop, location.searchParams.get('code')!, REDIRECT_URI, nowMs)
    assert.ok(tokens.refreshToken !== null, 'offline scope brings a refresh token')
    assert.equal(tokens.accessExpiresAt?.getTime(), nowMs + 3600 * 1000)
    assert.equal(await fetchWhoopUserId(whoop, tokens.accessToken), userId, 'the int64 user id, as text')

    const refreshed = await refreshWhoopToken(whoop, tokens.refreshToken, Date.now())
    assert.notEqual(refreshed.refreshToken, tokens.refreshToken, 'WHOOP rotates the refresh token')
    assert.equal(await fetchWhoopUserId(whoop, refreshed.accessToken), userId)
  })

  test('a spent refresh token is invalid_grant (and WHOOP revokes the family): GrantRejectedError, not a retry', async (t) => {
    const { sim, whoop, userId } = await setup(t)
    const issued = sim.issueTokens(userId)
    const first = await refreshWhoopToken(whoop, issued.refresh_token!, Date.now())
    await assert.rejects(refreshWhoopToken(whoop, issued.refresh_token!, Date.now()), GrantRejectedError)
    await assert.rejects(refreshWhoopToken(whoop, first.refreshToken!, Date.now()), GrantRejectedError, 'the family is gone')
    assert.deepEqual(sim.tokenStats(userId), { refreshCalls: 3, refreshes: 1, refreshReuses: 1, familiesRevoked: 1 })
  })

  test('a refused code and a refused token are BB_OAUTH_EXCHANGE_FAILED; revoke ends access', async (t) => {
    const { sim, whoop, userId } = await setup(t)
    const code = async (run: () => Promise<unknown>): Promise<string> => {
      try {
        await run()
        return 'resolved'
      } catch (error) {
        return isBridgeError(error) ? error.code : String(error)
      }
    }
    assert.equal(await code(() => exchangeWhoopCode(whoop, 'not-a-code', REDIRECT_URI, Date.now())), 'BB_OAUTH_EXCHANGE_FAILED')
    assert.equal(await code(() => fetchWhoopUserId(whoop, 'not-a-token')), 'BB_OAUTH_EXCHANGE_FAILED')
    const issued = sim.issueTokens(userId)
    assert.equal(await revokeWhoopAccess(whoop, issued.access_token), true)
    assert.equal(await code(() => fetchWhoopUserId(whoop, issued.access_token)), 'BB_OAUTH_EXCHANGE_FAILED')
    assert.equal(await revokeWhoopAccess({ ...whoop, apiUrl: 'http://127.0.0.1:1' }, 'x'), false, 'best effort when unreachable')
  })
})
