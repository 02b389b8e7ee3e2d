import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildEvent } from '../../../src/domain/build-event.ts'
import { OURA_DATA_TYPES, ouraCollectionPath, ouraDocumentPath } from '../../../src/providers/oura/documents.ts'
import { normalizeOuraDocument, normalizeOuraHeartRate } from '../../../src/providers/oura/normalize.ts'
import type { OuraHeartRateRow } from '../../../src/simulators/oura/index.ts'
import { NOW_MS, getJson, simulator } from './helpers.ts'

interface Page<T = { id: string, day: string }> {
  data: T[]
  next_token: string | null
}

async function allPages<T>(url: URL, accessToken: string): Promise<{ items: T[], pages: number }> {
  const items: T[] = []
  let pages = 0
  for (let token: string | null = null; ; ) {
    const pageUrl = new URL(url)
    if (token !== null) pageUrl.searchParams.set('next_token', token)
    const answer = await getJson<Page<T>>(pageUrl.toString(), accessToken)
    assert.equal(answer.status, 200)
    pages++
    items.push(...answer.body.data)
    token = answer.body.next_token
    if (token === null) return { items, pages }
  }
}

describe('Oura simulator: data API', () => {
  test('collections page through every document exactly once', async (t) => {
    const sim = await simulator(t, { pageSize: 2, users: [{ days: 9, nowMs: NOW_MS }, { days: 3, nowMs: NOW_MS }] })
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    for (const dataType of OURA_DATA_TYPES) {
      const url = new URL(`${sim.baseUrl}${ouraCollectionPath(dataType)}`)
      url.searchParams.set('start_date', '2025-12-20')
      url.searchParams.set('end_date', '2026-01-09')
      const { items, pages } = await allPages<{ id: string }>(url, token)
      const expected = sim.documents(userId, dataType).map((d) => d.id).sort()
      assert.deepEqual(items.map((d) => d.id).sort(), expected, dataType)
      assert.equal(new Set(items.map((d) => d.id)).size, items.length, `${dataType}: no document twice`)
      assert.equal(pages, Math.max(1, Math.ceil(expected.length / 2)), `${dataType}: pages of 2`)
    }
  })

  test('what the API serves turns into events with the bridge\'s normalizer, without a rejection', async (t) => {
    const sim = await simulator(t, { users: [{ days: 4, nowMs: NOW_MS, offsetMinutes: -300 }] })
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const origin = { userId: 'bridge-user', source: 'oura' as const, ingestedAt: new Date(NOW_MS).toISOString() }
    let events = 0
    for (const dataType of OURA_DATA_TYPES) {
      const url = new URL(`${sim.baseUrl}${ouraCollectionPath(dataType)}?start_date=2025-12-31&end_date=2026-01-09`)
      const { items } = await allPages<unknown>(url, token)
      assert.ok(items.length > 0, dataType)
      for (const document of items) {
        const outcome = normalizeOuraDocument(dataType, document)
        assert.equal(outcome.kind, 'drafts', dataType)
        for (const draft of outcome.kind === 'drafts' ? outcome.drafts : []) {
          const built = buildEvent(draft, origin, { nowMs: NOW_MS })
          assert.ok(built.ok, `${dataType} ${draft.metric}: ${built.ok ? '' : built.rejection.code}`)
          events++
        }
      }
    }
    const rows = await allPages<unknown>(new URL(`${sim.baseUrl}/v2/usercollection/heartrate?start_datetime=2026-01-04T00:00:00Z&end_datetime=2026-01-09T00:00:00Z`), token)
    for (const outcome of normalizeOuraHeartRate(rows.items)) {
      assert.equal(outcome.kind, 'drafts')
      for (const draft of outcome.kind === 'drafts' ? outcome.drafts : []) assert.ok(buildEvent(draft, origin, { nowMs: NOW_MS }).ok)
    }
    assert.ok(events > 60 && rows.items.length > 1000, `${events} events, ${rows.items.length} heart-rate rows`)
  })

  test('paging survives documents added and deleted between pages', async (t) => {
    const sim = await simulator(t, { pageSize: 3, users: [{ days: 8, nowMs: NOW_MS }] })
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const url = new URL(`${sim.baseUrl}/v2/usercollection/daily_readiness?start_date=2025-12-01&end_date=2026-01-10`)
    const first = await getJson<Page>(url.toString(), token)
    const seen = first.body.data.map((d) => d.id)
    const [early, , , later] = sim.documents(userId, 'daily_readiness')
    // Deleting a document already returned, or one still ahead, must not shift the cursor.
    sim.deleteDocument('daily_readiness', early?.id ?? '')
    sim.deleteDocument('daily_readiness', later?.id ?? '')
    assert.ok(early !== undefined)
    sim.addDocument(userId, 'daily_readiness', { ...early, id: 'added-after-the-first-page', day: '2026-01-08' })
    url.searchParams.set('next_token', first.body.next_token ?? '')
    const rest = await allPages<{ id: string }>(url, token)
    const all = [...seen, ...rest.items.map((d) => d.id)]
    assert.equal(new Set(all).size, all.length)
    assert.deepEqual(all.sort(), [...sim.documents(userId, 'daily_readiness').map((d) => d.id), early?.id].sort())
  })

  test('heart rate pages by start_datetime/end_datetime', async (t) => {
    const sim = await simulator(t, { heartRatePageSize: 100 })
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const url = new URL(`${sim.baseUrl}/v2/usercollection/heartrate`)
    url.searchParams.set('start_datetime', '2026-01-05T00:00:00+01:00')
    url.searchParams.set('end_datetime', '2026-01-07T00:00:00+01:00')
    const { items, pages } = await allPages<OuraHeartRateRow>(url, token)
    const fromMs = Date.parse('2026-01-05T00:00:00+01:00')
    const toMs = Date.parse('2026-01-07T00:00:00+01:00')
    const expected = sim.heartRate(userId).filter((r) => r.timestamp_unix >= fromMs && r.timestamp_unix <= toMs)
    assert.ok(expected.length > 400)
    assert.deepEqual(items, expected)
    assert.equal(pages, Math.ceil(expected.length / 100))

    // An unescaped `+` arrives as a space and is refused, as by the real API.
    const raw = await getJson(`${sim.baseUrl}/v2/usercollection/heartrate?start_datetime=2026-01-05T00:00:00+01:00`, token)
    assert.equal(raw.status, 400)
  })

  test('single documents by id, 404 when missing, deleted or someone else\'s', async (t) => {
    const sim = await simulator(t, { users: [{ days: 3, nowMs: NOW_MS }, { days: 3, nowMs: NOW_MS }] })
    const [alice = '', bob = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(alice)
    for (const dataType of OURA_DATA_TYPES) {
      const [document] = sim.documents(alice, dataType)
      assert.ok(document !== undefined)
      const answer = await getJson(`${sim.baseUrl}${ouraDocumentPath(dataType, document.id)}`, token)
      assert.equal(answer.status, 200, dataType)
      assert.deepEqual(answer.body, document)
    }
    const [vo2] = sim.documents(alice, 'vo2_max')
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/vO2_max/${vo2?.id ?? ''}`, token)).status, 200)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/vo2_max/${vo2?.id ?? ''}`, token)).status, 404, 'the path spells it vO2_max')
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep/no-such-id`, token)).status, 404)
    const [bobs] = sim.documents(bob, 'sleep')
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep/${bobs?.id ?? ''}`, token)).status, 404)
  })

  test('updates bump meta.version and updated_at; deletes disappear from documents and collections', async (t) => {
    const sim = await simulator(t)
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const [before] = sim.documents(userId, 'daily_readiness')
    assert.ok(before !== undefined)
    const url = `${sim.baseUrl}/v2/usercollection/daily_readiness/${before.id}`
    assert.deepEqual((await getJson(url, token)).body, before)
    const { document, notification } = sim.updateDocument('daily_readiness', before.id, { score: 55 })
    assert.equal(document.meta.version, before.meta.version + 1)
    assert.ok(Date.parse(document.meta.updated_at) > Date.parse(before.meta.updated_at))
    assert.deepEqual(notification, { event_type: 'update', data_type: 'daily_readiness', object_id: before.id, user_id: userId })
    const fetched = await getJson<{ score: number }>(url, token)
    assert.deepEqual(fetched.body, document)
    assert.equal(fetched.body.score, 55)

    const [sleep] = sim.documents(userId, 'sleep')
    assert.deepEqual(sim.deleteDocument('sleep', sleep?.id ?? ''), { event_type: 'delete', data_type: 'sleep', object_id: sleep?.id, user_id: userId })
    assert.equal(sim.deleteDocument('sleep', sleep?.id ?? ''), undefined)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep/${sleep?.id ?? ''}`, token)).status, 404)
    const list = await getJson<Page>(`${sim.baseUrl}/v2/usercollection/sleep?start_date=2025-12-01&end_date=2026-01-10`, token)
    assert.ok(!list.body.data.some((d) => d.id === sleep?.id))
  })

  test('date ranges follow what integrators observed; a day of margin finds everything', async (t) => {
    const sim = await simulator(t)
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    const day = '2026-01-06'
    const count = async (type: string, start: string, end: string): Promise<number> =>
      (await getJson<Page>(`${sim.baseUrl}/v2/usercollection/${type}?start_date=${start}&end_date=${end}`, token)).body.data
        .filter((d) => d.day === day).length
    // Daily sleep and readiness: by day, inclusive.
    assert.equal(await count('daily_sleep', day, day), 1)
    assert.equal(await count('daily_readiness', day, day), 1)
    // Activity starts at 04:00 local, so a date-only end_date misses the day; sleep is filtered by bedtime_start.
    assert.equal(await count('daily_activity', day, day), 0)
    assert.equal(await count('daily_activity', day, `${day}T23:59:59`), 1)
    assert.equal(await count('sleep', day, day), 0)
    for (const type of ['sleep', 'daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2']) {
      assert.ok(await count(type, '2026-01-05', '2026-01-07') >= 1, type)
    }
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep?start_date=yesterday`, token)).status, 400)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep?next_token=bogus`, token)).status, 400)
  })

  test('the inclusive range semantics filter every type by day', async (t) => {
    const sim = await simulator(t, { rangeSemantics: 'inclusive' })
    const [userId = ''] = sim.userIds()
    const { access_token: token } = sim.issueTokens(userId)
    for (const type of ['sleep', 'daily_activity']) {
      const answer = await getJson<Page>(`${sim.baseUrl}/v2/usercollection/${type}?start_date=2026-01-06&end_date=2026-01-06`, token)
      assert.ok(answer.body.data.length >= 1 && answer.body.data.every((d) => d.day === '2026-01-06'), type)
    }
  })

  test('types the bridge does not read answer empty collections; unknown paths 404', async (t) => {
    const sim = await simulator(t)
    const { access_token: token } = sim.issueTokens(sim.userIds()[0] ?? '')
    assert.deepEqual((await getJson(`${sim.baseUrl}/v2/usercollection/daily_stress`, token)).body, { data: [], next_token: null })
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/workout`, token)).status, 200)
    assert.equal((await getJson(`${sim.baseUrl}/v3/nothing`, token)).status, 404)
    assert.equal((await getJson(`${sim.baseUrl}/v2/usercollection/sleep/%E0%A4%A`, token)).status, 404)
  })
})
