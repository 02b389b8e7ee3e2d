import type { OuraDataType } from '../../providers/oura/documents.ts'
import type { OuraDataset, OuraDocument, OuraDocumentsByType, OuraHeartRateRow } from './data.ts'

/**
 * The simulated Oura cloud's documents: per user and type, with the collection queries and paging of API v2.
 *
 * Which documents a date range selects is not documented; field reports disagree per endpoint. The default
 * `oura` semantics reproduce what integrators observed: `sleep` is filtered by `bedtime_start` as an instant
 * (a date-only bound is midnight UTC, so the night that *ends* on `end_date` is missed), `daily_activity` by the
 * wall-clock time of its `timestamp` (the day's 04:00, so a date-only `end_date` misses that day), every other
 * type by `day`, inclusive at both ends. `inclusive` filters every type by `day`. A client that queries with a
 * day of margin on both sides (reference §1.5) gets everything under either.
 */
export type RangeSemantics = 'oura' | 'inclusive'

export const DATE_RANGE_SEMANTICS: readonly RangeSemantics[] = ['oura', 'inclusive']

export interface Page<T> {
  data: T[]
  next_token: string | null
}

export class QueryError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'QueryError'
  }
}

type Documents = { [T in OuraDataType]: Map<string, OuraDocumentsByType[T]> }

interface UserData {
  documents: Documents
  heartRate: OuraHeartRateRow[]
}

const DAY_MS = 86_400_000
const DATE = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:\d{2})?$/i

/** A query bound: a calendar date, or a date-time with or without a zone. */
interface Bound {
  date: string
  /** Epoch ms; a missing zone or time reads as UTC. */
  ms: number
  /** `YYYY-MM-DDTHH:MM:SS` as written, without zone; `T00:00:00` for a date. */
  wallClock: string
}

function parseBound(name: string, text: string): Bound {
  if (DATE.test(text)) {
    const ms = Date.parse(`${text}T00:00:00Z`)
    if (Number.isFinite(ms)) return { date: text, ms, wallClock: `${text}T00:00:00` }
  }
  const match = DATE_TIME.exec(text)
  if (match !== null) {
    const [, date = '', time = '', zone] = match
    const ms = Date.parse(`${date}T${time}${zone ?? 'Z'}`)
    const wallTime = time.length === 5 ? `${time}:00` : time.slice(0, 8)
    if (Number.isFinite(ms)) return { date, ms, wallClock: `${date}T${wallTime}` }
  }
  // A `+` sent unescaped in a query string arrives as a space: the real API rejects that too.
  throw new QueryError(`${name} must be an ISO-8601 date or date-time`)
}

function boundOf(ms: number): Bound {
  const iso = new Date(ms).toISOString()
  return { date: iso.slice(0, 10), ms, wallClock: iso.slice(0, 19) }
}

/** Sortable key a range is compared on, per type and semantics (see RangeSemantics). */
function rangeKey(dataType: OuraDataType, document: OuraDocument, semantics: RangeSemantics): string {
  if (semantics === 'oura') {
    if (dataType === 'sleep') {
      const start = Date.parse((document as OuraDocumentsByType['sleep']).bedtime_start)
      return new Date(start).toISOString()
    }
    if (dataType === 'daily_activity') return (document as OuraDocumentsByType['daily_activity']).timestamp.slice(0, 19)
  }
  return document.day
}

function boundKey(dataType: OuraDataType, bound: Bound, semantics: RangeSemantics): string {
  if (semantics === 'oura') {
    if (dataType === 'sleep') return new Date(bound.ms).toISOString()
    if (dataType === 'daily_activity') return bound.wallClock
  }
  return bound.date
}

interface DocumentCursor {
  kind: 'documents'
  dataType: OuraDataType
  from: string
  to: string
  /** Key and id of the last document returned. */
  afterKey: string
  afterId: string
}

interface HeartRateCursor {
  kind: 'heartrate'
  fromMs: number
  toMs: number
  afterMs: number
}

function encodeToken(cursor: DocumentCursor | HeartRateCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url')
}

function decodeToken(token: string): unknown {
  try {
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown
  } catch {
    throw new QueryError('next_token is not valid')
  }
}

function isDocumentCursor(value: unknown): value is DocumentCursor {
  const c = value as Partial<DocumentCursor> | null
  return typeof c === 'object' && c !== null && c.kind === 'documents' && typeof c.dataType === 'string' &&
    typeof c.from === 'string' && typeof c.to === 'string' && typeof c.afterKey === 'string' && typeof c.afterId === 'string'
}

function isHeartRateCursor(value: unknown): value is HeartRateCursor {
  const c = value as Partial<HeartRateCursor> | null
  return typeof c === 'object' && c !== null && c.kind === 'heartrate' &&
    typeof c.fromMs === 'number' && typeof c.toMs === 'number' && typeof c.afterMs === 'number'
}

export interface DocumentQuery {
  startDate?: string | undefined
  endDate?: string | undefined
  nextToken?: string | undefined
}

export interface HeartRateQuery {
  startDatetime?: string | undefined
  endDatetime?: string | undefined
  nextToken?: string | undefined
}

export interface DocumentStore {
  addUser(dataset: OuraDataset): void
  hasUser(userId: string): boolean
  add<T extends OuraDataType>(userId: string, dataType: T, document: OuraDocumentsByType[T]): void
  /** The stored document itself; callers copy before handing it out. */
  get<T extends OuraDataType>(dataType: T, id: string): { userId: string, document: OuraDocumentsByType[T] } | undefined
  remove(dataType: OuraDataType, id: string): { userId: string } | undefined
  all<T extends OuraDataType>(userId: string, dataType: T): Array<OuraDocumentsByType[T]>
  heartRate(userId: string): OuraHeartRateRow[]
  queryDocuments(userId: string, dataType: OuraDataType, query: DocumentQuery, pageSize: number, nowMs: number): Page<OuraDocument>
  queryHeartRate(userId: string, query: HeartRateQuery, pageSize: number, nowMs: number): Page<OuraHeartRateRow>
}

export function createDocumentStore(semantics: RangeSemantics): DocumentStore {
  const users = new Map<string, UserData>()
  const owners = new Map<string, { userId: string, dataType: OuraDataType }>()
  const ownerKey = (dataType: OuraDataType, id: string): string => `${dataType}/${id}`

  const userData = (userId: string): UserData => {
    const data = users.get(userId)
    if (data === undefined) throw new RangeError(`no simulated Oura user ${userId}`)
    return data
  }
  const typed = <T extends OuraDataType>(data: UserData, dataType: T): Map<string, OuraDocumentsByType[T]> =>
    data.documents[dataType]

  const store: DocumentStore = {
    addUser(dataset) {
      if (users.has(dataset.userId)) throw new RangeError(`simulated Oura user ${dataset.userId} exists`)
      users.set(dataset.userId, {
        documents: {
          sleep: new Map(), daily_sleep: new Map(), daily_readiness: new Map(),
          daily_activity: new Map(), daily_spo2: new Map(), vo2_max: new Map()
        },
        heartRate: [...dataset.heartRate]
      })
      for (const dataType of Object.keys(dataset.documents) as OuraDataType[]) {
        for (const document of dataset.documents[dataType]) store.add(dataset.userId, dataType, structuredClone(document))
      }
    },
    hasUser: (userId) => users.has(userId),
    add(userId, dataType, document) {
      const key = ownerKey(dataType, document.id)
      if (owners.has(key)) throw new RangeError(`${dataType} ${document.id} exists`)
      typed(userData(userId), dataType).set(document.id, document)
      owners.set(key, { userId, dataType })
    },
    get(dataType, id) {
      const owner = owners.get(ownerKey(dataType, id))
      if (owner === undefined) return undefined
      const document = typed(userData(owner.userId), dataType).get(id)
      return document === undefined ? undefined : { userId: owner.userId, document }
    },
    remove(dataType, id) {
      const owner = owners.get(ownerKey(dataType, id))
      if (owner === undefined) return undefined
      owners.delete(ownerKey(dataType, id))
      userData(owner.userId).documents[dataType].delete(id)
      return { userId: owner.userId }
    },
    all: (userId, dataType) => [...typed(userData(userId), dataType).values()],
    heartRate: (userId) => userData(userId).heartRate,

    queryDocuments(userId, dataType, query, pageSize, nowMs) {
      let from: string
      let to: string
      let after: { key: string, id: string } | undefined
      if (query.nextToken !== undefined) {
        // The token carries the range it was issued for; Oura's clients resend start/end with it anyway.
        const cursor = decodeToken(query.nextToken)
        if (!isDocumentCursor(cursor) || cursor.dataType !== dataType) throw new QueryError('next_token is not valid')
        from = cursor.from
        to = cursor.to
        after = { key: cursor.afterKey, id: cursor.afterId }
      } else {
        const end = query.endDate === undefined ? boundOf(nowMs) : parseBound('end_date', query.endDate)
        const start = query.startDate === undefined ? boundOf(end.ms - DAY_MS) : parseBound('start_date', query.startDate)
        from = boundKey(dataType, start, semantics)
        to = boundKey(dataType, end, semantics)
      }
      const selected = [...userData(userId).documents[dataType].values()]
        .map((document) => ({ key: rangeKey(dataType, document, semantics), document }))
        .filter(({ key, document }) => key >= from && key <= to &&
          (after === undefined || key > after.key || (key === after.key && document.id > after.id)))
        .sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : a.document.id < b.document.id ? -1 : 1)
      const page = selected.slice(0, pageSize)
      const last = page.at(-1)
      const more = selected.length > pageSize && last !== undefined
      return {
        data: page.map(({ document }) => document),
        next_token: more ? encodeToken({ kind: 'documents', dataType, from, to, afterKey: last.key, afterId: last.document.id }) : null
      }
    },

    queryHeartRate(userId, query, pageSize, nowMs) {
      let fromMs: number
      let toMs: number
      let afterMs = Number.NEGATIVE_INFINITY
      if (query.nextToken !== undefined) {
        const cursor = decodeToken(query.nextToken)
        if (!isHeartRateCursor(cursor)) throw new QueryError('next_token is not valid')
        fromMs = cursor.fromMs
        toMs = cursor.toMs
        afterMs = cursor.afterMs
      } else {
        toMs = query.endDatetime === undefined ? nowMs : parseBound('end_datetime', query.endDatetime).ms
        fromMs = query.startDatetime === undefined ? toMs - DAY_MS : parseBound('start_datetime', query.startDatetime).ms
      }
      // Row timestamps are unique per user (one row per 5-minute slot), so the last one returned is a cursor.
      const selected = userData(userId).heartRate
        .filter((row) => row.timestamp_unix >= fromMs && row.timestamp_unix <= toMs && row.timestamp_unix > afterMs)
      const page = selected.slice(0, pageSize)
      const last = page.at(-1)
      const more = selected.length > pageSize && last !== undefined
      return {
        data: page,
        next_token: more ? encodeToken({ kind: 'heartrate', fromMs, toMs, afterMs: last.timestamp_unix }) : null
      }
    }
  }
  return store
}
