import pino, { type DestinationStream, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

export interface LoggerOptions {
  level: string
  format: 'json' | 'pretty'
  /** Defaults to stdout; tests pass a stream to scan what was logged. */
  destination?: DestinationStream
}

/**
 * Field names that would carry secrets or PHI if someone ever logged a request or a token object; pino removes
 * them even by mistake. The real rule is upstream: logs get pseudonyms, codes and counts, never payloads.
 */
const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers["x-oura-signature"]', 'req.headers["x-whoop-signature"]',
  'headers.authorization', '*.token', '*.access_token', '*.refresh_token', '*.secret', '*.password',
  'token', 'access_token', 'refresh_token', 'secret', 'password'
]

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { service: 'biometric-bridge' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: describeError }
  }
  if (options.format === 'pretty') {
    return pino(base, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', destination: options.destination ?? 1, sync: true }))
  }
  return pino(base, options.destination ?? pino.destination({ sync: false }))
}

export interface SafeErrorDescription {
  type: string
  code?: string
  /** Only messages the bridge wrote itself; foreign messages (SQL errors, parsers) can quote input values. */
  message?: string
  stack?: string
  cause?: SafeErrorDescription
}

/**
 * Describes an error for logs without leaking data: driver and parser messages may quote the offending value
 * ("invalid input syntax … "value""), so only our own BridgeError messages are kept; stacks keep their frames
 * but lose the first line, which repeats the message.
 */
export function describeError(error: unknown, depth = 0): SafeErrorDescription {
  if (!(error instanceof Error)) {
    const constructorName = (error as { constructor?: { name?: unknown } } | null)?.constructor?.name
    const description: SafeErrorDescription = { type: typeof constructorName === 'string' ? constructorName : typeof error }
    // Some libraries reject with plain objects (pg's protocol errors among them); their code still classifies them.
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === 'string' || typeof code === 'number') description.code = String(code)
    return description
  }
  const code = (error as { code?: unknown }).code
  const description: SafeErrorDescription = { type: error.name }
  if (typeof code === 'string' || typeof code === 'number') description.code = String(code)
  if (error.name === 'BridgeError' || error.name === 'ConfigError') description.message = error.message
  if (error.stack !== undefined) description.stack = error.stack.split('\n').slice(1).join('\n')
  if (error.cause !== undefined && depth < 3) description.cause = describeError(error.cause, depth + 1)
  return description
}
