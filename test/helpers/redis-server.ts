import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { requireService } from './services.ts'

/**
 * A Redis server of the test's own, started as a child process so the test can kill, pause and restart it.
 * Nothing is persisted: a restart comes back empty, as a failed-over managed Redis may.
 */
export interface RedisServer {
  port: number
  url: string
  child: ChildProcess
  kill(signal: NodeJS.Signals): void
}

/** Skips (locally) or fails (CI) when the `redis-server` binary is missing. */
export function requireRedisServerBinary(t: TestContext): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' })
  // The outage tests start their own instance, so they need the binary, not a running server.
  return requireService(t, probe.status === 0 ? undefined : 'not installed', 'the redis-server binary', 'apt-get install redis-server')
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** Starts redis-server on `port` and resolves once it answers PING; killed (and resumed first) after the test. */
export async function startRedisServer(t: TestContext, port: number): Promise<RedisServer> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
    }
  })
  const url = `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 500 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      break
    } catch (error) {
      if (Date.now() > deadline) throw new Error('redis-server did not start', { cause: error })
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      client.disconnect()
    }
  }
  return { port, url, child, kill: (signal) => { child.kill(signal) } }
}

/** Resolves once the child has exited (after SIGKILL, so the port is free for a restart). */
export async function exited(server: RedisServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  await new Promise((resolve) => server.child.once('exit', resolve))
}
