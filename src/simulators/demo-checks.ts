import { setTimeout as sleep } from 'node:timers/promises'
import { requestJson } from './http.ts'
import { SimulatorError, type SimulatorContext } from './simulator.ts'

/**
 * What the provider participants of the demo (Oura, WHOOP) share: connecting a bridge user through the real
 * OAuth flow, and checking the effect of every change through the bridge's public events API, never its database.
 */

/** Polls of the events API while waiting for the worker; each poll is a few indexed reads. */
export const POLL_MS = 100
export const REQUEST_TIMEOUT_MS = 10_000
/** Values pass through unit conversion (seconds → minutes); anything closer than this is the same value. */
const VALUE_TOLERANCE = 0.01

/** One stored value of the bridge that proves a change arrived: present with `value`, or absent. */
export interface Check {
  metric: string
  recordId: string
  /** undefined: the record must have no event of `metric` (deleted). */
  value: number | undefined
}

export function satisfied(check: Check, stored: ReadonlyMap<string, number> | undefined): boolean {
  const value = stored?.get(check.recordId)
  if (check.value === undefined) return value === undefined
  return value !== undefined && Math.abs(value - check.value) < VALUE_TOLERANCE
}

export const count = (n: number): string => n.toLocaleString('en-US')
export const plural = (n: number, word: string, words = `${word}s`): string => `${count(n)} ${n === 1 ? word : words}`

export interface EventsPage {
  data: Array<{ source_record_id: string, value: number }>
  next_cursor: string | null
}

/** One source's events of one user, read through `GET /v1/users/{user}/events` as any client would. */
export interface StoredEvents {
  /** One page of events matching `query` (the source is added). */
  page(query: Record<string, string>): Promise<EventsPage>
  /** Every stored value of `metric`, keyed by the source record it came from. */
  values(metric: string): Promise<Map<string, number>>
  /** values() of every metric the checks name. */
  forChecks(checks: readonly Check[]): Promise<Map<string, Map<string, number>>>
}

export function storedEvents(context: SimulatorContext, userId: string, source: string): StoredEvents {
  const eventsUrl = `${context.baseUrl}/v1/users/${encodeURIComponent(userId)}/events`
  const page = async (query: Record<string, string>): Promise<EventsPage> => {
    const search = new URLSearchParams({ ...query, source })
    const { body } = await requestJson<EventsPage>({ method: 'GET', url: `${eventsUrl}?${search.toString()}`, token: context.adminToken, signal: context.signal })
    return body
  }
  const values = async (metric: string): Promise<Map<string, number>> => {
    const found = new Map<string, number>()
    let cursor: string | null = null
    do {
      const body: EventsPage = await page({ metric, limit: '1000', ...(cursor === null ? {} : { cursor }) })
      for (const event of body.data) found.set(event.source_record_id, event.value)
      cursor = body.next_cursor
    } while (cursor !== null)
    return found
  }
  return {
    page,
    values,
    forChecks: async (checks) => {
      const byMetric = new Map<string, Map<string, number>>()
      for (const metric of new Set(checks.map((check) => check.metric))) byMetric.set(metric, await values(metric))
      return byMetric
    }
  }
}

/** Polls `condition` until it holds (true) or `timeoutMs` has passed (false). */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const startedMs = performance.now()
  for (;;) {
    if (await condition()) return true
    if (performance.now() - startedMs > timeoutMs) return false
    await sleep(POLL_MS, undefined, { signal })
  }
}

/**
 * Waits until every check of each item holds in the events API; `onMet` runs once per item as it does. Returns
 * the items still unmet after `timeoutMs`.
 */
export async function awaitChecks<T extends { checks: readonly Check[] }>(
  events: StoredEvents, items: readonly T[], timeoutMs: number, signal: AbortSignal, onMet: (item: T) => void
): Promise<T[]> {
  const pending = [...items]
  await until(async () => {
    const stored = await events.forChecks(pending.flatMap((item) => item.checks))
    for (const item of [...pending]) {
      if (!item.checks.every((check) => satisfied(check, stored.get(check.metric)))) continue
      pending.splice(pending.indexOf(item), 1)
      onMet(item)
    }
    return pending.length === 0
  }, timeoutMs, signal)
  return pending
}

/** The `status` of a webhook answer (`accepted`, `duplicate`, `ignored`); undefined when the body has none. */
export function answerStatus(body: string): string | undefined {
  try {
    const status = (JSON.parse(body) as { status?: unknown } | null)?.status
    return typeof status === 'string' ? status : undefined
  } catch {
    return undefined
  }
}

export interface OAuthConnect {
  /** Path segment of the bridge's routes: `oura`, `whoop`. */
  provider: string
  /** For messages: `Oura`, `WHOOP`. */
  providerTitle: string
  /** The bridge user who connects. */
  userId: string
  /** The simulated account that logs in at the consent screen (`sim_user_id`). */
  simUserId: string
}

/**
 * Connects a bridge user the way a person does: the admin API starts the connection and hands out the provider's
 * authorize URL, the simulated provider's consent screen redirects with a code, and the demo, playing the browser,
 * follows that redirect to the bridge's own callback (its PUBLIC_BASE_URL). The callback stores the tokens and
 * queues the backfill before it answers.
 */
export async function connectThroughOAuth(context: SimulatorContext, connect: OAuthConnect): Promise<void> {
  const { signal } = context
  const { body: started } = await requestJson<{ authorize_url?: unknown }>({
    method: 'POST', url: `${context.baseUrl}/v1/users/${encodeURIComponent(connect.userId)}/connections/${connect.provider}`,
    token: context.adminToken, signal
  })
  if (typeof started?.authorize_url !== 'string') throw new SimulatorError('the connection start answered without an authorize_url')
  const authorize = new URL(started.authorize_url)
  authorize.searchParams.set('sim_user_id', connect.simUserId)
  const consent = await fetch(authorize, { redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
  await consent.body?.cancel()
  const location = consent.headers.get('location')
  if (consent.status !== 302 || location === null) throw new SimulatorError(`the ${connect.providerTitle} consent screen answered ${consent.status}`)
  const callback = new URL(location)
  if (callback.searchParams.has('error')) throw new SimulatorError(`${connect.providerTitle} consent failed: ${callback.searchParams.get('error')}`)
  const landed = await fetch(callback, { redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
  const landedText = await landed.text()
  // 302 when CONNECT_SUCCESS_URL sends the browser on; errors are JSON 4xx/5xx.
  if (landed.status !== 200 && landed.status !== 302) {
    throw new SimulatorError(`GET ${callback.pathname} answered ${landed.status}: ${landedText.slice(0, 200)}`)
  }
}
