import { formatInstant, offsetMinutesOf } from '../domain/time.ts'
import type { StoredPoint } from './cache.ts'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** Numbers per slot, and where each sits: the instants in epoch ms, the zone offset in minutes, the id's 4 words. */
const FIELDS = 9
const START_MS = 0
const VALUE = 1
const UPDATED_MS = 2
const INGESTED_MS = 3
const OFFSET_MIN = 4
const ID_WORDS = 5
/** UUID text positions of the 8 hex digits of each 32-bit word, dashes skipped. */
const WORD_DIGITS = [[0, 1, 2, 3, 4, 5, 6, 7], [9, 10, 11, 12, 14, 15, 16, 17], [19, 20, 21, 22, 24, 25, 26, 27], [28, 29, 30, 31, 32, 33, 34, 35]]

/**
 * A fixed-capacity ring of series points kept as numbers in one plain array (which V8 stores as unboxed
 * doubles): 72 bytes a point, against ~250 for a point object with its two strings. The in-process cache holds
 * up to its total-points bound of these, so this is what that bound costs. Points become objects again only
 * when read.
 *
 * Invariants: an event id is kept as four 32-bit words when it is a lower-case UUID (every id the bridge makes),
 * a start as its instant plus zone offset when formatInstant writes it back unchanged (every start the bridge
 * builds); anything else is kept verbatim on the side, so a read returns exactly what was pushed.
 */
export class PointRing {
  readonly capacity: number
  #size = 0
  #oldest = 0
  /** FIELDS numbers per slot; a revision of NaN stands for none. Grows with the points, never has holes. */
  #numbers: number[] = []
  /** Slot → the verbatim id or start of the rare points the numbers cannot reproduce; made when first needed. */
  #irregularIds: Map<number, string> | undefined
  #irregularStarts: Map<number, string> | undefined

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get size(): number {
    return this.#size
  }

  /** Returns true when the oldest point was overwritten. */
  push(point: StoredPoint): boolean {
    if (this.#size < this.capacity) {
      // Until the ring first wraps the points sit in slots 0 … size-1, so a new one goes at the end.
      this.#write(this.#size++, point)
      return false
    }
    this.#write(this.#oldest, point)
    this.#oldest = (this.#oldest + 1) % this.capacity
    return true
  }

  /** Point `index` counted from the newest (0). */
  fromNewest(index: number): StoredPoint | undefined {
    if (index >= this.#size) return undefined
    return this.#read((this.#oldest + this.#size - 1 - index) % this.#size)
  }

  *newestFirst(): Generator<StoredPoint> {
    for (let index = 0; index < this.#size; index++) yield this.fromNewest(index)!
  }

  oldestFirst(): StoredPoint[] {
    const points: StoredPoint[] = []
    for (let index = this.#size - 1; index >= 0; index--) points.push(this.fromNewest(index)!)
    return points
  }

  #write(slot: number, point: StoredPoint): void {
    const at = slot * FIELDS
    const offset = offsetMinutesOf(point.start)
    const regularId = UUID_PATTERN.test(point.event_id)
    // Set in index order: on a new slot each assignment appends, which keeps the array packed.
    this.#numbers[at + START_MS] = point.startMs
    this.#numbers[at + VALUE] = point.value
    this.#numbers[at + UPDATED_MS] = point.updatedMs ?? Number.NaN
    this.#numbers[at + INGESTED_MS] = point.ingestedMs
    this.#numbers[at + OFFSET_MIN] = offset
    for (let word = 0; word < WORD_DIGITS.length; word++) {
      this.#numbers[at + ID_WORDS + word] = regularId ? hexWord(point.event_id, WORD_DIGITS[word]!) : 0
    }
    this.#irregularIds?.delete(slot)
    this.#irregularStarts?.delete(slot)
    if (!regularId) (this.#irregularIds ??= new Map()).set(slot, point.event_id)
    if (formatInstant(point.startMs, offset) !== point.start) (this.#irregularStarts ??= new Map()).set(slot, point.start)
  }

  #read(slot: number): StoredPoint {
    const at = slot * FIELDS
    const startMs = this.#numbers[at + START_MS]!
    const updatedMs = this.#numbers[at + UPDATED_MS]!
    return {
      event_id: this.#irregularIds?.get(slot) ?? this.#uuidAt(at),
      start: this.#irregularStarts?.get(slot) ?? formatInstant(startMs, this.#numbers[at + OFFSET_MIN]!),
      value: this.#numbers[at + VALUE]!,
      startMs,
      updatedMs: Number.isNaN(updatedMs) ? null : updatedMs,
      ingestedMs: this.#numbers[at + INGESTED_MS]!
    }
  }

  #uuidAt(at: number): string {
    const hex = (word: number): string => this.#numbers[at + ID_WORDS + word]!.toString(16).padStart(8, '0')
    const [a, b, c, d] = [hex(0), hex(1), hex(2), hex(3)]
    return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`
  }
}

/** The 32-bit word written by 8 lower-case hex digits of `text` at `positions` (the UUID pattern has been checked). */
function hexWord(text: string, positions: readonly number[]): number {
  let word = 0
  for (const position of positions) {
    const code = text.charCodeAt(position)
    word = word * 16 + (code <= 0x39 ? code - 0x30 : code - 0x57)
  }
  return word
}
