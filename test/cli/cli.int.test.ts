import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import pg from 'pg'
import { listMigrations } from '../../src/storage/migrate.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { BRIDGE_BIN, runBridge, startServe, type CommandResult } from '../helpers/bridge-process.ts'
import { CANARY, recordCanary } from '../helpers/canaries.ts'
import { createScratchDatabase, requirePostgres } from '../helpers/services.ts'

const EX = { ok: 0, failure: 1, usage: 64, config: 78 } as const
const COMMANDS = ['serve', 'migrate', 'api-keys create', 'api-keys revoke', 'devices create', 'demo', 'help']

/** Nothing listens on port 1: a command that got past config and usage checks fails fast with exit 1. */
const UNREACHABLE_DB_ENV = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never',
  TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey,
  LOG_PSEUDONYM_KEY: CANARY.pseudonymKey
}

function dbEnv(url: string): Record<string, string> {
  return { DATABASE_URL: url, TOKEN_ENCRYPTION_KEYS: CANARY.encryptionKey, LOG_PSEUDONYM_KEY: CANARY.pseudonymKey }
}

function describeRun(result: CommandResult): string {
  return `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/** Every row of every table as PostgreSQL's text form (bytea as hex): what a database dump would reveal. */
async function dumpTables(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
    assert.ok(tables.some((table) => table.name === 'api_keys'), 'the dump covers the api_keys table')
    const parts: string[] = []
    for (const { name } of tables) {
      const { rows } = await client.query<{ row: string }>(`SELECT t::text AS row FROM "${name}" t`)
      parts.push(`${name}:`, ...rows.map((r) => r.row))
    }
    return parts.join('\n')
  })
}

/** The token, its random part, and the encodings a careless store could use. */
function assertNotStored(dump: string, token: string): void {
  const secret = token.slice(token.indexOf('_') + 1)
  for (const form of [token, secret, Buffer.from(token).toString('hex'), Buffer.from(token).toString('base64')]) {
    assert.ok(!dump.includes(form), 'an issued token is stored in plaintext')
  }
}

async function requireScratchDatabase(t: TestContext): Promise<string | undefined> {
  if (!(await requirePostgres(t))) return undefined
  return createScratchDatabase(t)
}

describe('bridge CLI: usage', { timeout: 120_000 }, () => {
  test('help prints every command and exits 0', async () => {
    const result = await runBridge(['help'])
    assert.equal(result.code, EX.ok, describeRun(result))
    assert.match(result.stdout, /^Usage: bridge <command>/)
    for (const command of COMMANDS) assert.ok(result.stdout.includes(`  ${command}`), `help lists "${command}"`)
    assert.match(result.stdout, /0 ok, 1 failure, 64 usage error, 78 configuration error/)
    assert.equal(result.stderr, '')
  })

  test('no command prints the usage and exits 64', async () => {
    const result = await runBridge([])
    assert.equal(result.code, EX.usage, describeRun(result))
    assert.match(result.stdout, /^Usage: bridge <command>/)
  })

  test('an unknown command exits 64 with the usage on stderr and nothing on stdout', async () => {
    const result = await runBridge(['frobnicate'], UNREACHABLE_DB_ENV)
    assert.equal(result.code, EX.usage, describeRun(result))
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^bridge: unknown command "frobnicate"\n/)
    assert.match(result.stderr, /Usage: bridge <command>/)
  })

  test('bad options and missing arguments exit 64 before touching the database', async () => {
    const cases: Array<{ args: string[], stderr: RegExp }> = [
      { args: ['api-keys', 'create', '--name', 'x', '--scope', 'read:events', '--bogus'], stderr: /--bogus/ },
      { args: ['api-keys', 'create', '--name', 'x', '--scope', 'superuser'], stderr: /--scope of admin, read:events/ },
      { args: ['api-keys', 'create', '--scope', 'admin'], stderr: /needs --name/ },
      { args: ['api-keys', 'revoke'], stderr: /usage: bridge api-keys/ },
      { args: ['api-keys'], stderr: /usage: bridge api-keys/ },
      { args: ['devices', 'create'], stderr: /usage: bridge devices create --user U/ },
      // A stray word is a typo (`--user alice bob` meant `--name bob`), not something to ignore.
      { args: ['devices', 'create', '--user', 'u', 'extra'], stderr: /usage: bridge devices create/ },
      { args: ['api-keys', 'create', 'extra', '--name', 'x', '--scope', 'admin'], stderr: /usage: bridge api-keys/ },
      { args: ['api-keys', 'revoke', '00000000-0000-0000-0000-000000000000', 'extra'], stderr: /usage: bridge api-keys/ },
      { args: ['devices', 'create', '--user'], stderr: /--user/ },
      { args: ['demo', '--days', '0'], stderr: /--days must be an integer from 1 to 60/ },
      { args: ['serve', '--port', '80'], stderr: /serve takes no arguments .*--port 80/ },
      { args: ['migrate', 'now'], stderr: /migrate takes no arguments/ }
    ]
    const results = await Promise.all(cases.map(async ({ args }) => runBridge(args, UNREACHABLE_DB_ENV)))
    for (const [index, { args, stderr }] of cases.entries()) {
      const result = results[index]!
      assert.equal(result.code, EX.usage, `bridge ${args.join(' ')}\n${describeRun(result)}`)
      assert.match(result.stderr, /^bridge: /)
      assert.match(result.stderr, stderr, `bridge ${args.join(' ')}`)
      assert.equal(result.stdout, '')
    }
  })

  test('bin/bridge runs the CLI, also through a symlink as npm installs it', async (t) => {
    const direct = await runBridge(['help'], {}, { via: 'bin' })
    assert.equal(direct.code, EX.ok, describeRun(direct))
    assert.match(direct.stdout, /^Usage: bridge <command>/)

    const dir = mkdtempSync(join(tmpdir(), 'bridge-bin-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    symlinkSync(BRIDGE_BIN, join(dir, 'bridge'))
    const linked = await runBridge(['frobnicate'], {}, { via: 'bin', binPath: join(dir, 'bridge') })
    assert.equal(linked.code, EX.usage, describeRun(linked))
    assert.match(linked.stderr, /unknown command "frobnicate"/)
  })
})

describe('bridge CLI: configuration errors', { timeout: 120_000 }, () => {
  test('every problem is reported at once with exit 78, before any connection is tried', async () => {
    const shortAdminToken = 'canary-short-admin-5d1e'
    recordCanary(shortAdminToken)
    const env = { PORT: 'abc', HEALTHKIT_ENABLED: 'maybe', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never', ADMIN_API_TOKEN: shortAdminToken }
    const commands = [['serve'], ['migrate'], ['api-keys', 'create', '--name', 'x', '--scope', 'admin']]
    const results = await Promise.all(commands.map((command) => runBridge(command, env, { logName: 'config-errors' })))
    for (const [index, command] of commands.entries()) {
      const result = results[index]!
      assert.equal(result.code, EX.config, `bridge ${command.join(' ')}\n${describeRun(result)}`)
      assert.equal(result.stdout, '')
      const problems = result.stderr.split('\n').filter((line) => line.startsWith('  - ')).sort()
      assert.deepEqual(problems, [
        '  - ADMIN_API_TOKEN must be at least 32 characters',
        '  - HEALTHKIT_ENABLED must be true or false',
        '  - LOG_PSEUDONYM_KEY is required with DATABASE_URL',
        '  - PORT must be an integer from 0 to 65535',
        '  - TOKEN_ENCRYPTION_KEYS is required with DATABASE_URL'
      ])
      assert.match(result.stderr, /^bridge: invalid configuration:\n/)
      assert.ok(!result.stderr.includes('canary'), 'the rejected admin token is not echoed')
      assert.ok(!result.stderr.includes('abc') && !result.stderr.includes('maybe'), 'messages name rules, not values')
    }
  })

  test('malformed secrets are reported without echoing any part of them', async () => {
    const noKid = 'canary-enc-key-without-kid-91c2e7'
    const tooShort = Buffer.from('canary-16-bytes!').toString('base64')
    // Written key-first: the secret lands where the kid belongs and even passes the kid pattern.
    const keyFirst = Buffer.from('canary-key-first-secret7').toString('base64')
    const shortPseudonymKey = 'canary-pseudo-short-4b'
    const dbPassword = 'canary-db-password-c0ffee'
    for (const secret of [noKid, tooShort, keyFirst, shortPseudonymKey, dbPassword]) recordCanary(secret)

    const result = await runBridge(['serve'], {
      TOKEN_ENCRYPTION_KEYS: `${noKid},k2:${tooShort},${keyFirst}:k3`,
      LOG_PSEUDONYM_KEY: shortPseudonymKey,
      DATABASE_URL: `mysql://root:${dbPassword}@127.0.0.1/bridge`
    }, { logName: 'config-errors' })
    assert.equal(result.code, EX.config, describeRun(result))
    assert.equal(result.stdout, '')
    const problems = result.stderr.split('\n').filter((line) => line.startsWith('  - ')).sort()
    assert.deepEqual(problems, [
      '  - DATABASE_URL must be a postgres: or postgresql: URL',
      '  - LOG_PSEUDONYM_KEY must be at least 32 characters',
      '  - TOKEN_ENCRYPTION_KEYS entry 1 must be kid:base64key',
      '  - TOKEN_ENCRYPTION_KEYS entry 2 must decode to 32 bytes',
      '  - TOKEN_ENCRYPTION_KEYS entry 3 must decode to 32 bytes'
    ])
    for (const secret of [noKid, tooShort, keyFirst, shortPseudonymKey, dbPassword, 'canary', 'root:']) {
      assert.ok(!result.stderr.includes(secret), 'a secret (or part of one) appears in the output')
    }
  })

  test('an unreachable database fails with exit 1 and a coded message without the connection password', async () => {
    const password = 'canary-db-password-unreachable-9e'
    recordCanary(password)
    const env = { ...UNREACHABLE_DB_ENV, DATABASE_URL: `postgres://postgres:${password}@127.0.0.1:1/never` }
    const commands = [['migrate'], ['api-keys', 'create', '--name', 'x', '--scope', 'admin'], ['devices', 'create', '--user', 'u']]
    const results = await Promise.all(commands.map((command) => runBridge(command, env, { logName: 'unreachable-db' })))
    for (const [index, command] of commands.entries()) {
      const result = results[index]!
      assert.equal(result.code, EX.failure, `bridge ${command.join(' ')}\n${describeRun(result)}`)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /^bridge: .+ \(BB_[A-Z_]+\)\n$/)
      assert.ok(!result.stderr.includes(password))
    }
  })
})

describe('bridge CLI: database commands (PostgreSQL)', { timeout: 120_000 }, () => {
  test('migrate applies every migration once, then reports the database up to date', async (t) => {
    const url = await requireScratchDatabase(t)
    if (url === undefined) return
    const versions = listMigrations().map((m) => m.version)
    assert.ok(versions.length > 0)

    const first = await runBridge(['migrate'], dbEnv(url), { logName: 'migrate' })
    assert.equal(first.code, EX.ok, describeRun(first))
    assert.equal(first.stdout, `applied migrations: ${versions.join(', ')}\n`)
    assert.equal(first.stderr, '')

    const second = await runBridge(['migrate'], dbEnv(url), { logName: 'migrate' })
    assert.equal(second.code, EX.ok, describeRun(second))
    assert.equal(second.stdout, 'database is up to date\n')

    const { rows } = await withClient(url, (client) =>
      client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'))
    assert.deepEqual(rows.map((r) => r.version), versions)
  })

  test('api-keys create prints a key once and stores only its hash; the key works until api-keys revoke', async (t) => {
    const url = await requireScratchDatabase(t)
    if (url === undefined) return
    const env = dbEnv(url)
    const created = await runBridge(['api-keys', 'create', '--name', 'x', '--scope', 'read:events'], env)
    assert.equal(created.code, EX.ok, describeRun(created))
    const id = /^id: +([0-9a-f-]{36})$/m.exec(created.stdout)?.[1]
    const token = /^token: +(bbk_[A-Za-z0-9_-]{43})$/m.exec(created.stdout)?.[1]
    assert.ok(id !== undefined && token !== undefined, `id and token printed:\n${created.stdout}`)
    recordCanary(token)
    assert.match(created.stdout, /^scopes: read:events$/m)
    assert.equal(created.stderr, '')

    const stored = await withClient(url, async (client) => (await client.query<{ id: string, name: string, scopes: string[], key_hash: Buffer, revoked_at: Date | null }>(
      'SELECT id::text AS id, name, scopes, key_hash, revoked_at FROM api_keys')).rows)
    assert.equal(stored.length, 1)
    assert.equal(stored[0]?.id, id)
    assert.equal(stored[0]?.name, 'x')
    assert.deepEqual(stored[0]?.scopes, ['read:events'])
    assert.deepEqual(stored[0]?.key_hash, sha256(token))
    assert.equal(stored[0]?.revoked_at, null)
    assertNotStored(await dumpTables(url), token)

    const server = await startServe(t, { ...env, PORT: '0', LOG_LEVEL: 'debug' }, 'api-keys')
    const withKey = { authorization: `Bearer ${token}` }
    const events = await fetch(`${server.address}/v1/users/cli-user/events`, { headers: withKey })
    assert.equal(events.status, 200)
    assert.deepEqual(await events.json(), { data: [], next_cursor: null })
    const forbidden = await fetch(`${server.address}/v1/users/cli-user/devices`, { method: 'POST', headers: withKey })
    assert.equal(forbidden.status, 403, 'a read:events key cannot issue device tokens')
    await forbidden.body?.cancel()

    const revoked = await runBridge(['api-keys', 'revoke', id], env)
    assert.equal(revoked.code, EX.ok, describeRun(revoked))
    assert.equal(revoked.stdout, `revoked ${id}\n`)
    const afterRevoke = await fetch(`${server.address}/v1/users/cli-user/events`, { headers: withKey })
    assert.equal(afterRevoke.status, 401, 'a revoked key no longer authenticates')
    await afterRevoke.body?.cancel()

    const again = await runBridge(['api-keys', 'revoke', id], env)
    assert.equal(again.code, EX.failure, describeRun(again))
    assert.equal(again.stdout, `no active API key with id ${id}\n`)
    const unknown = await runBridge(['api-keys', 'revoke', 'not-a-key-id'], env)
    assert.equal(unknown.code, EX.failure, describeRun(unknown))

    const audit = await withClient(url, async (client) => (await client.query<{ principal: string, action: string, key_id: string }>(
      "SELECT principal, action, detail->>'key_id' AS key_id FROM audit_log WHERE action LIKE 'api_key.%' ORDER BY id")).rows)
    assert.deepEqual(audit.map((a) => [a.principal, a.action, a.key_id]), [['cli', 'api_key.create', id], ['cli', 'api_key.revoke', id]])
  })

  test('api-keys create accepts several scopes; an admin key can issue device tokens', async (t) => {
    const url = await requireScratchDatabase(t)
    if (url === undefined) return
    const created = await runBridge(['api-keys', 'create', '--name', 'ops', '--scope', 'admin', '--scope', 'read:events'], dbEnv(url))
    assert.equal(created.code, EX.ok, describeRun(created))
    const token = /^token: +(bbk_\S+)$/m.exec(created.stdout)?.[1]
    assert.ok(token !== undefined)
    recordCanary(token)
    assert.match(created.stdout, /^scopes: admin, read:events$/m)
    const { rows } = await withClient(url, (client) => client.query<{ scopes: string[] }>('SELECT scopes FROM api_keys'))
    assert.deepEqual(rows.map((r) => r.scopes), [['admin', 'read:events']])

    const server = await startServe(t, { ...dbEnv(url), PORT: '0', LOG_LEVEL: 'debug' }, 'api-keys')
    const device = await fetch(`${server.address}/v1/users/cli-user/devices`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    assert.equal(device.status, 201)
    recordCanary((await device.json() as { token: string }).token)
  })

  test('devices create prints a device token, stored hashed, that uploads for that user', async (t) => {
    const url = await requireScratchDatabase(t)
    if (url === undefined) return
    const env = dbEnv(url)
    const created = await runBridge(['devices', 'create', '--user', CANARY.userId, '--name', 'cli phone'], env)
    assert.equal(created.code, EX.ok, describeRun(created))
    const deviceId = /^device_id: +([0-9a-f-]{36})$/m.exec(created.stdout)?.[1]
    const token = /^token: +(bbd_[A-Za-z0-9_-]{43})$/m.exec(created.stdout)?.[1]
    assert.ok(deviceId !== undefined && token !== undefined, `device id and token printed:\n${created.stdout}`)
    recordCanary(token)
    assert.equal(created.stderr, '')

    const { rows } = await withClient(url, (client) => client.query<{ id: string, user_id: string, name: string, token_hash: Buffer }>(
      'SELECT id::text AS id, user_id, name, token_hash FROM devices'))
    assert.deepEqual(rows, [{ id: deviceId, user_id: CANARY.userId, name: 'cli phone', token_hash: sha256(token) }])
    assertNotStored(await dumpTables(url), token)

    const server = await startServe(t, { ...env, PORT: '0', LOG_LEVEL: 'debug' }, 'devices')
    const upload = await fetch(`${server.address}/v1/healthkit/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: batch([heartRate(0), heartRate(1)])
    })
    assert.equal(upload.status, 200)
    assert.equal((await upload.json() as { accepted: number }).accepted, 2)
    const owners = await withClient(url, async (client) => (await client.query<{ user_id: string, n: number }>(
      'SELECT user_id, count(*)::int AS n FROM events GROUP BY user_id')).rows)
    assert.deepEqual(owners, [{ user_id: CANARY.userId, n: 2 }])
  })
})
