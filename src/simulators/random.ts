/**
 * Seeded pseudo-random numbers for simulators: the same seed yields the same data on every machine and Node
 * version, which Math.random cannot promise. Not for secrets.
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform in [min, max). */
  between(min: number, max: number): number
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number
  /** Normally distributed (Box–Muller). */
  normal(mean: number, sd: number): number
  chance(probability: number): boolean
  pick<T>(items: readonly T[]): T
  /** An upper-case RFC 4122 v4 UUID, the way HealthKit prints `HKObject.uuid`. */
  uuid(): string
}

/** mulberry32: 32-bit state, full period 2^32, good enough statistics for synthetic physiology. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const hex = (digits: number): string => {
    let text = ''
    for (let i = 0; i < digits; i++) text += Math.floor(next() * 16).toString(16)
    return text.toUpperCase()
  }
  const random: Random = {
    next,
    between: (min, max) => min + next() * (max - min),
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    normal: (mean, sd) => {
      // 1 - next() keeps the logarithm's argument in (0, 1].
      const u = 1 - next()
      const v = next()
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
    },
    chance: (probability) => next() < probability,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('pick from an empty list')
      return items[Math.floor(next() * items.length)] as T
    },
    uuid: () => {
      const variant = (8 + Math.floor(next() * 4)).toString(16).toUpperCase()
      return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(12)}`
    }
  }
  return random
}
