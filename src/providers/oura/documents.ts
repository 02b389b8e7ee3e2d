/**
 * The Oura v2 data types the bridge turns into events, in their webhook spelling (`data_type` of a subscription
 * or notification). Heart rate is not among them: Oura offers no webhook for it, its rows are pulled from the
 * `heartrate` collection instead.
 */
export const OURA_DATA_TYPES = [
  'sleep', 'daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2', 'vo2_max'
] as const
export type OuraDataType = (typeof OURA_DATA_TYPES)[number]

/** Path segments under /v2/usercollection/. Only VO2 max is spelled differently from its webhook data_type. */
const PATH_SEGMENTS: Readonly<Record<OuraDataType, string>> = {
  sleep: 'sleep',
  daily_sleep: 'daily_sleep',
  daily_readiness: 'daily_readiness',
  daily_activity: 'daily_activity',
  daily_spo2: 'daily_spo2',
  vo2_max: 'vO2_max'
}

const COLLECTION_PREFIX = '/v2/usercollection/'

/** Heart-rate rows are queried with `start_datetime`/`end_datetime` (not dates) and carry no document id. */
export const OURA_HEART_RATE_PATH = `${COLLECTION_PREFIX}heartrate`

export function isOuraDataType(name: string): name is OuraDataType {
  return Object.hasOwn(PATH_SEGMENTS, name)
}

/** Accepts the webhook spelling (`vo2_max`) or the path spelling (`vO2_max`); anything else is undefined. */
export function parseOuraDataType(name: string): OuraDataType | undefined {
  if (isOuraDataType(name)) return name
  return OURA_DATA_TYPES.find((dataType) => PATH_SEGMENTS[dataType] === name)
}

/** Collection path, queried with `start_date`/`end_date`/`next_token`. */
export function ouraCollectionPath(dataType: OuraDataType): string {
  return `${COLLECTION_PREFIX}${PATH_SEGMENTS[dataType]}`
}

/** Single-document path for a notification's `object_id`. */
export function ouraDocumentPath(dataType: OuraDataType, documentId: string): string {
  return `${ouraCollectionPath(dataType)}/${encodeURIComponent(documentId)}`
}
