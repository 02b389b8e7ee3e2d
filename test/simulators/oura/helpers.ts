import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { startOuraSimulator, type OuraSimulator, type OuraSimulatorOptions } from '../../../src/simulators/oura/index.ts'

export const NOW_MS = Date.parse('2026-01-08T09:30:00Z')

/** A clock tests move by hand. */
export function manualClock(startMs = NOW_MS): { now: () => number, advance: (ms: number) => void } {
  let nowMs = startMs
  return { now: () => nowMs, advance: (ms) => { nowMs += ms } }
}

export async function simulator(t: TestContext, options: OuraSimulatorOptions = {}): Promise<OuraSimulator> {
  const sim = await startOuraSimulator({ users: [{ days: 5, nowMs: NOW_MS }], ...options })
  t.after(() => sim.close())
  return sim
}

export interface Answer<T = unknown> {
  status: number
  body: T
  headers: Headers
}

export async function getJson<T = unknown>(url: string, accessToken?: string, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const response = await fetch(url, {
    headers: { ...headers, ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }) }
  })
  const text = await response.text()
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers }
}

export async function sendJson<T = unknown>(
  method: 'POST' | 'PUT' | 'DELETE', url: string, body: unknown, headers: Record<string, string> = {}
): Promise<Answer<T>> {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers }
}

export async function postForm<T = unknown>(url: string, form: Record<string, string>): Promise<Answer<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString()
  })
  const text = await response.text()
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: response.headers }
}

export const appHeaders = (sim: OuraSimulator): Record<string, string> =>
  ({ 'x-client-id': sim.clientId, 'x-client-secret': sim.clientSecret })

export interface ReceivedRequest {
  method: string
  url: URL
  headers: IncomingHttpHeaders
  rawBody: Buffer
}

export interface Receiver {
  url: string
  requests: ReceivedRequest[]
  /** Status for POSTs; a function sees the attempt number (1-based). */
  postStatus: number | ((attempt: number) => number)
}

/**
 * A minimal webhook endpoint: answers Oura's GET handshake when the token matches (with `challengeOverride`
 * instead of the challenge, if set), records every request with its raw body.
 */
export async function receiver(
  t: TestContext, verificationToken: string, options: { challengeOverride?: string, handshakeStatus?: number } = {}
): Promise<Receiver> {
  const state: Receiver = { url: '', requests: [], postStatus: 200 }
  let posts = 0
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://receiver')
      state.requests.push({ method: request.method ?? '', url, headers: request.headers, rawBody: Buffer.concat(chunks) })
      if (request.method === 'GET') {
        const ok = url.searchParams.get('verification_token') === verificationToken
        const status = options.handshakeStatus ?? (ok ? 200 : 401)
        response.writeHead(status, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ challenge: options.challengeOverride ?? url.searchParams.get('challenge') }))
        return
      }
      posts++
      response.writeHead(typeof state.postStatus === 'number' ? state.postStatus : state.postStatus(posts))
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/oura`
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => { resolve() })
  }))
  return state
}

/** The consent round trip: authorize → redirect with code → token exchange. */
export async function connect(
  sim: OuraSimulator, options: { scope?: string, redirectUri?: string, state?: string } = {}
): Promise<{ access_token: string, refresh_token: string, expires_in: number, token_type: string }> {
  const redirectUri = options.redirectUri ?? 'http://127.0.0.1:9/oauth/oura/callback'
  const authorize = new URL(sim.authorizeUrl)
  authorize.search = new URLSearchParams({
    response_type: 'code', client_id: sim.clientId, redirect_uri: redirectUri,
    state: options.state ?? 'state-1', scope: options.scope ?? 'personal email daily heartrate spo2Daily'
  }).toString()
  const redirect = await fetch(authorize, { redirect: 'manual' })
  if (redirect.status !== 302) throw new Error(`authorize answered ${redirect.status}`)
  const code = new URL(redirect.headers.get('location') ?? '').searchParams.get('code') ?? ''
  const answer = await postForm<{ access_token: string, refresh_token: string, expires_in: number, token_type: string }>(
    `${sim.baseUrl}/oauth/token`,
    { grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: sim.clientId, client_secret: sim.clientSecret }
  )
  if (answer.status !== 200) throw new Error(`token exchange answered ${answer.status}`)
  return answer.body
}
