/**
 * Growth trends of a soak's per-window series, and the verdict on them.
 *
 * Each series (x = the middle of a window in minutes since the load started, y = the window's value) gets an
 * ordinary least-squares line; its slope × 10 is the growth per 10 minutes. Windows that start inside the
 * warm-up are left out (JIT, pools filling, V8 sizing its heap).
 *
 * Rules (docs/benchmarks.md, "Soak", repeats them):
 * - memory (RSS): flat when the fitted growth per 10 minutes is below 10 % of the series' mean. RSS is smooth
 *   enough that its size, not its scatter, is the question.
 * - latency (a p99): flat when the fitted growth per 10 minutes is within noise, noise being the larger of
 *   (a) two standard errors of the fitted growth (the slope's ~95 % band, from the windows' scatter around the
 *   line: a rise smaller than that cannot be told from the scatter), and
 *   (b) 10 % of the series' median (a p99 of 4 ms that drifts 0.2 ms is flat however clean the fit).
 *   A falling series is flat.
 * Fewer than MIN_POINTS windows after the warm-up give no verdict ("insufficient").
 */

export const MIN_POINTS = 3
export const RSS_GROWTH_LIMIT = 0.10
export const P99_NOISE_FLOOR = 0.10
/** Standard errors of the fitted growth counted as noise: ~95 % for a normal scatter. */
export const P99_NOISE_SE = 2
/**
 * Pending receipts at the end of the load, in seconds of arrivals, up to which the bridge counts as keeping up
 * with the rate; beyond it end-to-end latency measures a growing queue rather than the bridge.
 */
export const KEEP_UP_SECONDS = 10

export interface Fit {
  /** Units of y per minute. */
  slopePerMinute: number
  intercept: number
  /** Standard error of the slope, units of y per minute; NaN with fewer than 3 points. */
  slopeStandardError: number
  points: number
}

/** Ordinary least squares of y on x. */
export function leastSquares(xs: readonly number[], ys: readonly number[]): Fit {
  const n = xs.length
  if (n !== ys.length) throw new Error('xs and ys differ in length')
  if (n < 2) return { slopePerMinute: Number.NaN, intercept: Number.NaN, slopeStandardError: Number.NaN, points: n }
  const meanX = xs.reduce((sum, x) => sum + x, 0) / n
  const meanY = ys.reduce((sum, y) => sum + y, 0) / n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - meanX) ** 2
    sxy += (xs[i]! - meanX) * (ys[i]! - meanY)
  }
  const slope = sxx === 0 ? 0 : sxy / sxx
  const intercept = meanY - slope * meanX
  let residuals = 0
  for (let i = 0; i < n; i++) residuals += (ys[i]! - (intercept + slope * xs[i]!)) ** 2
  const slopeStandardError = n < 3 || sxx === 0 ? Number.NaN : Math.sqrt(residuals / (n - 2) / sxx)
  return { slopePerMinute: slope, intercept, slopeStandardError, points: n }
}

export type TrendKind = 'memory' | 'latency'
export type TrendVerdict = 'flat' | 'growing' | 'insufficient'

export interface Trend {
  name: string
  unit: string
  kind: TrendKind
  verdict: TrendVerdict
  points: number
  /** Minutes covered by the fitted windows (first start to last end). */
  spanMinutes: number
  /** Fitted growth over 10 minutes, in `unit`, and relative to the series' mean. */
  growthPer10Min: number
  growthPer10MinRelative: number
  mean: number
  median: number
  /** Growth per 10 minutes that still counts as flat, in `unit`. */
  allowedPer10Min: number
  /** How `allowedPer10Min` came about, for the report. */
  rule: string
}

export interface SeriesPoint {
  /** Middle of the window, minutes since the load started. */
  atMinutes: number
  value: number
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Fits the points (already past the warm-up, NaNs dropped) and applies the rule of `kind`. */
export function judgeTrend(name: string, unit: string, kind: TrendKind, points: readonly SeriesPoint[], windowMinutes: number): Trend {
  const usable = points.filter((point) => Number.isFinite(point.value))
  const xs = usable.map((point) => point.atMinutes)
  const ys = usable.map((point) => point.value)
  const fit = leastSquares(xs, ys)
  const mean = ys.length === 0 ? Number.NaN : ys.reduce((sum, y) => sum + y, 0) / ys.length
  const mid = median(ys)
  const growth = fit.slopePerMinute * 10
  const spanMinutes = xs.length === 0 ? 0 : xs.at(-1)! - xs[0]! + windowMinutes
  let allowed: number
  let rule: string
  if (kind === 'memory') {
    allowed = RSS_GROWTH_LIMIT * mean
    rule = `< ${RSS_GROWTH_LIMIT * 100} % of the mean`
  } else {
    const noise = P99_NOISE_SE * fit.slopeStandardError * 10
    const floor = P99_NOISE_FLOOR * mid
    allowed = Math.max(Number.isFinite(noise) ? noise : 0, floor)
    rule = noise > floor ? `≤ ${P99_NOISE_SE} standard errors of the fit` : `≤ ${P99_NOISE_FLOOR * 100} % of the median`
  }
  const verdict: TrendVerdict = usable.length < MIN_POINTS ? 'insufficient' : growth < allowed || growth <= 0 ? 'flat' : 'growing'
  return {
    name, unit, kind, verdict, points: usable.length, spanMinutes,
    growthPer10Min: growth,
    growthPer10MinRelative: mean === 0 ? Number.NaN : growth / mean,
    mean, median: mid, allowedPer10Min: allowed, rule
  }
}
