import type { FastifyReply } from 'fastify'
import { BridgeError, type ErrorCode } from '../errors.ts'

/** Fastify's own error codes → ours, so every answer carries a documented code. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BB_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BB_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BB_INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BB_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BB_MALFORMED_JSON',
  FST_ERR_VALIDATION: 'BB_INVALID_REQUEST',
  FST_ERR_NOT_FOUND: 'BB_NOT_FOUND'
}

/** Turns anything thrown during a request into a BridgeError; unknown failures become BB_INTERNAL. */
export function toBridgeError(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error
  if (typeof error === 'object' && error !== null) {
    const { code, statusCode, validation } = error as { code?: unknown, statusCode?: unknown, validation?: unknown }
    if (typeof code === 'string' && Object.hasOwn(FASTIFY_CODES, code)) {
      return new BridgeError(FASTIFY_CODES[code]!, publicMessage(FASTIFY_CODES[code]!), { cause: error })
    }
    if (validation !== undefined) return new BridgeError('BB_INVALID_REQUEST', 'request parameters are invalid', { cause: error })
    // Body parser failures (JSON syntax, forbidden __proto__ keys) arrive as 400 SyntaxErrors.
    if (error instanceof SyntaxError || statusCode === 400) {
      return new BridgeError('BB_MALFORMED_JSON', 'body is not valid JSON', { cause: error })
    }
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return new BridgeError('BB_INVALID_REQUEST', 'the request is invalid', { cause: error })
    }
  }
  return new BridgeError('BB_INTERNAL', 'internal error', { cause: error })
}

function publicMessage(code: ErrorCode): string {
  switch (code) {
    case 'BB_BODY_TOO_LARGE': return 'the request body is too large'
    case 'BB_UNSUPPORTED_MEDIA_TYPE': return 'the content type is not supported; send application/json'
    case 'BB_MALFORMED_JSON': return 'body is not valid JSON'
    case 'BB_NOT_FOUND': return 'not found'
    default: return 'the request is invalid'
  }
}

/** Writes the contract's error body; 5xx bodies stay generic unless the code is meant to be shown. */
export function sendError(reply: FastifyReply, error: BridgeError): FastifyReply {
  if (error.retryAfterSeconds !== undefined || error.status === 503) {
    void reply.header('retry-after', String(error.retryAfterSeconds ?? 5))
  }
  const message = error.expose ? error.message : 'internal error'
  return reply.code(error.status).send({ error: { code: error.expose ? error.code : 'BB_INTERNAL', message } })
}
