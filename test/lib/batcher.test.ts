import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createBatcher } from '../../src/lib/batcher.ts'

/** A write whose completion the test controls, recording each batch it was given. */
function controlledWrite(): { batches: number[][], finish: () => void, write: (items: number[]) => Promise<number[]> } {
  const batches: number[][] = []
  const pending: Array<() => void> = []
  return {
    batches,
    finish: () => { for (const done of pending.splice(0)) done() },
    write: (items) => {
      batches.push(items)
      return new Promise((resolve) => pending.push(() => { resolve(items.map((item) => item * 10)) }))
    }
  }
}

describe('batcher', () => {
  test('the first item of an idle batcher goes out alone and at once; items arriving meanwhile share the next write', async () => {
    const { batches, finish, write } = controlledWrite()
    const batcher = createBatcher(write, { maxBatch: 100, maxInFlight: 1 })
    const first = batcher.submit(1)
    assert.deepEqual(batches, [[1]], 'no waiting for company when idle')
    const rest = [2, 3, 4].map((item) => batcher.submit(item))
    assert.equal(batches.length, 1, 'at most maxInFlight writes at once')
    finish()
    assert.equal(await first, 10)
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(batches, [[1], [2, 3, 4]])
    finish()
    assert.deepEqual(await Promise.all(rest), [20, 30, 40], 'each caller gets its own result')
  })

  test('batches never exceed maxBatch, and several may be in flight', async () => {
    const { batches, finish, write } = controlledWrite()
    const batcher = createBatcher(write, { maxBatch: 3, maxInFlight: 2 })
    const results = Array.from({ length: 10 }, (_, i) => batcher.submit(i))
    assert.deepEqual(batches, [[0], [1]], 'two writes in flight; the other eight wait')
    while (batches.flat().length < 10) {
      finish()
      await new Promise((resolve) => setImmediate(resolve))
    }
    finish()
    assert.deepEqual(await Promise.all(results), Array.from({ length: 10 }, (_, i) => i * 10))
    assert.deepEqual(batches.slice(2), [[2, 3, 4], [5, 6, 7], [8, 9]], 'then full batches of maxBatch')
    assert.deepEqual(batches.flat(), Array.from({ length: 10 }, (_, i) => i), 'in submission order')
  })

  test('a failed write rejects exactly the items of its batch; the batcher keeps working', async () => {
    let calls = 0
    const batcher = createBatcher<number, number>((items) => {
      calls++
      return calls === 1 ? Promise.reject(new Error('storage down')) : Promise.resolve(items)
    }, { maxBatch: 10, maxInFlight: 1 })
    const failed = batcher.submit(1)
    const later = batcher.submit(2)
    await assert.rejects(failed, /storage down/)
    assert.equal(await later, 2)
  })
})
