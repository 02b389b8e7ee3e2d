import { createServer, connect, type Server, type Socket } from 'node:net'
import type { TestContext } from 'node:test'

/**
 * A loopback TCP proxy in front of a real service, so a test can take the service "down" (refuse and reset
 * every connection) and bring it back without touching the service itself.
 */
export interface TcpProxy {
  port: number
  /** Resets open connections and refuses new ones until `restore`. */
  cut(): void
  restore(): void
}

export async function startTcpProxy(t: TestContext, targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let down = false
  const server: Server = createServer((client) => {
    if (down) {
      client.resetAndDestroy()
      return
    }
    const upstream = connect(targetPort, targetHost)
    sockets.add(client).add(upstream)
    const drop = (): void => {
      sockets.delete(client)
      sockets.delete(upstream)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
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
    cut() {
      down = true
      for (const socket of sockets) socket.resetAndDestroy()
      sockets.clear()
    },
    restore() {
      down = false
    }
  }
}
