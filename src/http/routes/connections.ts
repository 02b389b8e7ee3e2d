import type { FastifyRequest } from 'fastify'
import { principalLabel, requireScope, type Principal } from '../../auth/principals.ts'
import { parseUserId } from '../../domain/user-id.ts'
import { BridgeError } from '../../errors.ts'
import { exchangeOuraCode, fetchOuraUserId, ouraAuthorizeUrl, revokeOuraToken } from '../../providers/oura/oauth.ts'
import { OURA_RANGE_DATA_TYPES } from '../../providers/oura/receipts.ts'
import { enqueueRange } from '../../pipeline/sync-ranges.ts'
import { deleteConnection, listConnections, loadConnection, saveConnection } from '../../storage/connections-repository.ts'
import type { HttpContext, HttpServer } from '../context.ts'

/**
 * OAuth connections (design §5). Only Oura is wired so far; a provider that is not configured has no
 * connection routes (404). The callback is public and protected by the signed, single-use `state`.
 */
export function registerConnectionRoutes(app: HttpServer, context: HttpContext): void {
  const oura = context.config.oura
  const redirectUri = (provider: string): string => `${context.config.publicBaseUrl}/oauth/${provider}/callback`
  const ouraOnly = (provider: unknown): 'oura' => {
    if (provider !== 'oura' || oura === undefined) throw new BridgeError('BB_NOT_FOUND', 'this provider is not configured')
    return 'oura'
  }
  const admin = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await context.authenticator.authenticate(request.headers.authorization)
    requireScope(principal, 'admin')
    return principal
  }

  app.post('/v1/users/:userId/connections/:provider', async (request) => {
    const principal = await admin(request)
    const params = request.params as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const provider = ouraOnly(params.provider)
    const { state } = context.stateSigner.issue(userId, provider, context.now())
    await context.audit(context.db, { principal: principalLabel(principal), action: 'connection.start', userId, detail: { provider } })
    return { authorize_url: ouraAuthorizeUrl(oura!, state, redirectUri(provider)) }
  })

  app.get('/oauth/:provider/callback', async (request, reply) => {
    const provider = ouraOnly((request.params as Record<string, unknown>).provider)
    const query = request.query as Record<string, unknown>
    const state = context.stateSigner.verify(typeof query.state === 'string' ? query.state : '', provider, context.now())
    // Recorded before anything else: a state works once even if the exchange below fails.
    const { rowCount } = await context.db.query('INSERT INTO oauth_state_uses (nonce) VALUES ($1) ON CONFLICT DO NOTHING', [state.nonce])
    if (rowCount === 0) throw new BridgeError('BB_OAUTH_STATE_INVALID', 'the state is invalid, expired or already used; start the connection again')
    if (typeof query.error === 'string') throw new BridgeError('BB_OAUTH_DENIED', 'access was not granted at Oura')
    if (typeof query.code !== 'string' || query.code.length === 0 || query.code.length > 2048) {
      throw new BridgeError('BB_INVALID_REQUEST', 'code is required')
    }
    const tokens = await exchangeOuraCode(oura!, query.code, redirectUri(provider), context.now())
    const providerUserId = await fetchOuraUserId(oura!, tokens.accessToken)
    const scopes = typeof query.scope === 'string' ? query.scope.split(/[ +]/).filter((scope) => scope !== '') : []
    // The history is queued with the connection, in one transaction: a connection never lacks its backfill.
    await context.db.transaction(async (tx) => {
      await saveConnection(tx, context.tokenCipher, { userId: state.userId, provider, providerUserId, scopes, tokens })
      await enqueueRange(tx, {
        provider, providerUserId, dataTypes: OURA_RANGE_DATA_TYPES, kind: 'backfill',
        endMs: context.now(), days: context.config.backfillDays, dedupSuffix: String(context.now())
      })
    })
    context.notifyReceipts()
    await context.audit(context.db, { principal: 'oauth-callback', action: 'connection.create', userId: state.userId, detail: { provider } })
    request.log.info({ user: context.pseudonymize(state.userId), provider }, 'provider connected')
    if (context.config.connectSuccessUrl !== undefined) return reply.redirect(context.config.connectSuccessUrl, 302)
    return reply.type('text/html; charset=utf-8').send('<!doctype html><title>Connected</title><p>Your Oura account is connected. You can close this window.</p>')
  })

  app.get('/v1/users/:userId/connections', async (request) => {
    const principal = await admin(request)
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

  app.delete('/v1/users/:userId/connections/:provider', async (request, reply) => {
    const principal = await admin(request)
    const params = request.params as Record<string, unknown>
    const userId = parseUserId(params.userId)
    const provider = ouraOnly(params.provider)
    const connection = await loadConnection(context.db, context.tokenCipher, userId, provider).catch(() => undefined)
    const revoked = connection === undefined ? false : await revokeOuraToken(oura!, connection.accessToken)
    if (!(await deleteConnection(context.db, userId, provider))) throw new BridgeError('BB_NOT_FOUND', 'no such connection')
    await context.audit(context.db, { principal: principalLabel(principal), action: 'connection.delete', userId, detail: { provider, revoked } })
    return reply.code(204).send()
  })
}
