import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { promisify } from 'node:util'
import { freePort } from './redis-server.ts'
import { deferCleanup, requireService } from './services.ts'

const run = promisify(execFile)

/**
 * A PostgreSQL cluster of the test's own (initdb into a temporary directory, started on a free port), so a test
 * can crash it (`stop('immediate')`), restart it and freeze it (SIGSTOP) without touching the shared server.
 * Stopped and deleted after the test (register it before the app, so the app stops first).
 */
export interface PrivatePostgres {
  port: number
  /** URL of the cluster's `postgres` database (trust authentication, user postgres). */
  url: string
  /** `pg_ctl stop -m <mode>`; `immediate` is a crash: no checkpoint, recovery from WAL on the next start. */
  stop(mode: 'immediate' | 'fast'): Promise<void>
  /** `pg_ctl start -w` on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>
  /** SIGSTOP of the postmaster and every process it forked: the server hangs, its sockets stay open. */
  pause(): void
  /** SIGCONT of the same processes. */
  resume(): void
}

/** The PostgreSQL binaries: PG_BIN, else the newest /usr/lib/postgresql/<version>/bin holding initdb. */
function binDir(): string | undefined {
  if (process.env.PG_BIN !== undefined) return existsSync(join(process.env.PG_BIN, 'initdb')) ? process.env.PG_BIN : undefined
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a))
  return versions.map((version) => join(root, version, 'bin')).find((dir) => existsSync(join(dir, 'initdb')))
}

/** initdb and the server refuse to run as root: as root, run them as the `postgres` system user. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]
}

/** Skips (locally) or fails (CI) when the PostgreSQL server binaries are missing. Returns undefined then. */
export async function startPrivatePostgres(t: TestContext): Promise<PrivatePostgres | undefined> {
  const bin = binDir()
  let owner: { uid: number, gid: number } | undefined
  if (bin !== undefined && process.getuid?.() === 0) {
    try {
      owner = {
        uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }))
      }
    } catch {
      owner = undefined
    }
  }
  const missing = bin === undefined
    ? 'initdb not found (set PG_BIN)'
    : process.getuid?.() === 0 && owner === undefined ? 'running as root without a postgres user' : undefined
  if (!requireService(t, missing, 'the PostgreSQL server binaries', 'apt-get install postgresql')) return undefined

  const dir = mkdtempSync(join(tmpdir(), 'bb-private-pg-'))
  const dataDir = join(dir, 'data')
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid)
  const pgCtl = join(bin!, 'pg_ctl')
  const exec = async (command: string, args: string[]): Promise<void> => {
    const [file, argv] = asServerUser(command, args)
    await run(file, argv, { timeout: 60_000 })
  }
  await exec(join(bin!, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  const port = await freePort()
  // Unix socket in the test's own directory (the default one may not be writable); small footprint.
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=40 -c shared_buffers=16MB`
  let paused: number[] = []
  const start = () => exec(pgCtl, ['-D', dataDir, '-l', join(dir, 'server.log'), '-o', serverOptions, '-w', '-t', '30', 'start'])
  const postmasterPid = (): number | undefined => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0])
    } catch {
      return undefined
    }
  }
  const signal = (pids: readonly number[], name: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, name)
      } catch {
        // Exited meanwhile.
      }
    }
  }
  const cluster: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop(mode) {
      cluster.resume()
      await exec(pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'])
    },
    start,
    pause() {
      const postmaster = postmasterPid()
      if (postmaster === undefined) throw new Error('private PostgreSQL is not running')
      // The postmaster first, so it forks nothing new while its children are being stopped.
      signal([postmaster], 'SIGSTOP')
      const children = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
        try {
          // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after the last ')'.
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster
        } catch {
          return false
        }
      })
      signal(children, 'SIGSTOP')
      paused = [postmaster, ...children]
    },
    resume() {
      signal(paused, 'SIGCONT')
      paused = []
    }
  }
  deferCleanup(t, async () => {
    cluster.resume()
    if (postmasterPid() !== undefined) await cluster.stop('immediate').catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return cluster
}
