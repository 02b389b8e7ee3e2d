import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createWakeablePause } from '../../src/lib/wakeable-pause.ts'

describe('wakeable pause', () => {
  test('a pause lasts its time when nobody wakes it', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const idle = createWakeablePause()
    let ended = false
    const pausing = idle.pause(1000).then(() => { ended = true })
    t.mock.timers.tick(999)
    await Promise.resolve()
    assert.equal(ended, false, 'still pausing 1 ms before its end')
    t.mock.timers.tick(1)
    await pausing
    assert.equal(ended, true)
  })

  test('a wake ends the current pause at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const idle = createWakeablePause()
    const pausing = idle.pause(60_000)
    idle.wake()
    await pausing
    // The next pause is a full one again: the wake was used up by the pause it ended.
    let ended = false
    const next = idle.pause(1000).then(() => { ended = true })
    await Promise.resolve()
    assert.equal(ended, false)
    t.mock.timers.tick(1000)
    await next
  })

  test('a wake between pauses is not lost: the next pause returns at once, the one after waits', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const idle = createWakeablePause()
    idle.wake()
    idle.wake()
    await idle.pause(60_000)
    let ended = false
    const next = idle.pause(1000).then(() => { ended = true })
    await Promise.resolve()
    await Promise.resolve()
    assert.equal(ended, false, 'two wakes between pauses count once')
    t.mock.timers.tick(1000)
    await next
  })
})
