import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { loadConfig, type Config } from '../../src/config/load.ts'
import { SETTINGS, SETTING_NAMES, type SettingDefinition } from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'

type Env = Record<string, string | undefined>

const key32 = (fill: number): string => Buffer.alloc(32, fill).toString('base64')
const KEY_A = key32(1)
const KEY_B = key32(2)
const PSEUDONYM_KEY = 'p'.repeat(32)
const DATABASE_URL = 'postgres://bridge:pw@db.internal:5432/bridge'

/** The problems of a configuration that must fail; fails the test when it loads. */
function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return error.problems
  }
  assert.fail('expected a ConfigError')
}

describe('loadConfig defaults', () => {
  test('an empty environment loads the design §4 defaults (embedded mode)', () => {
    const expected: Config = {
      port: 8080,
      host: '127.0.0.1',
      publicBaseUrl: 'http://127.0.0.1:8080',
      databaseUrl: undefined,
      dataDir: './data',
      redisUrl: undefined,
      kafkaBrokers: [],
      kafkaTopic: 'biometric-events',
      kafkaDlqTopic: 'biometric-events.dlq',
      maxConcurrentWebhooks: 40,
      maxReceiptBacklog: 10_000,
      maxReceiptAttempts: 8,
      retryBaseDelayMs: 1000,
      retryMaxDelayMs: 300_000,
      redisTtlSeconds: 300,
      maxTimeseriesEntries: 5000,
      healthkitEnabled: true,
      healthkitMaxSamples: 100_000,
      healthkitMaxBodyBytes: 134_217_728,
      oura: undefined,
      whoop: undefined,
      backfillDays: 30,
      reconcileIntervalMinutes: 180,
      webhookToleranceSeconds: 300,
      tokenEncryptionKeys: undefined,
      logPseudonymKey: undefined,
      connectSuccessUrl: undefined,
      adminApiToken: undefined,
      logLevel: 'info',
      logFormat: 'json',
      shutdownTimeoutMs: 25_000,
      dbPoolSize: 10,
      dbStatementTimeoutMs: 5000
    }
    assert.deepEqual(loadConfig({}), expected)
  })

  test('the schema states the design §4 defaults', () => {
    const design: Record<string, string | undefined> = {
      PORT: '8080',
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: undefined,
      DATABASE_URL: undefined,
      DATA_DIR: './data',
      REDIS_URL: undefined,
      KAFKA_BROKERS: undefined,
      KAFKA_TOPIC: 'biometric-events',
      KAFKA_DLQ_TOPIC: 'biometric-events.dlq',
      MAX_CONCURRENT_WEBHOOKS: '40',
      MAX_RECEIPT_BACKLOG: '10000',
      MAX_RECEIPT_ATTEMPTS: '8',
      REDIS_TTL_SECONDS: '300',
      MAX_TIMESERIES_ENTRIES: '5000',
      HEALTHKIT_ENABLED: 'true',
      HEALTHKIT_MAX_SAMPLES: '100000',
      OURA_CLIENT_ID: undefined,
      OURA_CLIENT_SECRET: undefined,
      OURA_WEBHOOK_VERIFICATION_TOKEN: undefined,
      OURA_API_URL: 'https://api.ouraring.com',
      OURA_AUTHORIZE_URL: 'https://cloud.ouraring.com/oauth/authorize',
      WHOOP_CLIENT_ID: undefined,
      WHOOP_CLIENT_SECRET: undefined,
      WHOOP_API_URL: 'https://api.prod.whoop.com',
      BACKFILL_DAYS: '30',
      WEBHOOK_TOLERANCE_SECONDS: '300',
      TOKEN_ENCRYPTION_KEYS: undefined,
      LOG_PSEUDONYM_KEY: undefined,
      CONNECT_SUCCESS_URL: undefined,
      ADMIN_API_TOKEN: undefined,
      LOG_LEVEL: 'info'
    }
    for (const [name, value] of Object.entries(design)) {
      assert.ok(Object.hasOwn(SETTINGS, name), `${name} is missing from SETTINGS`)
      const definition: SettingDefinition = SETTINGS[name as keyof typeof SETTINGS]
      assert.equal(definition.default, value, name)
    }
  })

  test('PUBLIC_BASE_URL follows PORT', () => {
    assert.equal(loadConfig({ PORT: '9090' }).publicBaseUrl, 'http://127.0.0.1:9090')
  })

  test('empty and blank values count as unset', () => {
    const blank: Env = Object.fromEntries(SETTING_NAMES.map((name) => [name, name.length % 2 === 0 ? '' : '  ']))
    assert.deepEqual(loadConfig(blank), loadConfig({}))
  })

  test('variables outside the schema are ignored', () => {
    assert.deepEqual(loadConfig({ PATH: '/usr/bin', HOME: '/root', NODE_ENV: 'production' }), loadConfig({}))
  })

  test('the log format follows the terminal unless LOG_FORMAT says otherwise', () => {
    assert.equal(loadConfig({}, { isTty: true }).logFormat, 'pretty')
    assert.equal(loadConfig({}, { isTty: false }).logFormat, 'json')
    assert.equal(loadConfig({ LOG_FORMAT: 'json' }, { isTty: true }).logFormat, 'json')
    assert.equal(loadConfig({ LOG_FORMAT: 'pretty' }, { isTty: false }).logFormat, 'pretty')
  })
})

describe('loadConfig values', () => {
  test('reads explicit values, trimmed', () => {
    const config = loadConfig({
      PORT: ' 3000 ',
      HOST: '0.0.0.0',
      PUBLIC_BASE_URL: 'https://bridge.example.com/',
      DATA_DIR: 'memory://',
      REDIS_URL: 'rediss://cache.internal:6380/0',
      KAFKA_BROKERS: 'kafka-0.kafka:9092, kafka-1.kafka:9092,,',
      KAFKA_TOPIC: 'events',
      KAFKA_DLQ_TOPIC: 'events.dlq',
      MAX_CONCURRENT_WEBHOOKS: '8',
      HEALTHKIT_ENABLED: 'false',
      BACKFILL_DAYS: '0',
      LOG_LEVEL: 'debug',
      CONNECT_SUCCESS_URL: 'https://app.example.com/connected',
      SHUTDOWN_TIMEOUT_MS: '10000',
      DB_POOL_SIZE: '25',
      DB_STATEMENT_TIMEOUT_MS: '1500'
    })
    assert.equal(config.port, 3000)
    assert.equal(config.host, '0.0.0.0')
    assert.equal(config.publicBaseUrl, 'https://bridge.example.com')
    assert.equal(config.dataDir, 'memory://')
    assert.equal(config.redisUrl, 'rediss://cache.internal:6380/0')
    assert.deepEqual(config.kafkaBrokers, ['kafka-0.kafka:9092', 'kafka-1.kafka:9092'])
    assert.equal(config.kafkaTopic, 'events')
    assert.equal(config.kafkaDlqTopic, 'events.dlq')
    assert.equal(config.maxConcurrentWebhooks, 8)
    assert.equal(config.healthkitEnabled, false)
    assert.equal(config.backfillDays, 0)
    assert.equal(config.logLevel, 'debug')
    assert.equal(config.connectSuccessUrl, 'https://app.example.com/connected')
    assert.equal(config.shutdownTimeoutMs, 10_000)
    assert.equal(config.dbPoolSize, 25)
    assert.equal(config.dbStatementTimeoutMs, 1500)
  })

  const invalid: Array<[Env, string]> = [
    [{ PORT: 'http' }, 'PORT must be an integer from 0 to 65535'],
    [{ PORT: '65536' }, 'PORT must be an integer from 0 to 65535'],
    [{ PORT: '-1' }, 'PORT must be an integer from 0 to 65535'],
    [{ PORT: '80.5' }, 'PORT must be an integer from 0 to 65535'],
    [{ PORT: '1e3' }, 'PORT must be an integer from 0 to 65535'],
    [{ MAX_CONCURRENT_WEBHOOKS: '-1' }, 'MAX_CONCURRENT_WEBHOOKS must be an integer from 0 to 10000'],
    [{ MAX_RECEIPT_ATTEMPTS: '99999999999999999999' }, 'MAX_RECEIPT_ATTEMPTS must be an integer from 1 to 1000'],
    [{ HEALTHKIT_MAX_BODY_BYTES: '512' }, 'HEALTHKIT_MAX_BODY_BYTES must be an integer from 1024 to 4294967296'],
    [{ DB_STATEMENT_TIMEOUT_MS: '0' }, 'DB_STATEMENT_TIMEOUT_MS must be an integer from 100 to 3600000'],
    [{ PUBLIC_BASE_URL: 'bridge.example.com' }, 'PUBLIC_BASE_URL must be a URL'],
    [{ PUBLIC_BASE_URL: 'ftp://bridge.example.com' }, 'PUBLIC_BASE_URL must be a http: or https: URL'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL must be a redis: or rediss: URL'],
    [{ KAFKA_BROKERS: 'kafka-0' }, 'KAFKA_BROKERS entries must look like host:port'],
    [{ KAFKA_BROKERS: 'kafka://kafka-0:9092' }, 'KAFKA_BROKERS entries must look like host:port'],
    [{ HEALTHKIT_ENABLED: 'yes' }, 'HEALTHKIT_ENABLED must be true or false'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent'],
    [{ LOG_FORMAT: 'xml' }, 'LOG_FORMAT must be json or pretty'],
    [{ CONNECT_SUCCESS_URL: 'javascript:alert(1)' }, 'CONNECT_SUCCESS_URL must be a http: or https: URL'],
    [{ ADMIN_API_TOKEN: 'short' }, 'ADMIN_API_TOKEN must be at least 32 characters'],
    [{ LOG_PSEUDONYM_KEY: 'short' }, 'LOG_PSEUDONYM_KEY must be at least 32 characters']
  ]
  for (const [env, problem] of invalid) {
    test(`refuses ${JSON.stringify(env)}: ${problem}`, () => {
      assert.deepEqual(problemsOf(env), [problem])
    })
  }
})

describe('loadConfig error reporting', () => {
  test('reports every problem at once', () => {
    const problems = problemsOf({ PORT: 'eighty', LOG_LEVEL: 'loud', HEALTHKIT_ENABLED: 'maybe', KAFKA_BROKERS: 'nohost' })
    assert.deepEqual([...problems].sort(), [
      'HEALTHKIT_ENABLED must be true or false',
      'KAFKA_BROKERS entries must look like host:port',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
      'PORT must be an integer from 0 to 65535'
    ])
  })

  test('the error lists every problem in its message and is a BB_CONFIG_INVALID', () => {
    try {
      loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', HEALTHKIT_ENABLED: 'maybe', KAFKA_BROKERS: 'nohost' })
      assert.fail('expected a ConfigError')
    } catch (error) {
      assert.ok(error instanceof ConfigError)
      assert.equal(error.code, 'BB_CONFIG_INVALID')
      assert.equal(error.problems.length, 4)
      for (const problem of error.problems) assert.ok(error.message.includes(`  - ${problem}`), problem)
    }
  })

  test('never prints a secret value, however it is wrong', () => {
    const canary = (label: string): string => `CANARY${label}x7Qz`
    const env: Env = {
      DATABASE_URL: `mysql://bridge:${canary('DBPASS')}@db:3306/bridge`,
      REDIS_URL: `redis//:${canary('REDISPASS')}@cache:6379`,
      // Written key-first by mistake: the "kid" is the secret key itself.
      TOKEN_ENCRYPTION_KEYS: `${canary('KEY')}:k1,k2:${canary('SHORTKEY')},${canary('NOKID')}`,
      LOG_PSEUDONYM_KEY: canary('PSEUDO'),
      ADMIN_API_TOKEN: canary('ADMIN'),
      OURA_CLIENT_ID: 'oura-app',
      OURA_CLIENT_SECRET: ' , ',
      OURA_WEBHOOK_VERIFICATION_TOKEN: '',
      OURA_API_URL: `not a url ${canary('OURAURL')}`,
      WHOOP_CLIENT_ID: 'whoop-app',
      WHOOP_CLIENT_SECRET: '',
      WHOOP_API_URL: `ftp://${canary('WHOOPURL')}@whoop`,
      CONNECT_SUCCESS_URL: canary('CONNECT')
    }
    let caught: unknown
    try {
      loadConfig(env)
    } catch (error) {
      caught = error
    }
    assert.ok(caught instanceof ConfigError)
    assert.ok(caught.problems.length >= 10, caught.message)
    const printed = [caught.message, String(caught), caught.stack ?? '', JSON.stringify(caught), ...caught.problems].join('\n')
    assert.doesNotMatch(printed, /CANARY/)
  })

  test('names each secret variable that is wrong, without its value', () => {
    const problems = problemsOf({
      DATABASE_URL,
      TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(16).toString('base64')}`,
      LOG_PSEUDONYM_KEY: 'too-short-secret'
    })
    assert.deepEqual(problems, [
      'TOKEN_ENCRYPTION_KEYS entry 1 must decode to 32 bytes',
      'LOG_PSEUDONYM_KEY must be at least 32 characters'
    ])
  })
})

describe('loadConfig required-when rules', () => {
  test('DATABASE_URL requires TOKEN_ENCRYPTION_KEYS and LOG_PSEUDONYM_KEY', () => {
    assert.deepEqual(problemsOf({ DATABASE_URL }), [
      'TOKEN_ENCRYPTION_KEYS is required with DATABASE_URL',
      'LOG_PSEUDONYM_KEY is required with DATABASE_URL'
    ])
    assert.deepEqual(problemsOf({ DATABASE_URL, LOG_PSEUDONYM_KEY: PSEUDONYM_KEY }), [
      'TOKEN_ENCRYPTION_KEYS is required with DATABASE_URL'
    ])
    assert.deepEqual(problemsOf({ DATABASE_URL, TOKEN_ENCRYPTION_KEYS: `k1:${KEY_A}` }), [
      'LOG_PSEUDONYM_KEY is required with DATABASE_URL'
    ])
  })

  test('DATABASE_URL with both keys loads', () => {
    const config = loadConfig({ DATABASE_URL, TOKEN_ENCRYPTION_KEYS: `k1:${KEY_A}`, LOG_PSEUDONYM_KEY: PSEUDONYM_KEY })
    assert.equal(config.databaseUrl, DATABASE_URL)
    assert.equal(config.logPseudonymKey, PSEUDONYM_KEY)
    assert.deepEqual(config.tokenEncryptionKeys, [{ kid: 'k1', key: Buffer.alloc(32, 1) }])
  })

  test('postgresql: is accepted as well as postgres:, anything else is refused', () => {
    const keys = { TOKEN_ENCRYPTION_KEYS: `k1:${KEY_A}`, LOG_PSEUDONYM_KEY: PSEUDONYM_KEY }
    assert.equal(loadConfig({ ...keys, DATABASE_URL: 'postgresql://db/bridge' }).databaseUrl, 'postgresql://db/bridge')
    assert.deepEqual(problemsOf({ ...keys, DATABASE_URL: 'mysql://db/bridge' }), ['DATABASE_URL must be a postgres: or postgresql: URL'])
  })

  test('embedded mode needs no keys, and takes them when given', () => {
    assert.equal(loadConfig({}).tokenEncryptionKeys, undefined)
    const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k1:${KEY_A}`, LOG_PSEUDONYM_KEY: PSEUDONYM_KEY })
    assert.equal(config.tokenEncryptionKeys?.length, 1)
    assert.equal(config.logPseudonymKey, PSEUDONYM_KEY)
  })

  test('OURA_CLIENT_ID requires OURA_CLIENT_SECRET and OURA_WEBHOOK_VERIFICATION_TOKEN', () => {
    assert.deepEqual(problemsOf({ OURA_CLIENT_ID: 'oura-app' }), [
      'OURA_CLIENT_SECRET is required when OURA_CLIENT_ID is set',
      'OURA_WEBHOOK_VERIFICATION_TOKEN is required when OURA_CLIENT_ID is set'
    ])
    assert.deepEqual(problemsOf({ OURA_CLIENT_ID: 'oura-app', OURA_CLIENT_SECRET: 'secret' }), [
      'OURA_WEBHOOK_VERIFICATION_TOKEN is required when OURA_CLIENT_ID is set'
    ])
    assert.deepEqual(problemsOf({ OURA_CLIENT_ID: 'oura-app', OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt' }), [
      'OURA_CLIENT_SECRET is required when OURA_CLIENT_ID is set'
    ])
  })

  test('WHOOP_CLIENT_ID requires WHOOP_CLIENT_SECRET', () => {
    assert.deepEqual(problemsOf({ WHOOP_CLIENT_ID: 'whoop-app' }), [
      'WHOOP_CLIENT_SECRET is required when WHOOP_CLIENT_ID is set'
    ])
  })

  test('provider secrets without a client id leave the provider disabled', () => {
    const config = loadConfig({
      OURA_CLIENT_SECRET: 'secret', OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt', WHOOP_CLIENT_SECRET: 'secret'
    })
    assert.equal(config.oura, undefined)
    assert.equal(config.whoop, undefined)
  })

  test('an enabled Oura carries its settings, with trailing slashes dropped', () => {
    const config = loadConfig({
      OURA_CLIENT_ID: 'oura-app',
      OURA_CLIENT_SECRET: 'oura-secret',
      OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt-123',
      OURA_API_URL: 'http://127.0.0.1:9001/'
    })
    assert.deepEqual(config.oura, {
      clientId: 'oura-app',
      clientSecrets: ['oura-secret'],
      apiUrl: 'http://127.0.0.1:9001',
      webhookVerificationToken: 'vt-123',
      authorizeUrl: 'https://cloud.ouraring.com/oauth/authorize',
      requestsPer5Min: 5000
    })
    assert.equal(loadConfig({
      OURA_CLIENT_ID: 'oura-app', OURA_CLIENT_SECRET: 'oura-secret', OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt-123', OURA_REQUESTS_PER_5_MIN: '2500'
    }).oura?.requestsPer5Min, 2500, 'a node\'s share of the budget')
  })

  test('an enabled WHOOP carries its settings', () => {
    assert.deepEqual(loadConfig({ WHOOP_CLIENT_ID: 'whoop-app', WHOOP_CLIENT_SECRET: 'whoop-secret' }).whoop, {
      clientId: 'whoop-app',
      clientSecrets: ['whoop-secret'],
      apiUrl: 'https://api.prod.whoop.com',
      requestsPerMinute: 100,
      requestsPerDay: 10_000
    })
    assert.deepEqual(problemsOf({ WHOOP_CLIENT_ID: 'w', WHOOP_CLIENT_SECRET: 's', WHOOP_REQUESTS_PER_MINUTE: '0' }).length, 1)
  })

  test('a provider API URL is checked only when the provider is enabled', () => {
    assert.doesNotThrow(() => loadConfig({ WHOOP_API_URL: 'not a url' }))
    assert.deepEqual(problemsOf({ WHOOP_CLIENT_ID: 'w', WHOOP_CLIENT_SECRET: 's', WHOOP_API_URL: 'not a url' }), [
      'WHOOP_API_URL must be a URL'
    ])
  })
})

describe('provider secret lists', () => {
  const cases: Array<[string, string[]]> = [
    ['current', ['current']],
    ['new,old', ['new', 'old']],
    [' new , old ', ['new', 'old']],
    ['new,,old,', ['new', 'old']],
    ['a,b,c', ['a', 'b', 'c']]
  ]
  for (const [written, secrets] of cases) {
    test(`"${written}" is read as ${JSON.stringify(secrets)}; the first is the OAuth secret`, () => {
      const config = loadConfig({
        OURA_CLIENT_ID: 'o', OURA_CLIENT_SECRET: written, OURA_WEBHOOK_VERIFICATION_TOKEN: 'vt',
        WHOOP_CLIENT_ID: 'w', WHOOP_CLIENT_SECRET: written
      })
      assert.deepEqual(config.oura?.clientSecrets, secrets)
      assert.deepEqual(config.whoop?.clientSecrets, secrets)
    })
  }

  test('a list of only commas counts as missing', () => {
    assert.deepEqual(problemsOf({ WHOOP_CLIENT_ID: 'w', WHOOP_CLIENT_SECRET: ' , ,' }), [
      'WHOOP_CLIENT_SECRET is required when WHOOP_CLIENT_ID is set'
    ])
  })
})

describe('TOKEN_ENCRYPTION_KEYS', () => {
  const keysOf = (text: string) => loadConfig({ TOKEN_ENCRYPTION_KEYS: text }).tokenEncryptionKeys

  test('reads one kid:base64 key of 32 bytes', () => {
    assert.deepEqual(keysOf(`2026-01:${KEY_A}`), [{ kid: '2026-01', key: Buffer.alloc(32, 1) }])
  })

  test('reads a rotation list in order: the first encrypts, all decrypt', () => {
    const keys = keysOf(`new:${KEY_B}, old:${KEY_A}`)
    assert.deepEqual(keys?.map((key) => key.kid), ['new', 'old'])
    assert.deepEqual(keys?.[0]?.key, Buffer.alloc(32, 2))
    assert.deepEqual(keys?.[1]?.key, Buffer.alloc(32, 1))
  })

  test('accepts unpadded and URL-safe base64', () => {
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, index) => 250 - index))
    assert.deepEqual(keysOf(`k1:${bytes.toString('base64url')}`)?.[0]?.key, bytes)
    assert.deepEqual(keysOf(`k1:${bytes.toString('base64').replace(/=+$/, '')}`)?.[0]?.key, bytes)
  })

  const refused: Array<[string, string, string[]]> = [
    ['a duplicate kid', `k1:${KEY_A},k1:${KEY_B}`, ['TOKEN_ENCRYPTION_KEYS has kid k1 twice']],
    ['a 16-byte key', `k1:${Buffer.alloc(16).toString('base64')}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must decode to 32 bytes']],
    ['a 31-byte key', `k1:${Buffer.alloc(31).toString('base64')}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must decode to 32 bytes']],
    ['a 33-byte key', `k1:${Buffer.alloc(33).toString('base64')}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must decode to 32 bytes']],
    ['a bad key after a good one', `k1:${KEY_A},k2:${Buffer.alloc(24).toString('base64')}`, ['TOKEN_ENCRYPTION_KEYS entry 2 must decode to 32 bytes']],
    ['an empty key', 'k1:', ['TOKEN_ENCRYPTION_KEYS entry 1 must decode to 32 bytes']],
    ['a key without a kid', KEY_A, ['TOKEN_ENCRYPTION_KEYS entry 1 must be kid:base64key']],
    ['an empty kid', `:${KEY_A}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must be kid:base64key']],
    ['a kid with spaces inside', `key one:${KEY_A}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must be kid:base64key']],
    ['a kid over 32 characters', `${'k'.repeat(33)}:${KEY_A}`, ['TOKEN_ENCRYPTION_KEYS entry 1 must be kid:base64key']],
    ['an empty entry', `k1:${KEY_A},`, ['TOKEN_ENCRYPTION_KEYS entry 2 must be kid:base64key']],
    ['several problems', `k1:${KEY_A},k1:${KEY_A},k3:AAAA,nokid`, [
      'TOKEN_ENCRYPTION_KEYS has kid k1 twice',
      'TOKEN_ENCRYPTION_KEYS entry 3 must decode to 32 bytes',
      'TOKEN_ENCRYPTION_KEYS entry 4 must be kid:base64key'
    ]]
  ]
  for (const [title, text, problems] of refused) {
    test(`refuses ${title}`, () => {
      assert.deepEqual(problemsOf({ TOKEN_ENCRYPTION_KEYS: text }), problems)
    })
  }
})
