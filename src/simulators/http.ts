import { SimulatorError } from './simulator.ts'

/** One request may take this long before the client gives up; uploads of 500 samples take milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000
/** Attempts for answers that ask to come back later (429, 503) and for dropped connections. */
const MAX_ATTEMPTS = 4
const BASE_BACKOFF_MS = 250
/** A Retry-After beyond this is not worth waiting for in a demo. */
const MAX_RETRY_AFTER_MS = 5_000

export interface JsonRequest {
  method: 'GET' | 'POST' | 'DELETE'
  url: string
  token: string
  body?: unknown
  signal: AbortSignal
}

export interface JsonResponse<T> {
  status: number
  body: T
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  if (signal.aborted) {
    reject(signal.reason as Error)
    return
  }
  const timer = setTimeout(() => {
    signal.removeEventListener('abort', onAbort)
    resolve()
  }, ms)
  const onAbort = (): void => {
    clearTimeout(timer)
    reject(signal.reason as Error)
  }
  signal.addEventListener('abort', onAbort, { once: true })
})

function describeFailure(request: JsonRequest, status: number, body: unknown): string {
  const error = (body as { error?: { code?: unknown, message?: unknown } } | undefined)?.error
  const detail = error === undefined ? '' : ` ${String(error.code)}: ${String(error.message)}`
  return `${request.method} ${new URL(request.url).pathname} answered ${status}${detail}`
}

/**
 * Sends JSON with a bearer token the way a well-behaved client does: a timeout per attempt, retries with
 * exponential backoff for 429/503 (honouring Retry-After) and for connections dropped before an answer.
 * Any other non-2xx answer is a SimulatorError naming the route, status and the bridge's error code.
 */
export async function requestJson<T>(request: JsonRequest): Promise<JsonResponse<T>> {
  for (let attempt = 1; ; attempt++) {
    let response: Response
    try {
      response = await fetch(request.url, {
        method: request.method,
        headers: {
          authorization: `Bearer ${request.token}`,
          accept: 'application/json',
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' })
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        signal: AbortSignal.any([request.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
      })
    } catch (error) {
      if (request.signal.aborted) throw error
      if (attempt >= MAX_ATTEMPTS) {
        // fetch reports "fetch failed"; the reason (ECONNREFUSED, a timeout …) is in the cause.
        const cause = (error as { cause?: { code?: unknown, message?: unknown } }).cause
        const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : ''
        const detail = `${(error as Error).message}${reason === '' ? '' : ` (${reason})`}`
        throw new SimulatorError(`${request.method} ${new URL(request.url).pathname} failed: ${detail}`, { cause: error })
      }
      await sleep(BASE_BACKOFF_MS * 2 ** (attempt - 1), request.signal)
      continue
    }
    const text = await response.text()
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = undefined
    }
    if (response.ok) return { status: response.status, body: body as T }
    if ((response.status === 429 || response.status === 503) && attempt < MAX_ATTEMPTS) {
      const retryAfterSeconds = Number(response.headers.get('retry-after'))
      const waitMs = Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0
        ? Math.min(retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS)
        : BASE_BACKOFF_MS * 2 ** (attempt - 1)
      await sleep(waitMs, request.signal)
      continue
    }
    throw new SimulatorError(describeFailure(request, response.status, body))
  }
}
