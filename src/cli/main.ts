import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { constants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { isScope } from '../auth/principals.ts'
import { loadConfig, type Config } from '../config/load.ts'
import { ConfigError, toError } from '../errors.ts'
import { runApiKeys, runDevices, runMigrate } from './admin-commands.ts'
import { runDemo } from './demo.ts'
import { runDlq } from './dlq.ts'
import { runReceipts } from './receipts.ts'
import { runOuraSubscriptions } from './oura.ts'
import { runServe } from './serve.ts'

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  isTty: boolean
}

/** sysexits.h codes, so scripts can tell a usage mistake from a bad environment from a failure. */
export const EXIT = { ok: 0, failure: 1, usage: 64, config: 78 } as const

const HELP = `Usage: bridge <command> [options]

Commands:
  serve                          start the HTTP server (configuration from the environment)
  migrate                        apply pending database migrations and exit
  api-keys create --name N --scope S [--scope S]   create an API key (scopes: admin, read:events); prints it once
  api-keys revoke <id>           revoke an API key
  devices create --user U [--name N]               issue a HealthKit device token; prints it once
  dlq list [--since T] [--until T] [--pending] [--limit N]      list dead-lettered messages
  dlq replay (<id>… | --since T [--until T] | --all)            re-publish dead letters to their topic
  oura subscriptions (list | sync | renew | delete (<id>… | --all))
                                 list, create (sync), renew or delete Oura webhook subscriptions; see docs/runbook.md
  receipts list [--limit N]      list dead-lettered webhook receipts (provider work that kept failing)
  receipts replay (<id>… | --all)  put dead-lettered receipts back to work
  demo [--days D] [--port P] [--keep-running]
                                 run the bridge on embedded defaults with a simulated iPhone uploading data
  bench [--quick] [--only …] [--soak D] [--render-only]
                                 run the benchmark suite of a source checkout (npm run bench); bench --help for more
  help                           show this text

Configuration is read from environment variables; see docs/configuration.md.
Exit codes: 0 ok, 1 failure, 64 usage error, 78 configuration error.
`

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  const print = (text: string): void => { io.stdout.write(text.endsWith('\n') ? text : `${text}\n`) }
  const fail = (text: string, code: number): number => {
    io.stderr.write(`bridge: ${text}\n`)
    return code
  }
  const config = (overrides: Record<string, string> = {}): Config => loadConfig({ ...io.env, ...overrides }, { isTty: io.isTty })

  try {
    switch (command) {
      case 'serve':
      case 'migrate':
        // Configuration comes only from the environment: a silently ignored `--port` would start on another port.
        if (rest.length > 0) return fail(`${command} takes no arguments (configure it with environment variables): ${rest.join(' ')}`, EXIT.usage)
        return command === 'serve' ? await runServe(config(), io) : await runMigrate(config(), print)
      case 'api-keys': {
        const { positionals, values } = parseArgs({
          args: rest, allowPositionals: true, strict: true,
          options: { name: { type: 'string' }, scope: { type: 'string', multiple: true } }
        })
        const [action, id] = positionals
        if (action === 'create' && positionals.length === 1) {
          const scopes = values.scope ?? []
          if (values.name === undefined || scopes.length === 0 || !scopes.every(isScope)) {
            return fail('api-keys create needs --name and at least one --scope of admin, read:events', EXIT.usage)
          }
          return await runApiKeys(config(), { action: 'create', name: values.name, scopes: scopes.filter(isScope) }, print)
        }
        if (action === 'revoke' && id !== undefined && positionals.length === 2) return await runApiKeys(config(), { action: 'revoke', id }, print)
        return fail('usage: bridge api-keys create --name N --scope S | bridge api-keys revoke <id>', EXIT.usage)
      }
      case 'devices': {
        const { positionals, values } = parseArgs({
          args: rest, allowPositionals: true, strict: true,
          options: { user: { type: 'string' }, name: { type: 'string' } }
        })
        if (positionals[0] !== 'create' || positionals.length !== 1 || values.user === undefined) {
          return fail('usage: bridge devices create --user U [--name N]', EXIT.usage)
        }
        return await runDevices(config(), { userId: values.user, name: values.name }, print)
      }
      case 'dlq': {
        const { positionals, values } = parseArgs({
          args: rest, allowPositionals: true, strict: true,
          options: {
            since: { type: 'string' }, until: { type: 'string' }, all: { type: 'boolean', default: false },
            pending: { type: 'boolean', default: false }, limit: { type: 'string', default: '1000' }
          }
        })
        const [action, ...ids] = positionals
        const time = (text: string | undefined): number | undefined => (text === undefined ? undefined : Date.parse(text))
        const sinceMs = time(values.since)
        const untilMs = time(values.until)
        const limit = Number(values.limit)
        if ((action !== 'list' && action !== 'replay') || Number.isNaN(sinceMs) || Number.isNaN(untilMs) ||
          !Number.isInteger(limit) || limit < 1 || ids.some((id) => !/^\d+$/.test(id))) {
          return fail('usage: bridge dlq list [--since T] [--until T] [--pending] | bridge dlq replay (<id>… | --since T | --all)', EXIT.usage)
        }
        if (action === 'list' && ids.length > 0) return fail('dlq list takes no ids', EXIT.usage)
        if (action === 'replay' && ids.length === 0 && sinceMs === undefined && !values.all) {
          return fail('dlq replay needs ids, --since or --all', EXIT.usage)
        }
        return await runDlq(config(), {
          action,
          filter: {
            ids: ids.length > 0 ? ids : undefined, sinceMs, untilMs, limit,
            // Replaying by time or --all skips letters already replayed; explicit ids are replayed again.
            pendingOnly: values.pending || (action === 'replay' && ids.length === 0)
          }
        }, print)
      }
      case 'oura': {
        const { positionals, values } = parseArgs({
          args: rest, allowPositionals: true, strict: true, options: { all: { type: 'boolean', default: false } }
        })
        const [group, action, ...ids] = positionals
        if (group === 'subscriptions' && (action === 'list' || action === 'sync' || action === 'renew')) {
          if (ids.length > 0 || values.all) return fail(`oura subscriptions ${action} takes no ids and no --all`, EXIT.usage)
          return await runOuraSubscriptions(config(), { action }, print)
        }
        if (group === 'subscriptions' && action === 'delete') {
          if ((ids.length > 0) === values.all) return fail('oura subscriptions delete needs ids or --all, not both', EXIT.usage)
          return await runOuraSubscriptions(config(), { action, ids, all: values.all }, print)
        }
        return fail('usage: bridge oura subscriptions list|sync|renew | bridge oura subscriptions delete (<id>… | --all)', EXIT.usage)
      }
      case 'receipts': {
        const { positionals, values } = parseArgs({
          args: rest, allowPositionals: true, strict: true,
          options: { all: { type: 'boolean', default: false }, limit: { type: 'string', default: '1000' } }
        })
        const [action, ...ids] = positionals
        const limit = Number(values.limit)
        if (action === 'list' && ids.length === 0 && !values.all && Number.isInteger(limit) && limit >= 1) {
          return await runReceipts(config(), { action, limit }, print)
        }
        if (action === 'replay' && (ids.length > 0) !== values.all && ids.every((id) => /^\d{1,18}$/.test(id))) {
          return await runReceipts(config(), { action, ids: values.all ? undefined : ids }, print)
        }
        return fail('usage: bridge receipts list [--limit N] | bridge receipts replay (<id>… | --all)', EXIT.usage)
      }
      case 'demo': {
        const { values } = parseArgs({
          args: rest, strict: true,
          options: { days: { type: 'string', default: '3' }, port: { type: 'string' }, 'keep-running': { type: 'boolean', default: false } }
        })
        const days = Number(values.days)
        if (!Number.isInteger(days) || days < 1 || days > 60) return fail('--days must be an integer from 1 to 60', EXIT.usage)
        // The demo runs on embedded defaults: an ephemeral database unless DATA_DIR says otherwise, any free port.
        const demoConfig = config({
          DATA_DIR: io.env.DATA_DIR ?? 'memory://',
          PORT: values.port ?? io.env.PORT ?? '0',
          LOG_LEVEL: io.env.LOG_LEVEL ?? 'warn'
        })
        return await runDemo(demoConfig, { days, keepRunning: values['keep-running'] }, io)
      }
      case 'bench':
        return await runBench(rest, fail)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(HELP)
        return command === undefined ? EXIT.usage : EXIT.ok
      default:
        return fail(`unknown command "${command}"\n\n${HELP}`, EXIT.usage)
    }
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message, EXIT.config)
    const failure = toError(error)
    if ((failure as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      (failure as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ||
      (failure as { code?: unknown }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      return fail(failure.message, EXIT.usage)
    }
    return fail(`${failure.name === 'BridgeError' ? failure.message : 'failed'} (${(failure as { code?: string }).code ?? failure.name})`, EXIT.failure)
  }
}

/**
 * `bridge bench [args]`: bench/run.ts of the checkout this CLI runs from, with the same Node, from the repository
 * root, arguments passed through and the terminal shared; its exit code is ours (128 + n when a signal ended it).
 */
async function runBench(args: readonly string[], fail: (text: string, code: number) => number): Promise<number> {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const runner = `${root}bench/run.ts`
  if (!existsSync(runner)) return fail(`bench needs a source checkout: ${runner} is missing`, EXIT.failure)
  const child = spawn(process.execPath, [runner, ...args], { cwd: root, stdio: 'inherit' })
  // Ctrl-C reaches the runner as well (same process group): wait for it to clean up rather than exit first.
  const ignore = (): void => {}
  const forward = (): void => { child.kill('SIGTERM') }
  process.on('SIGINT', ignore)
  process.on('SIGTERM', forward)
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])))
    })
  } finally {
    process.off('SIGINT', ignore)
    process.off('SIGTERM', forward)
  }
}
