/**
 * Server processes of a benchmark: a forked Node child that reports `{ type: 'listening', address }` over IPC
 * once it serves, answers commands with replies of a named type, and stops on the message 'stop'. Each server
 * runs in its own process so its CPU time and memory are its own.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { DEPLOYED_NODE_FLAGS } from './node-flags.ts'

export interface ChildServer {
  child: ChildProcess
  pid: number
  /** What the child reported, e.g. `http://127.0.0.1:41234`. */
  address: string
  /** Sends a command and resolves with the first message of type `reply` that arrives after it. */
  request<Reply>(message: Record<string, unknown>, reply: string): Promise<Reply>
  stop(): Promise<void>
}

export interface ChildServerOptions {
  env: Record<string, string | undefined>
  /** Node flags of the child (experiments, profiling), after the deployed ones (bin/node-flags) that they override. */
  execArgv?: readonly string[]
  /** How long a graceful stop may take before the child is killed, in ms. */
  stopTimeoutMs?: number
}

const liveServers = new Set<ChildServer>()

export async function startChildServer(script: URL, options: ChildServerOptions): Promise<ChildServer> {
  const child = fork(script, [], {
    execPath: process.execPath,
    execArgv: [...DEPLOYED_NODE_FLAGS, ...options.execArgv ?? []],
    env: options.env,
    // The child's warnings go to our stderr with the progress lines.
    stdio: ['ignore', 2, 2, 'ipc']
  })
  const address = await new Promise<string>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${script.pathname} exited early with code ${code}`)))
    child.on('message', (message: { type?: string, address?: string }) => {
      if (message.type === 'listening' && message.address !== undefined) resolve(message.address)
    })
  })
  child.removeAllListeners('exit')
  const server: ChildServer = {
    child,
    pid: child.pid!,
    address,
    request<Reply>(message: Record<string, unknown>, reply: string): Promise<Reply> {
      return new Promise<Reply>((resolve, reject) => {
        const onExit = (code: number | null): void => reject(new Error(`server exited with code ${code} before answering ${String(message.type)}`))
        const listener = (answer: { type?: string }): void => {
          if (answer.type !== reply) return
          child.off('message', listener)
          child.off('exit', onExit)
          resolve(answer as Reply)
        }
        child.on('message', listener)
        child.once('exit', onExit)
        child.send(message)
      })
    },
    async stop() {
      liveServers.delete(server)
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send('stop')
      const timer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 15_000)
      await exited
      clearTimeout(timer)
    }
  }
  liveServers.add(server)
  return server
}

/** Stops every server still running (cleanup after a failure or Ctrl-C). */
export async function stopChildServers(): Promise<void> {
  await Promise.all([...liveServers].map((server) => server.stop()))
}
