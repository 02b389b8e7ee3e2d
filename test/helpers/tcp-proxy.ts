import { createServer, connect, type Server, type Socket } from 'node:net'
import type { TestContext } from 'node:test'

/**
 * A loopback TCP fault proxy in front of a real service (PostgreSQL, Redis, a Kafka broker that advertises the
 * proxy's port): the stand-in for Toxiproxy, which cannot be installed here. A test points the bridge at
 * `port` and changes the link while traffic flows:
 *
 * - `cut()`       resets open connections (TCP RST) and resets new ones: the service is "down";
 * - `blackhole()` keeps connections open but forwards nothing either way: the service "hangs";
 * - `latency(ms)` delays every chunk in both directions by `ms`: a slow link;
 * - `restore()`   forwards normally again (connections black-holed meanwhile stay silent; clients must time
 *                 them out, as they would with a real hung peer).
 */
export interface TcpProxy {
  port: number
  cut(): void
  blackhole(): void
  latency(delayMs: number): void
  restore(): void
  /** Connections accepted since start (to assert a client really went through the proxy). */
  readonly accepted: number
}

type Mode = { kind: 'forward', delayMs: number } | { kind: 'cut' } | { kind: 'blackhole' }

export async function startTcpProxy(t: TestContext, targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const silenced = new Set<Socket>()
  let mode: Mode = { kind: 'forward', delayMs: 0 }
  let accepted = 0

  // One direction of a link: chunks keep their order, each held for the delay in force when it arrived.
  const relay = (from: Socket, to: Socket): void => {
    let tail = Promise.resolve()
    /** Chunks still held back: until they are written, later ones queue behind them even without delay. */
    let held = 0
    from.on('data', (chunk: Buffer) => {
      if (mode.kind !== 'forward' || silenced.has(from)) return
      const delayMs = mode.delayMs
      // After restore(), a chunk written at once would overtake those still delayed: TCP never reorders, and a
      // client that matches replies by order (Redis, PostgreSQL) would read one command's reply as another's.
      if (delayMs === 0 && held === 0) {
        to.write(chunk)
        return
      }
      held++
      // Due `delayMs` after it arrived, and never before the chunk ahead of it: latency, not a rate limit.
      const dueAtMs = performance.now() + delayMs
      tail = tail.then(() => new Promise<void>((resolve) => setTimeout(() => {
        held--
        if (!to.destroyed && !silenced.has(from)) to.write(chunk)
        resolve()
      }, Math.max(0, dueAtMs - performance.now()))))
    })
  }

  const server: Server = createServer((client) => {
    accepted++
    if (mode.kind === 'cut') {
      client.resetAndDestroy()
      return
    }
    const upstream = connect(targetPort, targetHost)
    sockets.add(client).add(upstream)
    if (mode.kind === 'blackhole') silenced.add(client).add(upstream)
    const drop = (): void => {
      for (const socket of [client, upstream]) {
        sockets.delete(socket)
        silenced.delete(socket)
        socket.destroy()
      }
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    relay(client, upstream)
    relay(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    port: address.port,
    get accepted() { return accepted },
    cut() {
      mode = { kind: 'cut' }
      for (const socket of sockets) socket.resetAndDestroy()
      sockets.clear()
      silenced.clear()
    },
    blackhole() {
      mode = { kind: 'blackhole' }
      for (const socket of sockets) silenced.add(socket)
    },
    latency(delayMs: number) {
      mode = { kind: 'forward', delayMs }
    },
    restore() {
      mode = { kind: 'forward', delayMs: 0 }
    }
  }
}
