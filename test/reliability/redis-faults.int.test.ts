import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { createRedisCoordination } from '../../src/cache/redis-coordination.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { assertNothingLost, type SentSample } from '../helpers/checker.ts'
import {
  assertOutcomesWithin, describeRun, outcomesSince, probeReadiness, readinessBecomes, startFaultRig, watchServerRequests,
  type FaultRig
} from '../helpers/fault-rig.ts'
import { exited, freePort, requireRedisServerBinary, startRedisServer } from '../helpers/redis-server.ts'
import { requirePostgres } from '../helpers/services.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'

/**
 * Redis faults under a steady HealthKit load (reliability-security §7.2 F3, F7 on the Redis link). Redis is a
 * cache and a coordinator, never the record: ingest keeps answering 2xx within its usual time, /readyz stays 200
 * and says `degraded`, and the cache comes back by itself. The request-level proofs without load (latest values
 * never stale after an outage or a pause) are test/cache/redis-outage.int.test.ts; this file adds the load and
 * the loss checker.
 */

/** The longest an upload may take with Redis gone: its cache write gives up after 250 ms (src/cache/redis.ts). */
const REQUEST_BOUND_MS = 2000
const TEST_TIMEOUT = { timeout: 120_000 }

/** Sends one upload of the probe user and records the attempt; returns the parsed answer. */
async function upload(rig: FaultRig, samples: ReturnType<typeof heartRate>[]): Promise<{ status: number, accepted?: number, duplicates?: number }> {
  const sent: SentSample[] = samples.map((sample) => ({ userId: rig.probeUser, recordId: sample.uuid, value: sample.value }))
  const response = await fetch(`${rig.address}/v1/healthkit/batch`, {
    method: 'POST', headers: rig.probeHeaders, body: batch(samples), signal: AbortSignal.timeout(REQUEST_BOUND_MS * 2)
  })
  const body = await response.json() as { accepted?: number, duplicates?: number }
  rig.checker.record(sent, response.ok)
  return { status: response.status, ...body }
}

async function finish(t: { diagnostic(message: string): void }, rig: FaultRig, label: string, faultMs: number, extra: string): Promise<void> {
  const stats = await rig.load.stop(30_000)
  assertOutcomesWithin(stats.outcomes, ['200'], `${label}: every upload is stored at its first attempt`)
  const result = await rig.checker.reconcile(rig.harness.app.db)
  assertNothingLost(result)
  t.diagnostic(`${label}: fault ${(faultMs / 1000).toFixed(1)} s; ${describeRun(stats, result.acknowledged)}; ` +
    `stored ${result.stored}, lost ${result.lost.length}, duplicated ${result.duplicated.length}; ${extra}`)
}

describe('Redis faults under load', () => {
  test('F3 Redis killed (SIGKILL) for 5 s and restarted on its port: ingest stays 2xx, replays store no duplicate rows, the cache returns, nothing lost', TEST_TIMEOUT, async (t) => {
    if (!requireRedisServerBinary(t) || !(await requirePostgres(t))) return
    const port = await freePort()
    const server = await startRedisServer(t, port)
    const rig = await startFaultRig(t, 'f3', { env: { REDIS_URL: server.url }, requestTimeoutMs: REQUEST_BOUND_MS * 2 })
    if (rig === undefined) return
    const { load, address } = rig
    await load.waitForAcknowledged(30)
    assert.equal((await probeReadiness(address)).redis, 'up')

    const requests = watchServerRequests(rig.harness.app.http.server)
    const before = { ...load.stats.outcomes }
    const faultStarted = performance.now()
    server.kill('SIGKILL')
    await exited(server)
    const ready = await probeReadiness(address)
    // Replays while Redis is gone: the same upload twice, as an app that lost the first answer would send it.
    const replays: Array<[number, number]> = []
    for (let round = 0; round < 3; round++) {
      const samples = Array.from({ length: 5 }, (_, index) => heartRate(round * 10 + index, { uuid: `${rig.probeUser}-${round}-${index}` }))
      const first = await upload(rig, samples)
      const again = await upload(rig, samples)
      assert.deepEqual([first.status, first.accepted], [200, 5])
      assert.deepEqual([again.status, again.accepted, again.duplicates], [200, 0, 5], 'the replay stored nothing new')
      replays.push([first.accepted ?? 0, again.duplicates ?? 0])
    }
    await sleep(Math.max(0, 5000 - (performance.now() - faultStarted)))
    const during = outcomesSince(load.stats, before)
    await startRedisServer(t, port)
    const faultMs = performance.now() - faultStarted
    const back = performance.now()
    await readinessBecomes(address, (readiness) => readiness.status === 200 && readiness.redis === 'up')
    const backMs = Math.round(performance.now() - back)
    requests.stop()

    assert.deepEqual([ready.status, ready.database, ready.redis], [200, 'up', 'degraded'], 'a Redis outage never makes the bridge unready')
    assert.ok((during['200'] ?? 0) > 0)
    assertOutcomesWithin(during, ['200'], 'while Redis is down')
    assert.ok(requests.longestMs <= REQUEST_BOUND_MS, `the longest request took ${requests.longestMs} ms`)
    const { rows } = await rig.harness.app.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM events WHERE user_id = $1', [rig.probeUser])
    assert.equal(rows[0]?.n, 15, 'three replayed uploads of 5 samples are 15 rows')
    await load.waitForAcknowledged(30)
    await finish(t, rig, 'F3 Redis SIGKILL + restart', faultMs,
      `during: ${JSON.stringify(during)}, /readyz ${ready.status} redis ${ready.redis} in ${ready.ms} ms, replays (accepted, then duplicates) ${JSON.stringify(replays)}, ` +
      `longest request ${requests.longestMs} ms, redis up in /readyz ${backMs} ms after restart`)
  })

  test('F7 Redis link through a fault proxy (latency 2 s, RST, blackhole): uploads stay 2xx within their deadline, /readyz says degraded, the cache recovers after each restore, nothing lost', TEST_TIMEOUT, async (t) => {
    if (!requireRedisServerBinary(t) || !(await requirePostgres(t))) return
    const server = await startRedisServer(t, await freePort())
    const proxy = await startTcpProxy(t, '127.0.0.1', server.port)
    const rig = await startFaultRig(t, 'f7-redis', { env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` }, requestTimeoutMs: REQUEST_BOUND_MS * 2 })
    if (rig === undefined) return
    const { load, address } = rig
    await load.waitForAcknowledged(30)
    assert.equal((await probeReadiness(address)).redis, 'up')

    const phases: Array<[string, () => void]> = [
      ['latency 2 s', () => proxy.latency(2000)],
      ['RST', () => proxy.cut()],
      ['blackhole', () => proxy.blackhole()]
    ]
    const requests = watchServerRequests(rig.harness.app.http.server)
    const figures: string[] = []
    let faultMs = 0
    for (const [name, inject] of phases) {
      const before = { ...load.stats.outcomes }
      const started = performance.now()
      inject()
      await sleep(500)
      const ready = await probeReadiness(address)
      await sleep(Math.max(0, 3000 - (performance.now() - started)))
      proxy.restore()
      faultMs += performance.now() - started
      const during = outcomesSince(load.stats, before)
      assert.deepEqual([ready.status, ready.database, ready.redis], [200, 'up', 'degraded'], `${name}: /readyz`)
      assert.ok(ready.ms <= REQUEST_BOUND_MS, `${name}: /readyz answered in ${ready.ms} ms`)
      assert.ok((during['200'] ?? 0) > 0)
      assertOutcomesWithin(during, ['200'], name)

      const restored = performance.now()
      await readinessBecomes(address, (readiness) => readiness.redis === 'up', 15_000).catch((error: unknown) => {
        throw new Error(`${name}: the cache did not recover after restore (phases before: ${figures.join('; ') || 'none'})`, { cause: error })
      })
      figures.push(`${name}: ${JSON.stringify(during)}, /readyz 200 redis degraded in ${ready.ms} ms, redis up ${Math.round(performance.now() - restored)} ms after restore`)
    }
    requests.stop()
    assert.ok(requests.longestMs <= REQUEST_BOUND_MS, `the longest request took ${requests.longestMs} ms`)
    await load.waitForAcknowledged(30)
    await finish(t, rig, 'F7 Redis link', faultMs, `${figures.join('; ')}; longest request ${requests.longestMs} ms`)
  })

  test('F7 Redis link, coordination connection: locks fail fast while the link is black-holed and work again after restore', TEST_TIMEOUT, async (t) => {
    if (!requireRedisServerBinary(t)) return
    const server = await startRedisServer(t, await freePort())
    const proxy = await startTcpProxy(t, '127.0.0.1', server.port)
    const coordination = await createRedisCoordination({
      url: `redis://127.0.0.1:${proxy.port}`, logger: pino({ level: 'silent' }), now: Date.now, commandTimeoutMs: 200
    })
    t.after(() => coordination.close())
    const owner = await coordination.tryLock('f7-lock', 10_000)
    assert.ok(owner !== undefined)
    await coordination.unlock('f7-lock', owner)

    proxy.blackhole()
    const failures: string[] = []
    const started = performance.now()
    while (performance.now() - started < 2500) {
      failures.push(await coordination.tryLock('f7-lock', 10_000).then(() => 'taken', (error: unknown) => (error as Error).message))
      await sleep(100)
    }
    proxy.restore()
    assert.ok(!failures.includes('taken'), 'no lock is taken over a black-holed link')
    const restored = performance.now()
    let relocked: string | undefined
    while (relocked === undefined && performance.now() - restored < 10_000) {
      relocked = await coordination.tryLock('f7-lock-after', 10_000).catch(() => undefined)
      if (relocked === undefined) await sleep(100)
    }
    assert.ok(relocked !== undefined, 'the lock works again after the link is restored (the silent connection was replaced)')
    t.diagnostic(`coordination over a black-holed link: ${failures.length} lock attempts failed (${[...new Set(failures)].join(' / ')}); ` +
      `locks work ${Math.round(performance.now() - restored)} ms after restore`)
  })
})
