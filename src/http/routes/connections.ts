import { principalLabel } from '../../auth/principals.ts'
import { parseUserId } from '../../domain/user-id.ts'
import { BridgeError } from '../../errors.ts'
import { exchangeOuraCode, fetchOuraUserId, ouraAuthorizeUrl, revokeOuraToken } from '../../providers/oura/oauth.ts'
import { OURA_RANGE_DATA_TYPES } from '../../providers/oura/receipts.ts'
import { enqueueRange } from '../../pipeline/sync-ranges.ts'
import { exchangeWhoopCode, fetchWhoopUserId, revokeWhoopAccess, whoopAuthorizeUrl } from '../../providers/whoop/oauth.ts'
import { WHOOP_RANGE_DATA_TYPES } from '../../providers/whoop/notification.ts'
import {
  deleteConnection, listConnections, loadConnection, saveConnection, type ConnectionProvider, type ConnectionTokens
} from '../../storage/connections-repository.ts'
import type { HttpContext, HttpServer } from '../context.ts'
import { principalOf } from '../route-auth.ts'

/** What the connect flow needs from one provider. */
interface ConnectProvider {
  name: string
  authorizeUrl(state: string, redirectUri: string): string
  exchange(code: string, redirectUri: string, nowMs: number): Promise<ConnectionTokens>
  fetchUserId(accessToken: string): Promise<string>
  revoke(accessToken: string): Promise<boolean>
  /** Collections a backfill fetches. */
  rangeTypes: readonly string[]
}

function configuredProviders(config: HttpContext['config']): Partial<Record<ConnectionProvider, ConnectProvider>> {
  const providers: Partial<Record<ConnectionProvider, ConnectProvider>> = {}
  const { oura, whoop } = config
  if (oura !== undefined) {
    providers.oura = {
      name: 'Oura',
      authorizeUrl: (state, redirectUri) => ouraAuthorizeUrl(oura, state, redirectUri),
      exchange: (code, redirectUri, nowMs) => exchangeOuraCode(oura, code, redirectUri, nowMs),
      fetchUserId: (token) => fetchOuraUserId(oura, token),
      revoke: (token) => revokeOuraToken(oura, token),
      rangeTypes: OURA_RANGE_DATA_TYPES
    }
  }
  if (whoop !== undefined) {
    providers.whoop = {
      name: 'WHOOP',
      authorizeUrl: (state, redirectUri) => whoopAuthorizeUrl(whoop, state, redirectUri),
      exchange: (code, redirectUri, nowMs) => exchangeWhoopCode(whoop, code, redirectUri, nowMs),
      fetchUserId: (token) => fetchWhoopUserId(whoop, token),
      revoke: (token) => revokeWhoopAccess(whoop, token),
      rangeTypes: WHOOP_RANGE_DATA_TYPES
    }
  }
  return providers
}

/**
 * OAuth connections (design §5) for every configured provider; one that is not configured has no connection
 * routes (404). The callback is public and protected by the signed, single-use `state`.
 */
export function registerConnectionRoutes(app: HttpServer, context: HttpContext): void {
  const providers = configuredProviders(context.config)
  const redirectUri = (provider: string): string => `${context.config.publicBaseUrl}/oauth/${provider}/callback`
  const configured = (name: unknown): { provider: ConnectionProvider, oauth: ConnectProvider } => {
    const oauth = name === 'oura' || name === 'whoop' ? providers[name] : undefined
    if (oauth === undefined) throw new BridgeError('BB_NOT_FOUND', 'this provider is not configured')
    return { provider: name as ConnectionProvider, oauth }
  }
  app.post('/v1/users/:userId/connections/:provider', { config: { auth: 'admin' } }, async (request) => {
    const principal = principalOf(request)
    const params = request.params as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const { provider, oauth } = configured(params.provider)
    const { state } = context.stateSigner.issue(userId, provider, context.now())
    await context.audit(context.db, { principal: principalLabel(principal), action: 'connection.start', userId, detail: { provider } })
    return { authorize_url: oauth.authorizeUrl(state, redirectUri(provider)) }
  })

  app.get('/oauth/:provider/callback', { config: { auth: 'oauth-state' } }, async (request, reply) => {
    const { provider, oauth } = configured((request.params as Record<string, unknown>).provider)
    const query = request.query as Record<string, unknown>
    const state = context.stateSigner.verify(typeof query.state === 'string' ? query.state : '', provider, context.now())
    // Recorded before anything else: a state works once even if the exchange below fails.
    const { rowCount } = await context.db.query('INSERT INTO oauth_state_uses (nonce) VALUES ($1) ON CONFLICT DO NOTHING', [state.nonce])
    if (rowCount === 0) throw new BridgeError('BB_OAUTH_STATE_INVALID', 'the state is invalid, expired or already used; start the connection again')
    if (typeof query.error === 'string') throw new BridgeError('BB_OAUTH_DENIED', `access was not granted at ${oauth.name}`)
    if (typeof query.code !== 'string' || query.code.length === 0 || query.code.length > 2048) {
      throw new BridgeError('BB_INVALID_REQUEST', 'code is required')
    }
    const tokens = await oauth.exchange(query.code, redirectUri(provider), context.now())
    const providerUserId = await oauth.fetchUserId(tokens.accessToken)
    const scopes = typeof query.scope === 'string' ? query.scope.split(/[ +]/).filter((scope) => scope !== '') : []
    // The history is queued with the connection, in one transaction: a connection never lacks its backfill.
    await context.db.transaction(async (tx) => {
      await saveConnection(tx, context.tokenCipher, { userId: state.userId, provider, providerUserId, scopes, tokens })
      await enqueueRange(tx, {
        provider, providerUserId, dataTypes: oauth.rangeTypes, kind: 'backfill',
        endMs: context.now(), days: context.config.backfillDays, dedupSuffix: String(context.now())
      })
    })
    context.notifyReceipts()
    await context.audit(context.db, { principal: 'oauth-callback', action: 'connection.create', userId: state.userId, detail: { provider } })
    request.log.info({ user: context.pseudonymize(state.userId), provider }, 'provider connected')
    if (context.config.connectSuccessUrl !== undefined) return reply.redirect(context.config.connectSuccessUrl, 302)
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><title>Connected</title><p>Your ${oauth.name} account is connected. You can close this window.</p>`)
  })

  app.get('/v1/users/:userId/connections', { config: { auth: 'admin' } }, async (request) => {
    const principal = principalOf(request)
    const userId = parseUserId((request.params as Record<string, unknown>).userId)
    const connections = await listConnections(context.db, userId)
    await context.audit(context.db, { principal: principalLabel(principal), action: 'connections.read', userId, detail: { count: connections.length } })
    return {
      data: connections.map((connection) => ({
        provider: connection.provider,
        status: connection.status,
        scopes: connection.scopes,
        access_expires_at: connection.accessExpiresAt?.toISOString() ?? null
      }))
    }
  })

  app.delete('/v1/users/:userId/connections/:provider', { config: { auth: 'admin' } }, async (request, reply) => {
    const principal = principalOf(request)
    const params = request.params as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const { provider, oauth } = configured(params.provider)
    const connection = await loadConnection(context.db, context.tokenCipher, userId, provider).catch(() => undefined)
    const revoked = connection === undefined ? false : await oauth.revoke(connection.accessToken)
    if (!(await deleteConnection(context.db, userId, provider))) throw new BridgeError('BB_NOT_FOUND', 'no such connection')
    await context.audit(context.db, { principal: principalLabel(principal), action: 'connection.delete', userId, detail: { provider, revoked } })
    return reply.code(204).send()
  })
}
