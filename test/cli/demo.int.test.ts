import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, test } from 'node:test'
import { NODE_BIN, REPO_ROOT, runBridge } from '../helpers/bridge-process.ts'

/** The demo prints a fresh admin token and runs on an in-memory database: nothing here is a real secret. */
const DEMO_ENV = { NO_COLOR: '1' }
const DEMO_TIMEOUT_MS = 60_000

/** The `events` column of a metric's row in the summary table. */
function storedCount(stdout: string, metric: string): number {
  const match = new RegExp(`^\\s+${metric}\\s+([\\d,]+)\\s`, 'm').exec(stdout)
  return match?.[1] === undefined ? 0 : Number(match[1].replaceAll(',', ''))
}

function total(stdout: string, name: string): number {
  const match = new RegExp(`totals:.*\\b${name} ([\\d,]+)`).exec(stdout)
  return match?.[1] === undefined ? Number.NaN : Number(match[1].replaceAll(',', ''))
}

describe('bridge demo', { timeout: 2 * DEMO_TIMEOUT_MS }, () => {
  test('runs the bridge, the iPhone, Oura and WHOOP simulators, prints what was stored and exits 0', async () => {
    const startedAtMs = performance.now()
    const result = await runBridge(['demo', '--days', '1'], DEMO_ENV)
    const elapsedMs = performance.now() - startedAtMs
    assert.equal(result.code, 0, `exit ${result.code ?? result.signal}\n${result.stdout}\n${result.stderr}`)
    assert.ok(elapsedMs < DEMO_TIMEOUT_MS)
    const { stdout } = result

    assert.ok(storedCount(stdout, 'heart_rate') > 200, 'heart rate every few minutes for a day')
    for (const metric of ['deep_sleep_minutes', 'rem_sleep_minutes', 'light_sleep_minutes', 'awake_minutes',
      'hrv_sdnn', 'resting_heart_rate', 'spo2', 'steps', 'active_calories', 'distance_meters']) {
      assert.ok(storedCount(stdout, metric) > 0, `${metric} stored`)
    }
    assert.match(stdout, /Sleep per night/)
    assert.ok(total(stdout, 'accepted') > 0)
    assert.ok(total(stdout, 'rejected') > 0, 'the deliberately broken samples are rejected')
    assert.ok(total(stdout, 'duplicates') > 0, 'the re-upload is recognized')
    assert.equal(total(stdout, 'deleted'), 1)
    assert.match(stdout, /BB_SAMPLE_OUT_OF_RANGE ×\d/)
    assert.match(stdout, /every answer matched what the simulator expected/)

    // Oura through the real path: OAuth connect, a backfill by the worker pool, then signed live webhooks.
    assert.match(stdout, /^ {2}Oura: [\d,]+ events in \d+ metrics$/m)
    for (const metric of ['hrv_rmssd', 'recovery_score', 'sleep_score', 'activity_score', 'total_sleep_minutes', 'temperature_deviation']) {
      assert.ok(storedCount(stdout, metric) > 0, `${metric} stored from Oura`)
    }
    assert.match(stdout, /connected Oura through OAuth/)
    assert.match(stdout, /backfill of 1 day: \d+ documents/)
    assert.match(stdout, /delivered twice with the same event_time .*: the second answered 200 "duplicate"/)
    assert.match(stdout, /delete of the sleep period ending \d{4}-\d{2}-\d{2} .*: its events removed/)
    assert.match(stdout, /revised at Oura on .*: readiness \d+ → \d+/)
    assert.match(stdout, /receipts: [^\n]*\bbackfill\b[^\n]*; \d+ done$/m, 'every Oura receipt worked off')

    // WHOOP the same way, for the same user: OAuth connect, backfill, then signed webhooks checked one by one.
    assert.match(stdout, /^ {2}WHOOP: [\d,]+ events in \d+ metrics$/m)
    for (const metric of ['strain', 'sleep_performance']) assert.ok(storedCount(stdout, metric) > 0, `${metric} stored from WHOOP`)
    assert.match(stdout, /connected WHOOP through OAuth/)
    assert.match(stdout, /backfill of 1 day: 1 sleep, 1 recovery, \d+ workouts?, 1 cycle, fetched by the worker pool in \d+ WHOOP API requests/)
    assert.match(stdout, /sleep\.updated while PENDING_SCORE stored nothing; once SCORED, sleep\.updated \+ recovery\.updated stored its sleep/)
    assert.match(stdout, /delivered twice with the same trace_id .*: the second answered 200 "duplicate"/)
    assert.match(stdout, /workout\.updated for the \w+ of \d{4}-\d{2}-\d{2}, scored live: its heart rate, energy and distance stored/)
    assert.match(stdout, /workout\.deleted for .*: its events removed/)
    const receiptLines = [...stdout.matchAll(/^ {4}receipts: [^\n]*\bbackfill\b[^\n]*; (\d+) done$/gm)]
    assert.equal(receiptLines.length, 2, 'every Oura and every WHOOP receipt worked off')
    assert.match(stdout, /'http:\/\/127\.0\.0\.1:\d+\/v1\/users\/demo-user\/events\?source=whoop&metric=recovery_score&limit=5'/)
    assert.match(stdout, /curl -s -H 'authorization: Bearer demo_[\w-]{32,}' 'http:\/\/127\.0\.0\.1:\d+\/v1\/users\/demo-user\/events\?metric=heart_rate&limit=5'/)
    assert.ok(!stdout.includes('\u001b['), 'no terminal control sequences when stdout is not a terminal')
  })

  test('--keep-running serves the data it printed until SIGTERM, then stops with exit 0', async (t) => {
    const child = spawn(NODE_BIN, ['src/main.ts', 'demo', '--days', '1', '--keep-running'], {
      cwd: REPO_ROOT, env: { PATH: process.env.PATH, ...DEMO_ENV }, stdio: ['ignore', 'pipe', 'pipe'],
      timeout: DEMO_TIMEOUT_MS, killSignal: 'SIGKILL'
    })
    const exited = new Promise<number | null>((resolve) => { child.once('close', (code) => { resolve(code) }) })
    t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8')
        if (stdout.includes('press Ctrl-C to stop')) resolve()
      })
      void exited.then((code) => { reject(new Error(`demo exited ${code} before serving\n${stdout}\n${stderr}`)) })
    })

    const match = /curl -s -H 'authorization: Bearer ([^']+)' '([^']+\/latest)'/.exec(stdout)
    assert.ok(match?.[1] !== undefined && match[2] !== undefined, stdout)
    const response = await fetch(match[2], { headers: { authorization: `Bearer ${match[1]}` } })
    assert.equal(response.status, 200)
    const latest = await response.json() as { data: Record<string, { value: number, unit: string }> }
    assert.equal(latest.data.heart_rate?.unit, 'bpm')
    assert.ok(latest.data.deep_sleep_minutes !== undefined)
    assert.equal(latest.data.recovery_score?.unit, 'score', 'Oura readiness is served too')
    assert.equal(latest.data.strain?.unit, 'strain', 'and WHOOP day strain')

    child.kill('SIGTERM')
    assert.equal(await exited, 0, `${stdout}\n${stderr}`)
  })
})
