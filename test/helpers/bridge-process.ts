import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TEST_LOG_DIR } from './canaries.ts'
import { deferCleanup } from './services.ts'

/**
 * The bridge as an operator runs it: a separate Node 24 process started from the repository, talking to the
 * test only through arguments, environment, stdout/stderr, exit status, signals and its HTTP port.
 */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node')
export const BRIDGE_BIN = join(REPO_ROOT, 'bin', 'bridge')
const MAIN = join(REPO_ROOT, 'src', 'main.ts')

/** A command that has not finished by then is hung; it is killed so the test fails instead of stalling. */
const COMMAND_TIMEOUT_MS = 60_000

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface CommandResult extends ExitStatus {
  stdout: string
  stderr: string
}

export interface LogLine {
  level: number
  msg: string
  [field: string]: unknown
}

/** Only PATH (and coverage collection) reaches the child: never a developer's DATABASE_URL or tokens. */
function childEnv(env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { PATH: process.env.PATH }
  if (process.env.NODE_V8_COVERAGE !== undefined) inherited.NODE_V8_COVERAGE = process.env.NODE_V8_COVERAGE
  return { ...inherited, ...env }
}

/** `timeoutMs` null: no deadline (servers, which their test ends). */
function spawnBridge(
  args: readonly string[], env: Readonly<Record<string, string>>, options: RunOptions, timeoutMs: number | null = COMMAND_TIMEOUT_MS
): ChildProcess {
  const [command, commandArgs] = options.via === 'bin' ? [options.binPath ?? BRIDGE_BIN, [...args]] : [NODE_BIN, [MAIN, ...args]]
  return spawn(command, commandArgs, {
    cwd: REPO_ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], killSignal: 'SIGKILL',
    ...(timeoutMs === null ? {} : { timeout: timeoutMs })
  })
}

function exitOf(child: ChildProcess): Promise<ExitStatus> {
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    // 'close' rather than 'exit': by then stdout and stderr are fully read.
    child.once('close', (code, signal) => { resolve({ code, signal }) })
  })
}

function openLog(name: string): WriteStream {
  mkdirSync(TEST_LOG_DIR, { recursive: true })
  return createWriteStream(join(TEST_LOG_DIR, `cli-${name}-${process.pid}.log`), { flags: 'a' })
}

export interface RunOptions {
  /** `node` runs `node_modules/.bin/node src/main.ts`; `bin` runs the shell launcher (or a link to it). */
  via?: 'node' | 'bin'
  binPath?: string
  /**
   * Also append the output to TEST_LOG_DIR/cli-<logName>-<pid>.log for the PHI scan. Leave unset for commands
   * that print issued credentials on purpose (api-keys create, devices create).
   */
  logName?: string
}

/** Runs one bridge command to completion and returns its output and exit status. */
export async function runBridge(
  args: readonly string[], env: Readonly<Record<string, string>> = {}, options: RunOptions = {}
): Promise<CommandResult> {
  const child = spawnBridge(args, env, options)
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk))
  const status = await exitOf(child)
  const result = { ...status, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }
  if (options.logName !== undefined) {
    const log = openLog(options.logName)
    log.write(`$ bridge ${args.join(' ')}\n${result.stdout}${result.stderr}`)
    log.end()
    await finished(log)
  }
  return result
}

export interface ServeProcess {
  child: ChildProcess
  /** `http://host:port` the server reported in its "bridge listening" line. */
  address: string
  /** JSON log lines read from stdout so far. */
  logs: LogLine[]
  /** The first log line with this msg, already seen or still to come; rejects if the process ends first. */
  waitForLog(msg: string): Promise<LogLine>
  /** False from the moment the process has exited (before its output is fully read). */
  isRunning(): boolean
  exited: Promise<ExitStatus>
}

/**
 * Starts `bridge serve` (LOG_FORMAT=json) and resolves once it listens. Its stdout and stderr are copied to
 * TEST_LOG_DIR/cli-<logName>-<pid>.log. A process still running when the test ends is killed.
 */
export async function startServe(t: TestContext, env: Readonly<Record<string, string>>, logName: string): Promise<ServeProcess> {
  // No command timeout: a server runs as long as its test needs (minutes for the fault tests); the cleanup below
  // kills it if the test leaves it running.
  const child = spawnBridge(['serve'], { ...env, LOG_FORMAT: 'json' }, {}, null)
  const log = openLog(logName)
  const exited = exitOf(child)
  let running = true
  const logs: LogLine[] = []
  const waiters: Array<{ msg: string, resolve: (line: LogLine) => void, reject: (error: Error) => void }> = []
  let partial = ''
  let stderrText = ''

  const onLine = (text: string): void => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      return
    }
    logs.push(line)
    for (const waiter of waiters.filter((w) => w.msg === line.msg)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(line)
    }
  }
  child.stdout?.on('data', (chunk: Buffer) => {
    log.write(chunk)
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop() ?? ''
    for (const text of lines) onLine(text)
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    log.write(chunk)
    stderrText += chunk.toString('utf8')
  })
  const ended = exited.then((status) => {
    running = false
    if (partial !== '') onLine(partial)
    for (const waiter of waiters.splice(0)) {
      waiter.reject(new Error(`bridge exited (${status.code ?? status.signal}) before logging "${waiter.msg}"; stderr: ${stderrText.slice(-2000)}`))
    }
    log.end()
    return finished(log)
  })
  // Before the test's scratch database is dropped (deferCleanup runs last-in, first-out).
  deferCleanup(t, async () => {
    if (running) child.kill('SIGKILL')
    await ended
  })

  const waitForLog = (msg: string): Promise<LogLine> => {
    const seen = logs.find((line) => line.msg === msg)
    if (seen !== undefined) return Promise.resolve(seen)
    if (!running) return Promise.reject(new Error(`bridge exited before logging "${msg}"; stderr: ${stderrText.slice(-2000)}`))
    return new Promise((resolve, reject) => { waiters.push({ msg, resolve, reject }) })
  }

  const listening = await waitForLog('bridge listening')
  if (typeof listening.address !== 'string') throw new Error('"bridge listening" has no address field')
  return { child, address: listening.address, logs, waitForLog, isRunning: () => child.exitCode === null && child.signalCode === null, exited }
}
