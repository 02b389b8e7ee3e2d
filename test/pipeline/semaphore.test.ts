import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createSemaphore } from '../../src/pipeline/semaphore.ts'

function observed(): { waits: number[], active: number[], observer: Parameters<typeof createSemaphore>[1] } {
  const waits: number[] = []
  const active: number[] = []
  return { waits, active, observer: { waited: (seconds) => waits.push(seconds), activeChanged: (n) => active.push(n) } }
}

describe('semaphore', () => {
  test('never lets more than its permits run, and reports active tasks', async () => {
    const { active, observer } = observed()
    const semaphore = createSemaphore(3, observer)
    let running = 0
    let peak = 0
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const release = await semaphore.acquire()
      running++
      peak = Math.max(peak, running)
      await new Promise((resolve) => setTimeout(resolve, i % 3))
      running--
      release()
    }))
    assert.equal(peak, 3)
    assert.equal(Math.max(...active), 3)
    assert.equal(active.at(-1), 0)
    assert.equal(semaphore.active, 0)
    assert.equal(semaphore.available, 3)
  })

  test('grants in arrival order and measures the wait from the request', async () => {
    let nowMs = 0
    const { waits, observer } = observed()
    const semaphore = createSemaphore(1, observer, () => nowMs)
    const first = await semaphore.acquire()
    const order: string[] = []
    const second = semaphore.acquire().then((release) => { order.push('second'); return release })
    const third = semaphore.acquire().then((release) => { order.push('third'); return release })
    assert.equal(semaphore.waiting, 2)
    nowMs = 250
    first()
    ;(await second)()
    ;(await third)()
    assert.deepEqual(order, ['second', 'third'])
    assert.deepEqual(waits, [0, 0.25, 0.25])
  })

  test('a second release of the same permit changes nothing', async () => {
    const { observer } = observed()
    const semaphore = createSemaphore(1, observer)
    const release = await semaphore.acquire()
    release()
    release()
    assert.equal(semaphore.active, 0)
    assert.equal(semaphore.available, 1)
    await semaphore.acquire()
    assert.equal(semaphore.available, 0, 'the double release did not mint a second permit')
  })
})
