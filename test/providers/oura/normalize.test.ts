import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { ERROR_CODES } from '../../../src/errors.ts'
import { buildEvent, type EventDraft, type EventOrigin } from '../../../src/domain/build-event.ts'
import { METRICS, type MetricName } from '../../../src/domain/catalog.ts'
import type { BiometricEvent, EventContext } from '../../../src/domain/event.ts'
import { formatInstant } from '../../../src/domain/time.ts'
import { OURA_DATA_TYPES, type OuraDataType } from '../../../src/providers/oura/documents.ts'
import {
  normalizeOuraDocument, normalizeOuraHeartRate, normalizeOuraHeartRateRow, type OuraOutcome
} from '../../../src/providers/oura/normalize.ts'

const NOW_MS = Date.parse('2026-01-08T12:00:00Z')
const bounds = { nowMs: NOW_MS }
const origin: EventOrigin = { userId: 'user-123', source: 'oura', ingestedAt: '2026-01-08T12:00:01.000Z' }

type Doc = Record<string, unknown>

function fixture(name: string): Doc[] {
  const text = readFileSync(new URL(`../../fixtures/oura/${name}.json`, import.meta.url), 'utf8')
  return (JSON.parse(text) as { data: Doc[] }).data
}

const FIXTURES: Record<OuraDataType, Doc[]> = {
  sleep: fixture('sleep'),
  daily_sleep: fixture('daily_sleep'),
  daily_readiness: fixture('daily_readiness'),
  daily_activity: fixture('daily_activity'),
  daily_spo2: fixture('daily_spo2'),
  vo2_max: fixture('vo2_max')
}
const HEART_RATE_ROWS = fixture('heartrate')

function documentOf(dataType: OuraDataType, id: string): Doc {
  const found = FIXTURES[dataType].find((document) => document.id === id)
  assert.ok(found, `fixture ${dataType} has no document ${id}`)
  return structuredClone(found)
}

function build(draft: EventDraft): BiometricEvent {
  const result = buildEvent(draft, origin, bounds)
  assert.ok(result.ok, result.ok ? '' : `${draft.metric}: ${result.rejection.code} ${result.rejection.message}`)
  return result.event
}

function draftsOf(outcome: OuraOutcome): EventDraft[] {
  assert.equal(outcome.kind, 'drafts', outcome.kind === 'rejected' ? outcome.rejection.message : outcome.kind)
  return outcome.kind === 'drafts' ? outcome.drafts : []
}

function rejectionCode(outcome: OuraOutcome): string {
  assert.equal(outcome.kind, 'rejected')
  return outcome.kind === 'rejected' ? outcome.rejection.code : ''
}

/** metric, value as drafted, unit as drafted, value after buildEvent in the catalog unit. */
type Row = [MetricName, number, string, number]

interface DocumentCase {
  dataType: OuraDataType
  id: string
  note: string
  start: string
  end: string
  context: EventContext
  sourceUpdatedAt: string | null
  /** The span and revision time as buildEvent writes them. */
  event: { start: string, end: string, sourceUpdatedAt: string | null }
  rows: Row[]
}

const CASES: DocumentCase[] = [
  {
    dataType: 'sleep',
    id: '8f9a5221-639e-4a85-81cb-4065ef23f979',
    note: 'long sleep at +02:00, every field present',
    start: '2026-01-06T23:31:10+02:00',
    end: '2026-01-07T06:58:40+02:00',
    context: 'sleep',
    sourceUpdatedAt: '2026-01-07T05:12:44Z',
    event: { start: '2026-01-06T23:31:10+02:00', end: '2026-01-07T06:58:40+02:00', sourceUpdatedAt: '2026-01-07T05:12:44.000Z' },
    rows: [
      ['hrv_rmssd', 48, 'ms', 48],
      ['heart_rate', 52.375, 'bpm', 52.375],
      ['resting_heart_rate', 46, 'bpm', 46],
      ['respiratory_rate', 14.625, 'breaths/min', 14.625],
      ['deep_sleep_minutes', 4830, 's', 80.5],
      ['rem_sleep_minutes', 6930, 's', 115.5],
      ['light_sleep_minutes', 12660, 's', 211],
      ['awake_minutes', 2430, 's', 40.5],
      ['total_sleep_minutes', 24420, 's', 407]
    ]
  },
  {
    dataType: 'sleep',
    id: '3c1e9b47-0d2a-4f86-b5e3-7a9c2d4f6e81',
    note: 'late nap at -05:00: null HRV yields no hrv_rmssd, zero REM is a value',
    start: '2026-01-07T15:10:00-05:00',
    end: '2026-01-07T15:52:30-05:00',
    context: 'sleep',
    sourceUpdatedAt: '2026-01-07T20:58:03.412617+00:00',
    event: { start: '2026-01-07T15:10:00-05:00', end: '2026-01-07T15:52:30-05:00', sourceUpdatedAt: '2026-01-07T20:58:03.412Z' },
    rows: [
      ['heart_rate', 63.5, 'bpm', 63.5],
      ['resting_heart_rate', 58, 'bpm', 58],
      ['respiratory_rate', 15.25, 'breaths/min', 15.25],
      ['deep_sleep_minutes', 330, 's', 5.5],
      ['rem_sleep_minutes', 0, 's', 0],
      ['light_sleep_minutes', 1800, 's', 30],
      ['awake_minutes', 420, 's', 7],
      ['total_sleep_minutes', 2130, 's', 35.5]
    ]
  },
  {
    dataType: 'sleep',
    id: 'c7d2e5f8-1a3b-4c6d-9e0f-2b4d6f8a1c3e',
    note: 'short sleep without meta (older payload), millisecond timestamps',
    start: '2026-01-05T02:05:30.000-05:00',
    end: '2026-01-05T04:20:00.000-05:00',
    context: 'sleep',
    sourceUpdatedAt: null,
    event: { start: '2026-01-05T02:05:30-05:00', end: '2026-01-05T04:20:00-05:00', sourceUpdatedAt: null },
    rows: [
      ['hrv_rmssd', 39, 'ms', 39],
      ['heart_rate', 57.25, 'bpm', 57.25],
      ['resting_heart_rate', 51, 'bpm', 51],
      ['respiratory_rate', 15.5, 'breaths/min', 15.5],
      ['deep_sleep_minutes', 1500, 's', 25],
      ['rem_sleep_minutes', 1350, 's', 22.5],
      ['light_sleep_minutes', 4200, 's', 70],
      ['awake_minutes', 1020, 's', 17],
      ['total_sleep_minutes', 7050, 's', 117.5]
    ]
  },
  {
    dataType: 'daily_sleep',
    id: 'a41f6c2e-8b3d-4e7a-9f05-1c2d3e4f5a6b',
    note: 'sleep score, day at +02:00',
    start: '2026-01-07T00:00:00+02:00',
    end: '2026-01-08T00:00:00+02:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T05:12:51Z',
    event: { start: '2026-01-07T00:00:00+02:00', end: '2026-01-08T00:00:00+02:00', sourceUpdatedAt: '2026-01-07T05:12:51.000Z' },
    rows: [['sleep_score', 84, 'score', 84]]
  },
  {
    dataType: 'daily_sleep',
    id: 'e9b3d7a1-5c2f-4806-b1e4-9a7c3f5d2b80',
    note: 'null score yields nothing',
    start: '2026-01-04T00:00:00-05:00',
    end: '2026-01-05T00:00:00-05:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-04T13:30:07Z',
    event: { start: '2026-01-04T00:00:00-05:00', end: '2026-01-05T00:00:00-05:00', sourceUpdatedAt: '2026-01-04T13:30:07.000Z' },
    rows: []
  },
  {
    dataType: 'daily_readiness',
    id: 'f7c1b2d4-6e8a-4c3f-9b1d-5a7e2c4f6b83',
    note: 'score, temperature deviation and three contributors at +02:00',
    start: '2026-01-07T00:00:00+02:00',
    end: '2026-01-08T00:00:00+02:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T05:12:52Z',
    event: { start: '2026-01-07T00:00:00+02:00', end: '2026-01-08T00:00:00+02:00', sourceUpdatedAt: '2026-01-07T05:12:52.000Z' },
    rows: [
      ['recovery_score', 82, 'score', 82],
      ['temperature_deviation', -0.12, 'degC', -0.12],
      ['hrv_balance', 74, 'score', 74],
      ['temperature_score', 98, 'score', 98],
      ['activity_balance', 79, 'score', 79]
    ]
  },
  {
    dataType: 'daily_readiness',
    id: '2d6f8b1a-4c3e-4a97-85d2-e0b7c9f1a364',
    note: 'no baseline yet at -05:00: null deviation and HRV balance are skipped',
    start: '2026-01-05T00:00:00-05:00',
    end: '2026-01-06T00:00:00-05:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-05T11:47:20Z',
    event: { start: '2026-01-05T00:00:00-05:00', end: '2026-01-06T00:00:00-05:00', sourceUpdatedAt: '2026-01-05T11:47:20.000Z' },
    rows: [
      ['recovery_score', 63, 'score', 63],
      ['temperature_score', 100, 'score', 100],
      ['activity_balance', 66, 'score', 66]
    ]
  },
  {
    dataType: 'daily_activity',
    id: '6b2e9f4c-1d7a-4853-a6c0-3f8e1b5d7c29',
    note: 'activity day from 04:00 at +02:00',
    start: '2026-01-06T04:00:00+02:00',
    end: '2026-01-07T04:00:00+02:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T01:59:12Z',
    event: { start: '2026-01-06T04:00:00+02:00', end: '2026-01-07T04:00:00+02:00', sourceUpdatedAt: '2026-01-07T01:59:12.000Z' },
    rows: [
      ['activity_score', 87, 'score', 87],
      ['active_calories', 412, 'kcal', 412],
      ['steps', 9243, 'count', 9243],
      ['distance_meters', 7816, 'm', 7816]
    ]
  },
  {
    dataType: 'daily_activity',
    id: 'd83a5f1e-7b9c-4e26-8f40-a2c6e8b0d157',
    note: 'day in progress at -05:00 without a score',
    start: '2026-01-07T04:00:00-05:00',
    end: '2026-01-08T04:00:00-05:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T17:22:40Z',
    event: { start: '2026-01-07T04:00:00-05:00', end: '2026-01-08T04:00:00-05:00', sourceUpdatedAt: '2026-01-07T17:22:40.000Z' },
    rows: [
      ['active_calories', 38, 'kcal', 38],
      ['steps', 1204, 'count', 1204],
      ['distance_meters', 1011, 'm', 1011]
    ]
  },
  {
    dataType: 'daily_spo2',
    id: '9e4c7a2b-5f1d-4b83-a6e9-0c3f5d7b2a18',
    note: 'average SpO₂; no timestamp, so the day is taken in UTC',
    start: '2026-01-07T00:00:00Z',
    end: '2026-01-08T00:00:00Z',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T05:12:55Z',
    event: { start: '2026-01-07T00:00:00Z', end: '2026-01-08T00:00:00Z', sourceUpdatedAt: '2026-01-07T05:12:55.000Z' },
    rows: [['spo2', 97.312, '%', 97.312]]
  },
  {
    dataType: 'daily_spo2',
    id: '1f7b3e9d-2a6c-4d50-b8e1-5c9a7f3d1e62',
    note: 'null spo2_percentage yields nothing',
    start: '2026-01-06T00:00:00Z',
    end: '2026-01-07T00:00:00Z',
    context: 'day',
    sourceUpdatedAt: '2026-01-06T06:02:11Z',
    event: { start: '2026-01-06T00:00:00Z', end: '2026-01-07T00:00:00Z', sourceUpdatedAt: '2026-01-06T06:02:11.000Z' },
    rows: []
  },
  {
    dataType: 'daily_spo2',
    id: '7a3d1c5e-9b2f-4e68-a4d0-6f8b2e1c3a97',
    note: 'older payload without meta',
    start: '2026-01-05T00:00:00Z',
    end: '2026-01-06T00:00:00Z',
    context: 'day',
    sourceUpdatedAt: null,
    event: { start: '2026-01-05T00:00:00Z', end: '2026-01-06T00:00:00Z', sourceUpdatedAt: null },
    rows: [['spo2', 95.625, '%', 95.625]]
  },
  {
    dataType: 'vo2_max',
    id: 'b5e8d2a7-3c9f-4a16-9d04-7e2b5f8c1a39',
    note: 'estimate made at 18:22 +02:00 belongs to the whole day',
    start: '2026-01-06T00:00:00+02:00',
    end: '2026-01-07T00:00:00+02:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-06T16:22:45Z',
    event: { start: '2026-01-06T00:00:00+02:00', end: '2026-01-07T00:00:00+02:00', sourceUpdatedAt: '2026-01-06T16:22:45.000Z' },
    rows: [['vo2_max', 43.6, 'mL/kg/min', 43.6]]
  },
  {
    dataType: 'vo2_max',
    id: '4c9f2e6b-8a1d-4375-b2c8-d0e4a6f9b157',
    note: 'estimate at -05:00',
    start: '2026-01-07T00:00:00-05:00',
    end: '2026-01-08T00:00:00-05:00',
    context: 'day',
    sourceUpdatedAt: '2026-01-07T14:04:18Z',
    event: { start: '2026-01-07T00:00:00-05:00', end: '2026-01-08T00:00:00-05:00', sourceUpdatedAt: '2026-01-07T14:04:18.000Z' },
    rows: [['vo2_max', 38, 'mL/kg/min', 38]]
  }
]

const RETRACTED: Array<{ id: string, note: string }> = [
  { id: '0b1d4e7a-9c2f-4a58-8e31-6d0f2a7c9b44', note: 'a sleep the user deleted' },
  { id: '5e8a2c6f-3b7d-4e19-a0c4-8f1b3d5e7a92', note: 'a rest period Oura rejected as sleep' }
]

/** The Oura column of design §7: every metric it names is produced by some fixture. */
const OURA_METRICS: MetricName[] = [
  'hrv_rmssd', 'heart_rate', 'resting_heart_rate', 'respiratory_rate', 'temperature_deviation', 'spo2', 'sleep_score',
  'deep_sleep_minutes', 'rem_sleep_minutes', 'light_sleep_minutes', 'awake_minutes', 'total_sleep_minutes',
  'recovery_score', 'hrv_balance', 'temperature_score', 'activity_balance', 'activity_score', 'active_calories',
  'steps', 'distance_meters', 'vo2_max'
]

describe('normalizeOuraDocument: fixtures → exact drafts → canonical events', () => {
  for (const c of CASES) {
    test(`${c.dataType} ${c.id.slice(0, 8)}: ${c.note}`, () => {
      const expected: EventDraft[] = c.rows.map(([metric, value, unit]) => ({
        metric,
        value,
        unit,
        start: c.start,
        end: c.end,
        context: c.context,
        sourceRecordId: c.id,
        sourceUpdatedAt: c.sourceUpdatedAt,
        deviceType: 'oura_ring'
      }))
      const drafts = draftsOf(normalizeOuraDocument(c.dataType, documentOf(c.dataType, c.id)))
      assert.deepEqual(drafts, expected)

      const events = drafts.map(build)
      assert.deepEqual(events.map((event) => [event.metric, event.value, event.unit]),
        c.rows.map(([metric, , , canonical]) => [metric, canonical, METRICS[metric].unit]))
      for (const event of events) {
        assert.equal(event.start, c.event.start)
        assert.equal(event.end, c.event.end)
        assert.equal(event.source_updated_at, c.event.sourceUpdatedAt)
        assert.equal(event.source_record_id, c.id)
        assert.equal(event.context, c.context)
        assert.equal(event.device_type, 'oura_ring')
        assert.equal(event.source, 'oura')
      }
    })
  }

  for (const { id, note } of RETRACTED) {
    test(`sleep ${id.slice(0, 8)}: ${note} is retracted, with no events`, () => {
      assert.deepEqual(normalizeOuraDocument('sleep', documentOf('sleep', id)), { kind: 'retracted', sourceRecordId: id })
    })
  }

  test('every fixture document has a case, and every data type a fixture', () => {
    const covered = new Set([...CASES.map((c) => `${c.dataType}/${c.id}`), ...RETRACTED.map(({ id }) => `sleep/${id}`)])
    for (const dataType of OURA_DATA_TYPES) {
      assert.ok(FIXTURES[dataType].length > 0, `${dataType} has a fixture`)
      for (const document of FIXTURES[dataType]) {
        assert.ok(covered.has(`${dataType}/${String(document.id)}`), `${dataType}/${String(document.id)} has a case`)
      }
    }
  })

  test('the fixtures produce every metric of the catalog\'s Oura column, and nothing else', () => {
    const produced = new Set(CASES.flatMap((c) => c.rows.map(([metric]) => metric)))
    produced.add('heart_rate')
    assert.deepEqual([...produced].sort(), [...OURA_METRICS].sort())
  })

  test('the path spelling vO2_max is accepted too', () => {
    const document = documentOf('vo2_max', '4c9f2e6b-8a1d-4375-b2c8-d0e4a6f9b157')
    assert.deepEqual(normalizeOuraDocument('vO2_max', document), normalizeOuraDocument('vo2_max', document))
  })

  test('a sleep without a type (older payload) is a sleep period', () => {
    const document = documentOf('sleep', 'c7d2e5f8-1a3b-4c6d-9e0f-2b4d6f8a1c3e')
    delete document.type
    assert.equal(draftsOf(normalizeOuraDocument('sleep', document)).length, 9)
  })

  test('a deleted sleep is retracted whatever its other fields hold', () => {
    const document: Doc = { id: '0b1d4e7a-9c2f-4a58-8e31-6d0f2a7c9b44', type: 'deleted', bedtime_start: null, average_hrv: 'n/a' }
    assert.deepEqual(normalizeOuraDocument('sleep', document), { kind: 'retracted', sourceRecordId: document.id })
  })
})

describe('normalizeOuraDocument: the provider day start', () => {
  // note, data type, day, timestamp → start, end
  const cases: Array<[string, OuraDataType, string, string | null, string, string]> = [
    ['readiness: midnight in the timestamp\'s offset', 'daily_readiness', '2026-01-07', '2026-01-07T00:00:00+05:30',
      '2026-01-07T00:00:00+05:30', '2026-01-08T00:00:00+05:30'],
    ['an offset of zero is written Z', 'daily_sleep', '2026-01-07', '2026-01-07T00:00:00+00:00',
      '2026-01-07T00:00:00Z', '2026-01-08T00:00:00Z'],
    ['activity: 04:00, Oura\'s activity day start', 'daily_activity', '2026-01-07', '2026-01-07T04:00:00-08:00',
      '2026-01-07T04:00:00-08:00', '2026-01-08T04:00:00-08:00'],
    ['activity without a timestamp: 04:00 UTC', 'daily_activity', '2026-01-07', null,
      '2026-01-07T04:00:00Z', '2026-01-08T04:00:00Z'],
    ['VO2 max: only the offset of the estimate time counts', 'vo2_max', '2026-01-06', '2026-01-06T23:59:00-05:00',
      '2026-01-06T00:00:00-05:00', '2026-01-07T00:00:00-05:00'],
    ['`day` wins when the timestamp falls on another date', 'vo2_max', '2026-01-06', '2026-01-07T00:30:00+02:00',
      '2026-01-06T00:00:00+02:00', '2026-01-07T00:00:00+02:00'],
    ['a DST change keeps the one offset Oura gave: 24 h', 'daily_readiness', '2025-10-26', '2025-10-26T00:00:00+02:00',
      '2025-10-26T00:00:00+02:00', '2025-10-27T00:00:00+02:00'],
    ['leap day', 'daily_sleep', '2024-02-29', '2024-02-29T00:00:00-05:00',
      '2024-02-29T00:00:00-05:00', '2024-03-01T00:00:00-05:00']
  ]
  for (const [note, dataType, day, timestamp, start, end] of cases) {
    test(note, () => {
      const value = dataType === 'vo2_max' ? { vo2_max: 40 } : { score: 70 }
      const [draft] = draftsOf(normalizeOuraDocument(dataType, { id: 'doc-1', day, timestamp, ...value }))
      assert.ok(draft)
      assert.equal(draft.start, start)
      assert.equal(draft.end, end)
      assert.equal(draft.context, 'day')
      const event = build(draft)
      assert.equal(Date.parse(event.end) - Date.parse(event.start), 86_400_000)
    })
  }
})

describe('normalizeOuraDocument: revision time', () => {
  const readiness = (): Doc => documentOf('daily_readiness', 'f7c1b2d4-6e8a-4c3f-9b1d-5a7e2c4f6b83')

  test('a zone-less meta.updated_at is UTC, as the spec defines the field', () => {
    const document = { ...readiness(), meta: { updated_at: '2026-01-07T05:12:44.123456', version: 2 } }
    const [draft] = draftsOf(normalizeOuraDocument('daily_readiness', document))
    assert.equal(draft?.sourceUpdatedAt, '2026-01-07T05:12:44.123456Z')
    assert.equal(draft && build(draft).source_updated_at, '2026-01-07T05:12:44.123Z')
  })

  for (const meta of [null, {}, { version: 1 }, { updated_at: null, version: 1 }]) {
    test(`meta ${JSON.stringify(meta)} leaves the revision time unknown`, () => {
      for (const draft of draftsOf(normalizeOuraDocument('daily_readiness', { ...readiness(), meta }))) {
        assert.equal(draft.sourceUpdatedAt, null)
      }
    })
  }
})

describe('normalizeOuraDocument: rejections', () => {
  const sleep = (): Doc => documentOf('sleep', '8f9a5221-639e-4a85-81cb-4065ef23f979')
  const readiness = (): Doc => documentOf('daily_readiness', 'f7c1b2d4-6e8a-4c3f-9b1d-5a7e2c4f6b83')
  const activity = (): Doc => documentOf('daily_activity', '6b2e9f4c-1d7a-4853-a6c0-3f8e1b5d7c29')
  const spo2 = (): Doc => documentOf('daily_spo2', '9e4c7a2b-5f1d-4b83-a6e9-0c3f5d7b2a18')

  const cases: Array<[string, string, unknown, string]> = [
    ['a data type the bridge does not handle', 'workout', readiness(), 'BB_SAMPLE_UNKNOWN_TYPE'],
    ['heart rate, which has its own entry point', 'heartrate', readiness(), 'BB_SAMPLE_UNKNOWN_TYPE'],
    ['a misspelt data type', 'VO2_MAX', readiness(), 'BB_SAMPLE_UNKNOWN_TYPE'],
    ['null', 'sleep', null, 'BB_SAMPLE_MALFORMED'],
    ['an array', 'daily_sleep', [readiness()], 'BB_SAMPLE_MALFORMED'],
    ['a string', 'daily_sleep', '{"id":"x"}', 'BB_SAMPLE_MALFORMED'],
    ['no id', 'daily_readiness', { ...readiness(), id: undefined }, 'BB_SAMPLE_MALFORMED'],
    ['an empty id', 'daily_readiness', { ...readiness(), id: '' }, 'BB_SAMPLE_MALFORMED'],
    ['a numeric id', 'daily_readiness', { ...readiness(), id: 42 }, 'BB_SAMPLE_MALFORMED'],
    ['an id of 129 characters', 'daily_readiness', { ...readiness(), id: 'a'.repeat(129) }, 'BB_SAMPLE_MALFORMED'],
    ['meta that is not an object', 'daily_readiness', { ...readiness(), meta: 'v2' }, 'BB_SAMPLE_MALFORMED'],
    ['meta.updated_at that is not a time', 'daily_readiness', { ...readiness(), meta: { updated_at: 'yesterday' } },
      'BB_SAMPLE_BAD_TIME'],
    ['an unknown sleep type', 'sleep', { ...sleep(), type: 'nap' }, 'BB_SAMPLE_MALFORMED'],
    ['a sleep type that is not a string', 'sleep', { ...sleep(), type: 3 }, 'BB_SAMPLE_MALFORMED'],
    ['a bedtime without a zone', 'sleep', { ...sleep(), bedtime_start: '2026-01-06T23:31:10' }, 'BB_SAMPLE_BAD_TIME'],
    ['no bedtime end', 'sleep', { ...sleep(), bedtime_end: undefined }, 'BB_SAMPLE_BAD_TIME'],
    ['a number sent as a string', 'sleep', { ...sleep(), average_hrv: '48' }, 'BB_SAMPLE_MALFORMED'],
    ['contributors that are not an object', 'daily_readiness', { ...readiness(), contributors: [74, 98] }, 'BB_SAMPLE_MALFORMED'],
    ['spo2_percentage as a bare number', 'daily_spo2', { ...spo2(), spo2_percentage: 97.3 }, 'BB_SAMPLE_MALFORMED'],
    ['steps as a string', 'daily_activity', { ...activity(), steps: '9243' }, 'BB_SAMPLE_MALFORMED'],
    ['a day that does not exist', 'daily_readiness', { ...readiness(), day: '2026-02-30' }, 'BB_SAMPLE_BAD_TIME'],
    ['a day in another format', 'daily_readiness', { ...readiness(), day: '07.01.2026' }, 'BB_SAMPLE_BAD_TIME'],
    ['no day', 'daily_readiness', { ...readiness(), day: undefined }, 'BB_SAMPLE_BAD_TIME'],
    ['a timestamp without a zone', 'daily_activity', { ...activity(), timestamp: '2026-01-06T04:00:00' }, 'BB_SAMPLE_BAD_TIME']
  ]
  for (const [note, dataType, document, code] of cases) {
    test(`${note} → ${code}`, () => {
      const outcome = normalizeOuraDocument(dataType, document)
      assert.equal(rejectionCode(outcome), code)
      assert.ok(outcome.kind === 'rejected' && outcome.rejection.message.length > 0)
    })
  }

  test('values outside the catalog bounds are drafted and left to buildEvent to reject', () => {
    const drafts = draftsOf(normalizeOuraDocument('daily_spo2', { ...spo2(), spo2_percentage: { average: 0 } }))
    assert.equal(drafts.length, 1)
    const result = buildEvent(drafts[0]!, origin, bounds)
    assert.ok(!result.ok && result.rejection.code === 'BB_SAMPLE_OUT_OF_RANGE')
  })
})

describe('normalizeOuraHeartRate', () => {
  const expected: Array<[number, string, string]> = [
    [48, '2026-01-07T03:12:30+00:00', '2026-01-07T03:12:30Z'],
    [71, '2026-01-07T07:41:05+00:00', '2026-01-07T07:41:05Z'],
    [64, '2026-01-07T13:05:00+00:00', '2026-01-07T13:05:00Z'],
    [142, '2026-01-07T17:30:12+00:00', '2026-01-07T17:30:12Z'],
    [88, '2026-01-07T19:02:44Z', '2026-01-07T19:02:44Z'],
    [59, '2026-01-07T21:15:00.500+00:00', '2026-01-07T21:15:00.500Z']
  ]

  test('each row is one instant heart_rate draft keyed by its UTC instant, context null', () => {
    const outcomes = normalizeOuraHeartRate(HEART_RATE_ROWS)
    assert.deepEqual(outcomes, expected.map(([bpm, timestamp, id]) => ({
      kind: 'drafts',
      drafts: [{
        metric: 'heart_rate',
        value: bpm,
        unit: 'bpm',
        start: timestamp,
        end: timestamp,
        context: null,
        sourceRecordId: id,
        sourceUpdatedAt: null,
        deviceType: 'oura_ring'
      }]
    })))
    const events = outcomes.flatMap(draftsOf).map(build)
    assert.deepEqual(events.map((event) => [event.value, event.unit, event.start, event.end, event.context, event.source_record_id]),
      expected.map(([bpm, , id]) => [bpm, 'bpm', id, id, null, id]))
  })

  test('one instant spelt three ways is one storage key', () => {
    const ids = ['2026-01-07T03:12:30+00:00', '2026-01-07T03:12:30Z', '2026-01-07T04:12:30+01:00', '2026-01-07T03:12:30']
      .map((timestamp) => draftsOf(normalizeOuraHeartRateRow({ bpm: 50, source: 'sleep', timestamp }))[0]?.sourceRecordId)
    assert.deepEqual(ids, Array(4).fill('2026-01-07T03:12:30Z'))
  })

  test('the source does not change the context', () => {
    for (const source of ['awake', 'workout', 'rest', 'sleep', 'live', 'session', undefined]) {
      const [draft] = draftsOf(normalizeOuraHeartRateRow({ bpm: 60, source, timestamp: '2026-01-07T03:12:30+00:00' }))
      assert.equal(draft?.context, null)
    }
  })

  test('a null bpm yields no draft', () => {
    const row = { bpm: null, source: 'awake', timestamp: '2026-01-07T03:12:30+00:00' }
    assert.deepEqual(normalizeOuraHeartRateRow(row), { kind: 'drafts', drafts: [] })
  })

  const rejections: Array<[string, unknown, string]> = [
    ['a string row', 'bpm=60', 'BB_SAMPLE_MALFORMED'],
    ['null', null, 'BB_SAMPLE_MALFORMED'],
    ['no timestamp', { bpm: 60, source: 'awake' }, 'BB_SAMPLE_BAD_TIME'],
    ['a unix timestamp only', { bpm: 60, timestamp_unix: 1767755550000 }, 'BB_SAMPLE_BAD_TIME'],
    ['a date without a time', { bpm: 60, timestamp: '2026-01-07' }, 'BB_SAMPLE_BAD_TIME'],
    ['bpm as a string', { bpm: '60', timestamp: '2026-01-07T03:12:30+00:00' }, 'BB_SAMPLE_MALFORMED']
  ]
  for (const [note, row, code] of rejections) {
    test(`${note} → ${code}`, () => {
      assert.equal(rejectionCode(normalizeOuraHeartRateRow(row)), code)
    })
  }

  test('outcomes keep the rows\' order, one per row', () => {
    const outcomes = normalizeOuraHeartRate([HEART_RATE_ROWS[0], null, HEART_RATE_ROWS[1]])
    assert.deepEqual(outcomes.map((outcome) => outcome.kind), ['drafts', 'rejected', 'drafts'])
  })
})

describe('properties', () => {
  const SAMPLE_CODES = Object.keys(ERROR_CODES).filter((code) => code.startsWith('BB_SAMPLE_'))

  /** Every draft either builds or is rejected with a coded sample rejection; nothing throws. */
  function assertBuildable(drafts: EventDraft[]): void {
    for (const draft of drafts) {
      const result = buildEvent(draft, origin, bounds)
      if (!result.ok) assert.ok(SAMPLE_CODES.includes(result.rejection.code), result.rejection.code)
    }
  }

  function assertOutcome(outcome: OuraOutcome): void {
    switch (outcome.kind) {
      case 'drafts':
        assertBuildable(outcome.drafts)
        break
      case 'rejected':
        assert.ok(SAMPLE_CODES.includes(outcome.rejection.code), outcome.rejection.code)
        assert.ok(outcome.rejection.message.length > 0)
        break
      case 'retracted':
        assert.equal(typeof outcome.sourceRecordId, 'string')
        break
    }
  }

  const offset = fc.integer({ min: -48, max: 56 }).map((quarters) => quarters * 15)
  const instant = fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2030, 0, 1) })
  const zoned = fc.tuple(instant, offset).map(([ms, minutes]) => formatInstant(ms, minutes))
  const day = fc.integer({ min: Date.UTC(1995, 0, 1), max: Date.UTC(2027, 0, 1) })
    .map((ms) => new Date(ms).toISOString().slice(0, 10))
  const junk = fc.oneof(
    fc.string(), fc.constant(null), fc.constant(undefined), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }),
    fc.object({ maxDepth: 1 })
  )
  const number = fc.oneof(
    fc.double(), fc.integer({ min: -10, max: 100_000 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 0)
  )
  const field = fc.oneof(
    { weight: 4, arbitrary: number }, { weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: junk }
  )
  const time = fc.oneof({ weight: 4, arbitrary: zoned }, { weight: 1, arbitrary: junk })
  const meta = fc.oneof(
    fc.record({ updated_at: fc.oneof(zoned, instant.map((ms) => new Date(ms).toISOString().slice(0, -1)), junk), version: fc.nat() }),
    junk
  )
  const id = fc.oneof({ weight: 4, arbitrary: fc.uuid() }, { weight: 1, arbitrary: junk })
  const optional = { requiredKeys: [] as never[] }

  const documents: Record<OuraDataType, fc.Arbitrary<unknown>> = {
    sleep: fc.record({
      id, meta, type: fc.oneof(fc.constantFrom('sleep', 'long_sleep', 'late_nap', 'deleted', 'rest'), junk),
      bedtime_start: time, bedtime_end: time, day: fc.oneof(day, junk),
      average_hrv: field, average_heart_rate: field, lowest_heart_rate: field, average_breath: field,
      deep_sleep_duration: field, rem_sleep_duration: field, light_sleep_duration: field, awake_time: field,
      total_sleep_duration: field
    }, optional),
    daily_sleep: fc.record({ id, meta, day: fc.oneof(day, junk), timestamp: time, score: field }, optional),
    daily_readiness: fc.record({
      id, meta, day: fc.oneof(day, junk), timestamp: time, score: field, temperature_deviation: field,
      contributors: fc.oneof(fc.record({ hrv_balance: field, body_temperature: field, activity_balance: field }, optional), junk)
    }, optional),
    daily_activity: fc.record({
      id, meta, day: fc.oneof(day, junk), timestamp: time, score: field, active_calories: field, steps: field,
      equivalent_walking_distance: field
    }, optional),
    daily_spo2: fc.record({
      id, meta, day: fc.oneof(day, junk), spo2_percentage: fc.oneof(fc.record({ average: field }, optional), junk)
    }, optional),
    vo2_max: fc.record({ id, meta, day: fc.oneof(day, junk), timestamp: time, vo2_max: field }, optional)
  }

  for (const dataType of OURA_DATA_TYPES) {
    test(`random ${dataType} documents never throw, and every draft builds or is rejected with a code`, () => {
      fc.assert(fc.property(documents[dataType], (document) => {
        const outcome = normalizeOuraDocument(dataType, document)
        assertOutcome(outcome)
        if (outcome.kind === 'drafts') {
          const source = document as Doc
          for (const draft of outcome.drafts) {
            assert.equal(draft.sourceRecordId, source.id)
            assert.equal(draft.deviceType, 'oura_ring')
            assert.equal(draft.context, dataType === 'sleep' ? 'sleep' : 'day')
            if (dataType !== 'sleep') assert.equal(Date.parse(draft.end) - Date.parse(draft.start), 86_400_000)
          }
        }
      }), { numRuns: 1000 })
    })
  }

  test('arbitrary values as documents, under any data type name, never throw', () => {
    const name = fc.oneof(fc.constantFrom(...OURA_DATA_TYPES, 'vO2_max', 'workout'), fc.string())
    fc.assert(fc.property(name, fc.anything(), (dataType, document) => {
      assertOutcome(normalizeOuraDocument(dataType, document))
    }), { numRuns: 2000 })
  })

  test('random heart-rate rows never throw, and every draft builds or is rejected with a code', () => {
    const row = fc.oneof(
      fc.record({
        bpm: field, source: fc.oneof(fc.constantFrom('awake', 'workout', 'rest', 'sleep', 'live', 'session'), junk),
        timestamp: fc.oneof(zoned, instant.map((ms) => new Date(ms).toISOString().slice(0, -1)), junk)
      }, optional),
      fc.anything()
    )
    fc.assert(fc.property(fc.array(row, { maxLength: 20 }), (rows) => {
      const outcomes = normalizeOuraHeartRate(rows)
      assert.equal(outcomes.length, rows.length)
      for (const outcome of outcomes) {
        assertOutcome(outcome)
        if (outcome.kind === 'drafts') {
          for (const draft of outcome.drafts) {
            assert.equal(draft.context, null)
            assert.equal(draft.start, draft.end)
            assert.equal(Date.parse(draft.sourceRecordId), Date.parse(draft.start))
          }
        }
      }
    }), { numRuns: 500 })
  })
})
