/**
 * HTTP/1.1 load generation for benchmarks whose client shares the machine with the server under test.
 *
 * Requests are byte buffers the workload builds when a request is sent (so a signature can carry the current
 * time); they go out over raw keep-alive sockets, one request in flight per socket, no pipelining. Answers are
 * parsed only as far as the status line, Content-Length and `Connection: close`: a chunked answer is an error.
 * That keeps the generator's own CPU per request to a few microseconds, which matters when client, server and
 * database share two cores (Node's fetch costs ~40–70 µs per request there).
 *
 * Two shapes:
 * - closedLoop: N connections, each sends its next request as soon as its previous one was answered
 *   (saturation throughput; its latencies suffer from coordinated omission and are indicative only);
 * - openLoop: a fixed arrival rate on an absolute timeline. Request i is due at start + i / rate whatever
 *   happened before; it waits for a free connection (opening more up to a cap) and its latency is measured from
 *   the moment it was due, so a stalled server shows up in the tail instead of slowing the sender.
 */
import net from 'node:net'

export interface LoadTarget {
  host: string
  port: number
}

/** Builds the bytes of request `index` (request line, headers, body); called at the moment it is sent. */
export type RequestFactory = (index: number) => Buffer

/**
 * Told about every answer: which request, its status (0 when it got none) and latency, and when it was answered
 * (performance.now()). For workloads that follow requests further (e.g. until their data is stored) and for
 * time series of the latency.
 */
export type AnswerListener = (index: number, status: number, latencyMs: number, answeredAtMs: number) => void

export interface LoadResult {
  /** Requests sent, including those that failed in transport. */
  sent: number
  /** Requests answered with any status. */
  answered: number
  statusCounts: Map<number, number>
  /** Distinct bodies of 2xx answers and how often each came (webhook answers are short status objects). */
  okBodies: Map<string, number>
  /** The first few non-2xx answers, status and body, for the log. */
  failureSamples: string[]
  /** Requests that got no answer: refused, reset, closed while in flight, unparsable. */
  transportErrors: number
  transportErrorSamples: string[]
  /** Latency of each answered request, in ms: closed loop from its write, open loop from when it was due. */
  latenciesMs: Float64Array
  /** Open loop: how late each request was written after it was due (waiting for a timer or a connection), ms. */
  sendLagMs: Float64Array
  /** From the first send to the last answer, in ms. */
  wallMs: number
  connectionsOpened: number
}

/** A growable Float64Array: latencies of 10⁵–10⁶ requests without boxing them into a number[]. */
export class Samples {
  private values = new Float64Array(1024)
  length = 0

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.length++] = value
  }

  toArray(): Float64Array {
    return this.values.slice(0, this.length)
  }
}

type Done = (error: Error | undefined, status: number, body: Buffer | undefined) => void

interface Connection {
  /** False once the server said `Connection: close` or the socket ended. */
  usable: boolean
  send(bytes: Buffer, done: Done): void
  close(): void
}

const MAX_SAMPLES = 5
const HEADER_END = Buffer.from('\r\n\r\n')

/** Opens one keep-alive connection; `onGone` is called once when it closes for any reason. */
function connect(target: LoadTarget, onGone: (connection: Connection) => void): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true })
    let pending: Done | undefined
    let buffered: Buffer | undefined
    let headerEnd = -1
    let status = 0
    let total = 0
    let closeAfter = false
    let connected = false

    const finish = (error: Error | undefined, body: Buffer | undefined): void => {
      const done = pending
      pending = undefined
      buffered = undefined
      headerEnd = -1
      done?.(error, status, body)
    }
    const fail = (message: string): void => {
      connection.usable = false
      finish(new Error(message), undefined)
      socket.destroy()
    }

    const connection: Connection = {
      usable: true,
      send(bytes, done) {
        if (pending !== undefined) throw new Error('one request at a time per connection')
        pending = done
        socket.write(bytes)
      },
      close() {
        connection.usable = false
        socket.destroy()
      }
    }

    socket.on('data', (chunk: Buffer) => {
      if (pending === undefined) return fail('bytes arrived with no request in flight')
      buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk])
      if (headerEnd === -1) {
        headerEnd = buffered.indexOf(HEADER_END)
        if (headerEnd === -1) return
        // Headers are ASCII and a few hundred bytes: one small string, searched case-insensitively.
        const head = buffered.toString('latin1', 0, headerEnd).toLowerCase()
        status = Number(head.slice(9, 12))
        const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(head)
        if (length === null || /\r\ntransfer-encoding:/.test(head)) return fail(`unsupported answer framing: ${head.slice(0, 200)}`)
        total = headerEnd + HEADER_END.length + Number(length[1])
        closeAfter = /\r\nconnection:[ \t]*close/.test(head)
      }
      if (buffered.length < total) return
      if (buffered.length > total) return fail('more bytes than one answer (the server answered twice?)')
      const body = buffered.subarray(headerEnd + HEADER_END.length)
      if (closeAfter) {
        connection.usable = false
        socket.end()
      }
      finish(undefined, body)
    })
    socket.once('connect', () => {
      connected = true
      resolve(connection)
    })
    socket.on('error', (error) => {
      if (!connected) reject(error)
      connection.usable = false
      finish(error, undefined)
    })
    socket.once('close', () => {
      connection.usable = false
      if (pending !== undefined) finish(new Error('connection closed with a request in flight'), undefined)
      if (connected) onGone(connection)
    })
  })
}

/** Collects what every answer (or failure) says, for both loop shapes. */
function makeRecorder(): {
  record(error: Error | undefined, status: number, body: Buffer | undefined, latencyMs: number): void
  result(sent: number, sendLag: Samples, wallMs: number, connectionsOpened: number): LoadResult
} {
  const statusCounts = new Map<number, number>()
  const okBodies = new Map<string, number>()
  const failureSamples: string[] = []
  const transportErrorSamples: string[] = []
  const latencies = new Samples()
  let transportErrors = 0
  return {
    record(error, status, body, latencyMs) {
      if (error !== undefined) {
        transportErrors++
        if (transportErrorSamples.length < MAX_SAMPLES) transportErrorSamples.push(error.message)
        return
      }
      latencies.push(latencyMs)
      statusCounts.set(status, (statusCounts.get(status) ?? 0) + 1)
      const text = body?.toString('utf8') ?? ''
      if (status >= 200 && status < 300) {
        okBodies.set(text, (okBodies.get(text) ?? 0) + 1)
      } else if (failureSamples.length < MAX_SAMPLES) {
        failureSamples.push(`${status} ${text.slice(0, 300)}`)
      }
    },
    result(sent, sendLag, wallMs, connectionsOpened) {
      return {
        sent,
        answered: latencies.length,
        statusCounts,
        okBodies,
        failureSamples,
        transportErrors,
        transportErrorSamples,
        latenciesMs: latencies.toArray(),
        sendLagMs: sendLag.toArray(),
        wallMs,
        connectionsOpened
      }
    }
  }
}

export interface ClosedLoopOptions {
  connections: number
  durationMs: number
  makeRequest: RequestFactory
  onAnswer?: AnswerListener
}

/**
 * `connections` connections (opened before the clock starts), each sending its next request as soon as the
 * previous one was answered, until `durationMs` have passed; requests in flight then are still waited for.
 * A connection that fails is replaced.
 */
export async function closedLoop(target: LoadTarget, options: ClosedLoopOptions): Promise<LoadResult> {
  const recorder = makeRecorder()
  const live = new Set<Connection>()
  const gone = (connection: Connection): void => {
    live.delete(connection)
  }
  const connections = await Promise.all(Array.from({ length: options.connections }, () => connect(target, gone)))
  for (const connection of connections) live.add(connection)
  let opened = connections.length
  let sent = 0
  let lastAnswerMs = 0
  const startMs = performance.now()
  const deadlineMs = startMs + options.durationMs

  await new Promise<void>((resolve) => {
    let running = connections.length
    const retire = (): void => {
      if (--running === 0) resolve()
    }
    const next = (connection: Connection): void => {
      if (performance.now() >= deadlineMs) return retire()
      const index = sent++
      const bytes = options.makeRequest(index)
      const writtenMs = performance.now()
      connection.send(bytes, (error, status, body) => {
        lastAnswerMs = performance.now()
        recorder.record(error, status, body, lastAnswerMs - writtenMs)
        options.onAnswer?.(index, error === undefined ? status : 0, lastAnswerMs - writtenMs, lastAnswerMs)
        if (connection.usable) return next(connection)
        connection.close()
        // Replace the connection so the concurrency stays what was asked for.
        connect(target, gone).then((replacement) => {
          opened++
          live.add(replacement)
          next(replacement)
        }, retire)
      })
    }
    for (const connection of connections) next(connection)
  })
  for (const connection of live) connection.close()
  return recorder.result(sent, new Samples(), lastAnswerMs - startMs, opened)
}

export interface OpenLoopOptions {
  ratePerSecond: number
  durationMs: number
  makeRequest: RequestFactory
  onAnswer?: AnswerListener
  /** Connections opened before the clock starts. */
  initialConnections: number
  /** More are opened while requests wait for one, up to this many; beyond it requests queue. */
  maxConnections: number
}

/**
 * A fixed arrival rate: request i is due at start + i × 1000 / rate ms. A timer wakes for the next due request
 * and sends every request that is due by then; a request that finds no free connection waits in a FIFO queue
 * (and a new connection is opened, up to `maxConnections`). Latency runs from the moment a request was due.
 */
export async function openLoop(target: LoadTarget, options: OpenLoopOptions): Promise<LoadResult> {
  const recorder = makeRecorder()
  const sendLag = new Samples()
  const idle: Connection[] = []
  const live = new Set<Connection>()
  let opening = 0
  const gone = (connection: Connection): void => {
    live.delete(connection)
    const at = idle.indexOf(connection)
    if (at !== -1) idle.splice(at, 1)
  }
  for (const connection of await Promise.all(Array.from({ length: options.initialConnections }, () => connect(target, gone)))) {
    live.add(connection)
    idle.push(connection)
  }
  let opened = live.size
  const intervalMs = 1000 / options.ratePerSecond
  const total = Math.round(options.ratePerSecond * options.durationMs / 1000)
  const waiting: { index: number, dueMs: number }[] = []
  let nextIndex = 0
  let settled = 0
  let lastAnswerMs = 0
  let timer: NodeJS.Timeout | undefined
  const startMs = performance.now()

  await new Promise<void>((resolve) => {
    const settle = (): void => {
      if (++settled === total) resolve()
    }
    const release = (connection: Connection): void => {
      if (!connection.usable) {
        connection.close()
        return
      }
      const queued = waiting.shift()
      if (queued === undefined) idle.push(connection)
      else send(connection, queued.index, queued.dueMs)
    }
    const openAnother = (): void => {
      opening++
      connect(target, gone).then((connection) => {
        opening--
        opened++
        live.add(connection)
        release(connection)
      }, () => {
        // Refused: the requests stay queued for the connections there are; if there are none, they fail.
        opening--
        if (live.size === 0 && opening === 0) {
          const stranded = waiting.splice(0).length
          for (let i = 0; i < stranded; i++) {
            recorder.record(new Error('no connection could be opened'), 0, undefined, 0)
            settle()
          }
        }
      })
    }
    const send = (connection: Connection, index: number, dueMs: number): void => {
      const bytes = options.makeRequest(index)
      sendLag.push(performance.now() - dueMs)
      connection.send(bytes, (error, status, body) => {
        lastAnswerMs = performance.now()
        recorder.record(error, status, body, lastAnswerMs - dueMs)
        options.onAnswer?.(index, error === undefined ? status : 0, lastAnswerMs - dueMs, lastAnswerMs)
        settle()
        release(connection)
        if (!connection.usable && waiting.length > 0 && live.size + opening < options.maxConnections) openAnother()
      })
    }
    const dispatch = (index: number, dueMs: number): void => {
      const connection = idle.shift()
      if (connection !== undefined) return send(connection, index, dueMs)
      waiting.push({ index, dueMs })
      if (live.size + opening < options.maxConnections) openAnother()
    }
    const tick = (): void => {
      const nowMs = performance.now()
      while (nextIndex < total && startMs + nextIndex * intervalMs <= nowMs) {
        dispatch(nextIndex, startMs + nextIndex * intervalMs)
        nextIndex++
      }
      if (nextIndex < total) timer = setTimeout(tick, Math.max(0, startMs + nextIndex * intervalMs - performance.now()))
    }
    if (total === 0) resolve()
    else tick()
  })
  clearTimeout(timer)
  for (const connection of live) connection.close()
  return recorder.result(nextIndex, sendLag, lastAnswerMs - startMs, opened)
}

/** Requests answered with a 2xx status. */
export function okCount(result: LoadResult): number {
  let count = 0
  for (const [status, n] of result.statusCounts) if (status >= 200 && status < 300) count += n
  return count
}
