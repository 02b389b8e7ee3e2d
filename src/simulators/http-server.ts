import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * The server side the provider simulators share: an error that carries its answer, reading a bounded body,
 * sending JSON, listening on a free port. Each simulator keeps its own routes and error shapes.
 */

/** Thrown by a route; the dispatcher answers with `status` and `body`. */
export class HttpError extends Error {
  readonly status: number
  readonly body: unknown
  constructor(status: number, body: unknown) {
    super(`HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

export interface Reply {
  status: number
  body?: unknown
  /** Pre-serialized JSON, sent instead of `body`. */
  json?: string
  headers?: Record<string, string>
}

/** The request body as text; past `maxBytes` it throws `tooLarge()` instead of buffering more. */
export async function readBody(request: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<string> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.length
    if (bytes > maxBytes) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export function send(response: ServerResponse, reply: Reply): void {
  if (response.destroyed) return
  const headers: Record<string, string> = { ...reply.headers }
  if (reply.status === 204 || (reply.body === undefined && reply.json === undefined)) {
    response.writeHead(reply.status, headers)
    response.end()
    return
  }
  const text = reply.json ?? JSON.stringify(reply.body)
  response.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers
  })
  response.end(text)
}

/** Listens (port 0: any free one) and returns the base URL, e.g. `http://127.0.0.1:41234`. */
export async function listen(server: Server, port = 0, host = '127.0.0.1'): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const hostText = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${hostText}:${address.port}`
}
