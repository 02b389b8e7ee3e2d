/** Small statistics helpers shared by the benchmarks. */

/** Nearest-rank percentile of an ascending array (or typed array). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p / 100 * sorted.length)))
  return sorted[rank - 1]!
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50)
}

/** Deterministic shuffles, so a run's order can be reproduced from its seed. */
export function makeRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const item = copy[i]!
    copy[i] = copy[j]!
    copy[j] = item
  }
  return copy
}

export interface LatencySummary {
  count: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
}

/** Percentiles of latencies pooled from several runs (e.g. rounds), in ms. */
export function summarizeLatencies(parts: readonly Float64Array[]): LatencySummary {
  const pooled = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    pooled.set(part, offset)
    offset += part.length
  }
  // Typed arrays sort numerically.
  pooled.sort()
  return {
    count: pooled.length,
    p50Ms: percentile(pooled, 50),
    p90Ms: percentile(pooled, 90),
    p99Ms: percentile(pooled, 99),
    p999Ms: percentile(pooled, 99.9),
    maxMs: pooled.length === 0 ? Number.NaN : pooled[pooled.length - 1]!
  }
}

export const fmtInt = (value: number): string => Math.round(value).toLocaleString('en-US')
export const fmtMs = (value: number): string => (value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0))
