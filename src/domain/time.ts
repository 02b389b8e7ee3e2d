/** Zone offset, in minutes east of UTC, written at the end of an ISO-8601 timestamp (0 for `Z` or none). */
export function offsetMinutesOf(text: string): number {
  const match = /([+-])(\d{2}):?(\d{2})$/.exec(text)
  if (match === null) return 0
  const minutes = Number(match[2]) * 60 + Number(match[3])
  return match[1] === '-' ? -minutes : minutes
}

/**
 * Formats an instant in a fixed zone offset, e.g. `2026-01-06T23:31:10+01:00`; offset 0 is written `Z`.
 * Milliseconds are kept only when present, so round-tripping provider timestamps changes nothing.
 */
export function formatInstant(epochMs: number, offsetMinutes: number): string {
  const local = new Date(epochMs + offsetMinutes * 60_000).toISOString()
  const withoutZone = local.endsWith('.000Z') ? local.slice(0, -5) : local.slice(0, -1)
  if (offsetMinutes === 0) return `${withoutZone}Z`
  const sign = offsetMinutes < 0 ? '-' : '+'
  const abs = Math.abs(offsetMinutes)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  return `${withoutZone}${sign}${hh}:${mm}`
}
