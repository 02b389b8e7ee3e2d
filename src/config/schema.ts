/**
 * The configuration contract (design §4) as data: every environment variable with its default, whether it is
 * a secret, and one line of documentation. docs/configuration.md is checked against this table by a test.
 */
export interface SettingDefinition {
  /** Default as the operator would write it; undefined means "unset". */
  default?: string
  secret?: boolean
  description: string
}

export const SETTINGS = {
  PORT: { default: '8080', description: 'HTTP port' },
  HOST: { default: '127.0.0.1', description: 'bind address (`0.0.0.0` in containers)' },
  PUBLIC_BASE_URL: { description: 'external URL; OAuth redirect URIs and the Oura callback derive from it. Default `http://127.0.0.1:$PORT`' },
  DATABASE_URL: { secret: true, description: '`postgres://…` for real PostgreSQL; unset → embedded PGlite in `DATA_DIR`' },
  DATA_DIR: { default: './data', description: 'embedded database and dev keys; `memory://` for an ephemeral run' },
  REDIS_URL: { secret: true, description: '`redis://…`; unset → in-process cache, dedup and locks (single node only)' },
  KAFKA_BROKERS: { description: 'comma-separated `host:port`; unset → no publishing (outbox kept, relay idle, one warning)' },
  KAFKA_TOPIC: { default: 'biometric-events', description: 'topic for biometric events' },
  KAFKA_DLQ_TOPIC: { default: 'biometric-events.dlq', description: 'dead-letter topic' },
  MAX_CONCURRENT_WEBHOOKS: { default: '40', description: 'worker concurrency (the semaphore); `0` → this node only accepts webhooks and leaves the receipts to other nodes' },
  MAX_RECEIPT_BACKLOG: { default: '10000', description: 'pending receipts above which intake answers 503 + `Retry-After`' },
  MAX_RECEIPT_ATTEMPTS: { default: '8', description: 'attempts before a receipt is dead-lettered' },
  RETRY_BASE_DELAY_MS: { default: '1000', description: 'first retry delay of a failed receipt, in milliseconds; doubles per attempt (±10 % jitter); a provider\'s `Retry-After` wins when longer' },
  RETRY_MAX_DELAY_MS: { default: '300000', description: 'cap of the retry delay of a failed receipt, in milliseconds' },
  REDIS_TTL_SECONDS: { default: '300', description: 'TTL of cached latest values, in seconds' },
  MAX_TIMESERIES_ENTRIES: { default: '5000', description: 'recent entries kept per user and metric in Redis' },
  HEALTHKIT_ENABLED: { default: 'true', description: '`false` disables HealthKit endpoints (404) without code changes' },
  HEALTHKIT_MAX_SAMPLES: { default: '100000', description: 'samples per upload; larger → 413' },
  HEALTHKIT_MAX_BODY_BYTES: { default: '134217728', description: 'bytes per HealthKit upload body (128 MiB); larger → 413 before buffering' },
  OURA_CLIENT_ID: { description: 'Oura OAuth app id; unset → Oura disabled' },
  OURA_CLIENT_SECRET: { secret: true, description: 'Oura OAuth secret, also keys webhook signatures; a comma list during rotation (the first is used for OAuth)' },
  OURA_WEBHOOK_VERIFICATION_TOKEN: { secret: true, description: 'echoed check of Oura\'s GET handshake; required when Oura is enabled' },
  OURA_REQUESTS_PER_5_MIN: { default: '5000', description: 'Oura API requests per 5 minutes (Oura\'s per-app limit), shared by all nodes through Redis (per node without it); raise only if Oura granted your app more' },
  OURA_API_URL: { default: 'https://api.ouraring.com', description: 'base for `/v2/...` and `/oauth/token`' },
  OURA_AUTHORIZE_URL: { default: 'https://cloud.ouraring.com/oauth/authorize', description: 'Oura authorization endpoint' },
  WHOOP_CLIENT_ID: { description: 'WHOOP OAuth app id; unset → WHOOP disabled' },
  WHOOP_CLIENT_SECRET: { secret: true, description: 'WHOOP OAuth secret, also keys webhook signatures; a comma list during rotation (the first is used for OAuth)' },
  WHOOP_API_URL: { default: 'https://api.prod.whoop.com', description: 'base for `/developer/v2/...` and `/oauth/oauth2/{auth,token}`' },
  WHOOP_REQUESTS_PER_MINUTE: { default: '100', description: 'WHOOP API requests per minute (WHOOP\'s per-app limit), shared by all nodes through Redis (per node without it)' },
  WHOOP_REQUESTS_PER_DAY: { default: '10000', description: 'WHOOP API requests per day (WHOOP\'s per-app limit), shared like the per-minute one' },
  BACKFILL_DAYS: { default: '30', description: 'history fetched when a user connects a provider, in days' },
  RECONCILE_INTERVAL_MINUTES: { default: '180', description: 'how often the last 2 days of every connection are fetched again, so a missed webhook costs latency, not data; `0` disables' },
  WEBHOOK_TOLERANCE_SECONDS: { default: '300', description: 'accepted clock skew of signed webhook timestamps, in seconds' },
  TOKEN_ENCRYPTION_KEYS: { secret: true, description: '`kid:base64key[,kid:base64key…]`, 32-byte AES-256-GCM keys, first encrypts, all decrypt; required with `DATABASE_URL`, generated in `DATA_DIR` (with a warning) in embedded mode' },
  LOG_PSEUDONYM_KEY: { secret: true, description: 'HMAC key (at least 32 characters) for user-id pseudonyms in logs; same rule as `TOKEN_ENCRYPTION_KEYS`' },
  CONNECT_SUCCESS_URL: { description: 'where the OAuth callback redirects after a successful connection; unset → a plain 200 page' },
  ADMIN_API_TOKEN: { secret: true, description: 'bootstrap bearer token with every scope (at least 32 characters); unset → admin API disabled' },
  LOG_LEVEL: { default: 'info', description: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`' },
  LOG_FORMAT: { description: '`json` or `pretty`; unset → pretty on a terminal, JSON otherwise' },
  SHUTDOWN_TIMEOUT_MS: { default: '25000', description: 'graceful-stop deadline in milliseconds; after it the process exits anyway' },
  DB_POOL_SIZE: { default: '10', description: 'PostgreSQL connections per process' },
  DB_STATEMENT_TIMEOUT_MS: { default: '5000', description: 'deadline of one PostgreSQL statement and of the wait for a pooled connection, in milliseconds; past it the request answers 503 + `Retry-After`, even when the database or the link hangs' }
} as const satisfies Record<string, SettingDefinition>

export type SettingName = keyof typeof SETTINGS
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[]
