import { ConfigError } from '../errors.ts'
import { SETTINGS, type SettingName } from './schema.ts'

export interface EncryptionKey {
  kid: string
  /** 32 bytes for AES-256-GCM. */
  key: Buffer
}

export interface OAuthProviderConfig {
  clientId: string
  /** First secret is the OAuth secret; all of them verify webhook signatures (rotation). */
  clientSecrets: string[]
  apiUrl: string
}

export interface Config {
  port: number
  host: string
  publicBaseUrl: string
  databaseUrl: string | undefined
  /** Directory of the embedded database, or `memory://`. */
  dataDir: string
  redisUrl: string | undefined
  kafkaBrokers: string[]
  kafkaTopic: string
  kafkaDlqTopic: string
  maxConcurrentWebhooks: number
  maxReceiptBacklog: number
  maxReceiptAttempts: number
  redisTtlSeconds: number
  maxTimeseriesEntries: number
  healthkitEnabled: boolean
  healthkitMaxSamples: number
  healthkitMaxBodyBytes: number
  oura: (OAuthProviderConfig & {
    webhookVerificationToken: string
    authorizeUrl: string
    /** Oura's request budget per 5 minutes (per app with Redis, per node without). */
    requestsPer5Min: number
  }) | undefined
  whoop: (OAuthProviderConfig & {
    /** WHOOP's per-app request limits (per app with Redis, per node without). */
    requestsPerMinute: number
    requestsPerDay: number
  }) | undefined
  backfillDays: number
  /** Durable retry schedule of failed receipts: first delay and cap, in milliseconds. */
  retryBaseDelayMs: number
  retryMaxDelayMs: number
  /** Period of the reconciliation poll, in minutes; 0 disables it. */
  reconcileIntervalMinutes: number
  webhookToleranceSeconds: number
  /** Undefined only in embedded mode, where the app generates and keeps dev keys in DATA_DIR. */
  tokenEncryptionKeys: EncryptionKey[] | undefined
  logPseudonymKey: string | undefined
  connectSuccessUrl: string | undefined
  adminApiToken: string | undefined
  logLevel: string
  logFormat: 'json' | 'pretty'
  shutdownTimeoutMs: number
  dbPoolSize: number
  /** Deadline of one statement and of the wait for a pooled connection, in milliseconds (PostgreSQL only). */
  dbStatementTimeoutMs: number
}

export interface LoadOptions {
  /** Whether stdout is a terminal; decides the default log format. */
  isTty?: boolean
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * Reads and validates the whole configuration once. Every problem is collected and thrown together as a
 * ConfigError; messages name the variable and the rule, never the value, so secrets cannot leak into output.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, options: LoadOptions = {}): Config {
  const problems: string[] = []

  const raw = (name: SettingName): string | undefined => {
    const value = env[name]?.trim()
    if (value !== undefined && value !== '') return value
    const definition = SETTINGS[name]
    return 'default' in definition ? definition.default : undefined
  }
  const integer = (name: SettingName, min: number, max: number): number => {
    const text = raw(name) ?? ''
    const value = /^-?\d+$/.test(text) ? Number(text) : Number.NaN
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}`)
      return min
    }
    return value
  }
  const url = (name: SettingName, protocols: string[]): string | undefined => {
    const text = raw(name)
    if (text === undefined) return undefined
    try {
      const parsed = new URL(text)
      if (!protocols.includes(parsed.protocol)) problems.push(`${name} must be a ${protocols.join(' or ')} URL`)
    } catch {
      problems.push(`${name} must be a URL`)
    }
    return text
  }
  const list = (name: SettingName): string[] =>
    (raw(name) ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')

  const port = integer('PORT', 0, 65_535)
  const host = raw('HOST') ?? '127.0.0.1'
  const publicBaseUrl = (url('PUBLIC_BASE_URL', ['http:', 'https:']) ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '')
  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:'])
  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:'])

  const kafkaBrokers = list('KAFKA_BROKERS')
  for (const broker of kafkaBrokers) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(broker)) problems.push('KAFKA_BROKERS entries must look like host:port')
  }

  const healthkitText = raw('HEALTHKIT_ENABLED')
  if (healthkitText !== 'true' && healthkitText !== 'false') problems.push('HEALTHKIT_ENABLED must be true or false')

  const logLevel = raw('LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  const logFormatText = raw('LOG_FORMAT')
  if (logFormatText !== undefined && logFormatText !== 'json' && logFormatText !== 'pretty') {
    problems.push('LOG_FORMAT must be json or pretty')
  }

  const tokenEncryptionKeys = parseEncryptionKeys(raw('TOKEN_ENCRYPTION_KEYS'), problems)
  const logPseudonymKey = raw('LOG_PSEUDONYM_KEY')
  if (logPseudonymKey !== undefined && logPseudonymKey.length < 32) {
    problems.push('LOG_PSEUDONYM_KEY must be at least 32 characters')
  }
  if (databaseUrl !== undefined) {
    if (tokenEncryptionKeys === undefined) problems.push('TOKEN_ENCRYPTION_KEYS is required with DATABASE_URL')
    if (logPseudonymKey === undefined) problems.push('LOG_PSEUDONYM_KEY is required with DATABASE_URL')
  }
  const adminApiToken = raw('ADMIN_API_TOKEN')
  if (adminApiToken !== undefined && adminApiToken.length < 32) {
    problems.push('ADMIN_API_TOKEN must be at least 32 characters')
  }

  const provider = (prefix: 'OURA' | 'WHOOP'): OAuthProviderConfig | undefined => {
    const clientId = raw(`${prefix}_CLIENT_ID`)
    if (clientId === undefined) return undefined
    const clientSecrets = list(`${prefix}_CLIENT_SECRET`)
    if (clientSecrets.length === 0) problems.push(`${prefix}_CLIENT_SECRET is required when ${prefix}_CLIENT_ID is set`)
    return { clientId, clientSecrets, apiUrl: (url(`${prefix}_API_URL`, ['http:', 'https:']) ?? '').replace(/\/+$/, '') }
  }
  const ouraBase = provider('OURA')
  let oura: Config['oura']
  if (ouraBase !== undefined) {
    const webhookVerificationToken = raw('OURA_WEBHOOK_VERIFICATION_TOKEN')
    if (webhookVerificationToken === undefined) {
      problems.push('OURA_WEBHOOK_VERIFICATION_TOKEN is required when OURA_CLIENT_ID is set')
    }
    oura = {
      ...ouraBase,
      webhookVerificationToken: webhookVerificationToken ?? '',
      authorizeUrl: url('OURA_AUTHORIZE_URL', ['http:', 'https:']) ?? '',
      requestsPer5Min: integer('OURA_REQUESTS_PER_5_MIN', 1, 1_000_000_000)
    }
  }

  const whoopBase = provider('WHOOP')
  const whoop: Config['whoop'] = whoopBase === undefined ? undefined : {
    ...whoopBase,
    requestsPerMinute: integer('WHOOP_REQUESTS_PER_MINUTE', 1, 1_000_000_000),
    requestsPerDay: integer('WHOOP_REQUESTS_PER_DAY', 1, 1_000_000_000)
  }

  const config: Config = {
    port,
    host,
    publicBaseUrl,
    databaseUrl,
    dataDir: raw('DATA_DIR') ?? './data',
    redisUrl,
    kafkaBrokers,
    kafkaTopic: raw('KAFKA_TOPIC') ?? 'biometric-events',
    kafkaDlqTopic: raw('KAFKA_DLQ_TOPIC') ?? 'biometric-events.dlq',
    maxConcurrentWebhooks: integer('MAX_CONCURRENT_WEBHOOKS', 0, 10_000),
    maxReceiptBacklog: integer('MAX_RECEIPT_BACKLOG', 1, 100_000_000),
    maxReceiptAttempts: integer('MAX_RECEIPT_ATTEMPTS', 1, 1000),
    retryBaseDelayMs: integer('RETRY_BASE_DELAY_MS', 1, 3_600_000),
    retryMaxDelayMs: integer('RETRY_MAX_DELAY_MS', 1, 86_400_000),
    redisTtlSeconds: integer('REDIS_TTL_SECONDS', 1, 31_536_000),
    maxTimeseriesEntries: integer('MAX_TIMESERIES_ENTRIES', 1, 10_000_000),
    healthkitEnabled: healthkitText === 'true',
    healthkitMaxSamples: integer('HEALTHKIT_MAX_SAMPLES', 1, 10_000_000),
    healthkitMaxBodyBytes: integer('HEALTHKIT_MAX_BODY_BYTES', 1024, 4 * 1024 ** 3),
    oura,
    whoop,
    backfillDays: integer('BACKFILL_DAYS', 0, 3650),
    reconcileIntervalMinutes: integer('RECONCILE_INTERVAL_MINUTES', 0, 10_080),
    webhookToleranceSeconds: integer('WEBHOOK_TOLERANCE_SECONDS', 1, 86_400),
    tokenEncryptionKeys,
    logPseudonymKey,
    connectSuccessUrl: url('CONNECT_SUCCESS_URL', ['http:', 'https:']),
    adminApiToken,
    logLevel,
    logFormat: logFormatText === 'json' || logFormatText === 'pretty'
      ? logFormatText
      : (options.isTty === true ? 'pretty' : 'json'),
    shutdownTimeoutMs: integer('SHUTDOWN_TIMEOUT_MS', 100, 3_600_000),
    dbPoolSize: integer('DB_POOL_SIZE', 1, 1000),
    dbStatementTimeoutMs: integer('DB_STATEMENT_TIMEOUT_MS', 100, 3_600_000)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

function parseEncryptionKeys(text: string | undefined, problems: string[]): EncryptionKey[] | undefined {
  if (text === undefined) return undefined
  const keys: EncryptionKey[] = []
  for (const [index, entry] of text.split(',').entries()) {
    const separator = entry.indexOf(':')
    const kid = entry.slice(0, separator).trim()
    const key = Buffer.from(entry.slice(separator + 1).trim(), 'base64')
    if (separator <= 0 || !/^[A-Za-z0-9_.-]{1,32}$/.test(kid)) {
      problems.push(`TOKEN_ENCRYPTION_KEYS entry ${index + 1} must be kid:base64key`)
    } else if (key.length !== 32) {
      // No kid in this message: in an entry written key-first, the "kid" is the secret key itself.
      problems.push(`TOKEN_ENCRYPTION_KEYS entry ${index + 1} must decode to 32 bytes`)
    } else if (keys.some((existing) => existing.kid === kid)) {
      problems.push(`TOKEN_ENCRYPTION_KEYS has kid ${kid} twice`)
    } else {
      keys.push({ kid, key })
    }
  }
  return keys
}
