import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { migrate } from '../../src/storage/migrate.ts'
import { createPostgresDatabase } from '../../src/storage/postgres.ts'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { assertNothingLost } from '../helpers/checker.ts'
import {
  assertOutcomesWithin, describeRun, outcomesSince, probeReadiness, probeUpload, readinessBecomes, startFaultRig,
  watchServerRequests, watchUploadsInFlight, type FaultRig
} from '../helpers/fault-rig.ts'
import { startPrivatePostgres } from '../helpers/private-postgres.ts'
import { createScratchDatabase, deferCleanup, requirePostgres } from '../helpers/services.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'

/**
 * PostgreSQL faults under a steady HealthKit load (reliability-security §7.2 F1, F2, F7 on the database link):
 * the bridge answers 503 + Retry-After within its deadline while the record is unreachable, never 2xx without a
 * commit, never 500, and recovers by itself; the checker then finds nothing lost, duplicated or torn.
 */

/** DB_STATEMENT_TIMEOUT_MS of these tests: small, so a hung database costs seconds, not the default 5. */
const DEADLINE_MS = 1500
/** Client-side deadline: the statement deadline plus the adapter's margin (src/storage/postgres.ts). */
const CLIENT_DEADLINE_MS = DEADLINE_MS + 500
/**
 * The longest a request may take while the database hangs: a wait for a connection (DEADLINE_MS) and one
 * statement (CLIENT_DEADLINE_MS), plus slack for a 2-core machine. Longer counts as a hang (error:TimeoutError).
 */
const REQUEST_BOUND_MS = DEADLINE_MS + CLIENT_DEADLINE_MS + 1500
/**
 * F1's load gives up after this long: a hang. Its outage window is held to the bound above server-side; right
 * after the restart (the server replaying its WAL, a slow 2-core host running other suites) an upload of several
 * statements may take longer without anything hanging — seen once: 29 uploads past 4.5 s after the restart, none
 * during the outage.
 */
const HANG_MS = 3 * REQUEST_BOUND_MS
const POOL_SIZE = 10
const ENV = { DB_STATEMENT_TIMEOUT_MS: String(DEADLINE_MS), DB_POOL_SIZE: String(POOL_SIZE) }
/** A regression that hangs (a request, or the pool's shutdown) fails the test instead of stalling the suite. */
const TEST_TIMEOUT = { timeout: 120_000 }
/** What the load may see at all: stored, or told to come back. */
const ALLOWED = ['200', '503']

let probeIndex = 0
/** A valid one-sample upload with a uuid of its own (the probes' user is outside the checker's history). */
const probeBody = (): string => batch([heartRate(probeIndex, { uuid: `probe-${process.pid}-${probeIndex++}` })])

async function finish(t: { diagnostic(message: string): void }, rig: FaultRig, label: string, faultMs: number): Promise<void> {
  const stats = await rig.load.stop(30_000)
  assertOutcomesWithin(stats.outcomes, ALLOWED, `${label}, whole run`)
  const result = await rig.checker.reconcile(rig.harness.app.db)
  assertNothingLost(result)
  t.diagnostic(`${label}: fault ${(faultMs / 1000).toFixed(1)} s; ${describeRun(stats, result.acknowledged)}; ` +
    `stored ${result.stored}, lost ${result.lost.length}, duplicated ${result.duplicated.length}, torn ${result.torn.length}`)
}

describe('PostgreSQL faults under load', () => {
  test('F1 crash (pg_ctl stop -m immediate) and restart 5 s later: 503 + Retry-After meanwhile, no 2xx, recovery without restart, nothing lost', TEST_TIMEOUT, async (t) => {
    if (!(await requirePostgres(t))) return
    const cluster = await startPrivatePostgres(t)
    if (cluster === undefined) return
    const rig = await startFaultRig(t, 'f1', { env: { ...ENV, DATABASE_URL: cluster.url }, requestTimeoutMs: HANG_MS })
    if (rig === undefined) return
    const { load, address } = rig
    await load.waitForAcknowledged(30)

    const requests = watchServerRequests(rig.harness.app.http.server)
    const faultStarted = performance.now()
    await cluster.stop('immediate')
    // Responses already on their way when the server died may still arrive; from here on nothing can commit.
    await sleep(300)
    const outageBefore = { ...load.stats.outcomes }
    const probe = await probeUpload(address, rig.probeHeaders, probeBody())
    assert.equal(probe.status, 503)
    assert.equal(probe.code, 'BB_STORAGE_UNAVAILABLE')
    assert.ok(Number(probe.retryAfter) > 0, 'Retry-After is set')
    const ready = await probeReadiness(address)
    assert.deepEqual([ready.status, ready.database], [503, 'down'])
    await sleep(Math.max(0, 5000 - (performance.now() - faultStarted)))
    const during = outcomesSince(load.stats, outageBefore)
    await cluster.start()
    const faultMs = performance.now() - faultStarted
    requests.stop()
    assert.ok(requests.longestMs <= REQUEST_BOUND_MS, `the longest request took ${requests.longestMs} ms`)
    assert.equal(during['200'] ?? 0, 0, `no upload is acknowledged while PostgreSQL is down: ${JSON.stringify(during)}`)
    assert.ok((during['503'] ?? 0) > 0, `uploads were answered 503 meanwhile: ${JSON.stringify(during)}`)
    assertOutcomesWithin(during, ['503'], 'during the outage')

    await load.waitForAcknowledged(60, 20_000)
    const after = await readinessBecomes(address, (readiness) => readiness.status === 200)
    assert.equal(after.database, 'up')
    t.diagnostic(`F1 during the outage: ${JSON.stringify(during)}; probe 503 in ${probe.ms} ms (Retry-After ${probe.retryAfter}); /readyz 503 in ${ready.ms} ms; longest request ${requests.longestMs} ms`)
    await finish(t, rig, 'F1 crash + restart', faultMs)
  })

  test('F2 hang (SIGSTOP of the server for 8 s): requests fail at the deadline with 503, in-flight stays bounded, recovery after SIGCONT, nothing lost', TEST_TIMEOUT, async (t) => {
    if (!(await requirePostgres(t))) return
    const cluster = await startPrivatePostgres(t)
    if (cluster === undefined) return
    const rig = await startFaultRig(t, 'f2', { env: { ...ENV, DATABASE_URL: cluster.url }, requestTimeoutMs: REQUEST_BOUND_MS })
    if (rig === undefined) return
    // Resumed before the app stops (cleanup runs last-in, first-out), even when an assertion failed.
    deferCleanup(t, () => cluster.resume())
    const { load, address } = rig
    await load.waitForAcknowledged(30)

    const inFlight = watchUploadsInFlight(address)
    const requests = watchServerRequests(rig.harness.app.http.server)
    const before = { ...load.stats.outcomes }
    const faultStarted = performance.now()
    cluster.pause()
    const [probe, ready] = await Promise.all([probeUpload(address, rig.probeHeaders, probeBody()), probeReadiness(address)])
    await sleep(Math.max(0, 8000 - (performance.now() - faultStarted)))
    cluster.resume()
    const faultMs = performance.now() - faultStarted
    await inFlight.stop()
    requests.stop()
    const during = outcomesSince(load.stats, before)

    assert.equal(probe.status, 503)
    assert.ok(probe.code === 'BB_STORAGE_UNAVAILABLE' || probe.code === 'BB_OVERLOADED', `probe code ${probe.code}`)
    assert.ok(probe.ms <= REQUEST_BOUND_MS, `the probe upload answered in ${probe.ms} ms`)
    assert.deepEqual([ready.status, ready.database], [503, 'down'])
    assert.ok(ready.ms <= REQUEST_BOUND_MS, `/readyz answered in ${ready.ms} ms`)
    assert.ok((during['503'] ?? 0) > 0, `uploads were answered 503 during the hang: ${JSON.stringify(during)}`)
    assertOutcomesWithin(during, ALLOWED, 'during the hang')
    assert.ok(inFlight.max <= 2 * POOL_SIZE, `uploads in flight peaked at ${inFlight.max} (bound ${2 * POOL_SIZE})`)
    // The server's queue is bounded by time: no request waited past the deadline, so none piled up behind it.
    assert.ok(requests.longestMs <= REQUEST_BOUND_MS, `the longest request took ${requests.longestMs} ms`)

    await load.waitForAcknowledged(60, 20_000)
    await readinessBecomes(address, (readiness) => readiness.status === 200)
    t.diagnostic(`F2 during the hang: ${JSON.stringify(during)}; probe ${probe.status} ${probe.code} in ${probe.ms} ms; ` +
      `/readyz ${ready.status} in ${ready.ms} ms; longest request ${requests.longestMs} ms, requests in progress peaked at ${requests.peak}, ` +
      `uploads past authentication (healthkit_uploads_in_flight) peaked at ${inFlight.max} (shedding bound ${2 * POOL_SIZE})`)
    await finish(t, rig, 'F2 SIGSTOP + SIGCONT', faultMs)
  })

  test('F7 database link through a fault proxy (latency 2 s, RST, blackhole): deadlines hold, no 500, /readyz follows, recovery after each restore, nothing lost', TEST_TIMEOUT, async (t) => {
    if (!(await requirePostgres(t))) return
    const scratch = new URL(await createScratchDatabase(t))
    const proxy = await startTcpProxy(t, scratch.hostname, Number(scratch.port || 5432))
    scratch.port = String(proxy.port)
    const rig = await startFaultRig(t, 'f7-db', { env: { ...ENV, DATABASE_URL: scratch.toString() }, requestTimeoutMs: REQUEST_BOUND_MS })
    if (rig === undefined) return
    const { load, address } = rig
    await load.waitForAcknowledged(30)

    const phases: Array<[string, () => void]> = [
      ['latency 2 s', () => proxy.latency(2000)],
      ['RST', () => proxy.cut()],
      ['blackhole', () => proxy.blackhole()]
    ]
    const figures: string[] = []
    let faultMs = 0
    const requests = watchServerRequests(rig.harness.app.http.server)
    for (const [name, inject] of phases) {
      const before = { ...load.stats.outcomes }
      const started = performance.now()
      inject()
      const probing = probeUpload(address, rig.probeHeaders, probeBody())
      const ready = await probeReadiness(address)
      const probe = await probing
      await sleep(Math.max(0, 3000 - (performance.now() - started)))
      proxy.restore()
      faultMs += performance.now() - started
      const during = outcomesSince(load.stats, before)
      assert.equal(probe.status, 503, `${name}: probe answered ${probe.status}`)
      assert.ok(probe.ms <= REQUEST_BOUND_MS, `${name}: the probe upload answered in ${probe.ms} ms`)
      assert.deepEqual([ready.status, ready.database], [503, 'down'], `${name}: /readyz`)
      assert.ok(ready.ms <= REQUEST_BOUND_MS, `${name}: /readyz answered in ${ready.ms} ms`)
      assert.ok((during['503'] ?? 0) > 0, `${name}: uploads were answered 503: ${JSON.stringify(during)}`)
      assertOutcomesWithin(during, ALLOWED, name)

      const recovering = performance.now()
      await load.waitForAcknowledged(30, 20_000)
      await readinessBecomes(address, (readiness) => readiness.status === 200 && readiness.database === 'up')
      figures.push(`${name}: ${JSON.stringify(during)}, probe ${probe.code} in ${probe.ms} ms, /readyz 503 in ${ready.ms} ms, ` +
        `30 acks ${Math.round(performance.now() - recovering)} ms after restore`)
    }
    requests.stop()
    assert.ok(proxy.accepted > 0)
    assert.ok(requests.longestMs <= REQUEST_BOUND_MS, `the longest request took ${requests.longestMs} ms`)
    t.diagnostic(`F7 database link: ${figures.join('; ')}; longest request ${requests.longestMs} ms`)
    await finish(t, rig, 'F7 database link', faultMs)
  })
})

describe('pg adapter deadlines (DB_STATEMENT_TIMEOUT_MS)', () => {
  const STATEMENT_MS = 300
  /** Statement deadline + the adapter's 500 ms margin + slack; a ROLLBACK queued behind a hung statement would double it. */
  const HUNG_BOUND_MS = STATEMENT_MS + 500 + 400

  const errorCode = async (work: Promise<unknown>): Promise<string> => {
    try {
      await work
    } catch (error) {
      return (error as { code?: string }).code ?? String(error)
    }
    return 'resolved'
  }

  test('a hung link fails a query and a transaction at the client-side deadline, and the hung client is destroyed, not pooled', TEST_TIMEOUT, async (t) => {
    if (!(await requirePostgres(t))) return
    const scratch = new URL(await createScratchDatabase(t))
    const proxy = await startTcpProxy(t, scratch.hostname, Number(scratch.port || 5432))
    scratch.port = String(proxy.port)
    // One connection: a hung client handed back to the pool would be the one the next query gets.
    const db = createPostgresDatabase({ url: scratch.toString(), poolSize: 1, statementTimeoutMs: STATEMENT_MS, connectTimeoutMs: STATEMENT_MS })
    deferCleanup(t, () => db.close())
    await db.query('SELECT 1')

    proxy.blackhole()
    let started = performance.now()
    assert.equal(await errorCode(db.query('SELECT 1')), 'BB_STORAGE_UNAVAILABLE')
    const queryMs = performance.now() - started
    proxy.restore()
    assert.ok(queryMs <= HUNG_BOUND_MS, `query gave up after ${Math.round(queryMs)} ms`)
    assert.deepEqual((await db.query<{ n: number }>('SELECT 2 AS n')).rows, [{ n: 2 }])

    started = performance.now()
    const transaction = db.transaction(async (tx) => {
      await tx.query('SELECT 1')
      proxy.blackhole()
      await tx.query('SELECT 2')
    })
    assert.equal(await errorCode(transaction), 'BB_STORAGE_UNAVAILABLE')
    const transactionMs = performance.now() - started
    proxy.restore()
    assert.ok(transactionMs <= HUNG_BOUND_MS, `the transaction gave up after ${Math.round(transactionMs)} ms (no ROLLBACK behind the hung statement)`)
    assert.deepEqual((await db.transaction((tx) => tx.query<{ n: number }>('SELECT 3 AS n'))).rows, [{ n: 3 }])
    t.diagnostic(`hung link: query failed after ${Math.round(queryMs)} ms, transaction after ${Math.round(transactionMs)} ms (deadline ${STATEMENT_MS} ms + 500 ms)`)
  })

  test('PostgreSQL cancels a slow statement at the deadline (503 class), the connection stays usable, and migrations are exempt', TEST_TIMEOUT, async (t) => {
    if (!(await requirePostgres(t))) return
    const url = await createScratchDatabase(t)
    const db = createPostgresDatabase({ url, poolSize: 1, statementTimeoutMs: STATEMENT_MS })
    deferCleanup(t, () => db.close())
    const cancelled = await errorCode(db.query('SELECT pg_sleep(1)'))
    assert.equal(cancelled, 'BB_STORAGE_UNAVAILABLE')
    assert.deepEqual((await db.query<{ n: number }>('SELECT 1 AS n')).rows, [{ n: 1 }])
    assert.deepEqual((await db.transaction((tx) => tx.query<{ n: number }>('SELECT 1 AS n FROM pg_sleep(0.6)'), { statementTimeoutMs: 0 })).rows, [{ n: 1 }])

    // A migration waits behind another node's (here: a session holding the migration lock for 1 s) longer
    // than the deadline, and still applies.
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    deferCleanup(t, () => holder.end())
    await holder.query('SELECT pg_advisory_lock(7301944211)')
    const migrating = migrate(db)
    await sleep(1000)
    await holder.query('SELECT pg_advisory_unlock(7301944211)')
    assert.ok((await migrating).length > 0, 'the migrations were applied')
  })
})
