import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { batch, heartRate } from '../fixtures/healthkit/samples.ts'
import { BASE_TEST_ENV } from '../helpers/app.ts'
import { startServe, type ServeProcess } from '../helpers/bridge-process.ts'
import { CANARY, recordCanary } from '../helpers/canaries.ts'
import { eventOutboxCounts } from '../helpers/fleet.ts'
import { createScratchDatabase, requirePostgres } from '../helpers/services.ts'

const LOOPS = 4
const SAMPLES_PER_BATCH = 200
/** Acknowledged uploads before SIGTERM, so the signal lands in a running stream. */
const ACKS_BEFORE_SIGNAL = 20
/** A loop still getting answers after this many uploads means the server never stopped accepting. */
const MAX_BATCHES_PER_LOOP = 5000

interface SentBatch {
  id: string
  uuids: string[]
  /** HTTP status, when one arrived. */
  status?: number
  accepted?: number
  /** Why no complete answer arrived (connection refused or reset). */
  error?: string
}

async function startOnPostgres(t: TestContext, logName: string): Promise<{ server: ServeProcess, url: string } | undefined> {
  if (!(await requirePostgres(t))) return undefined
  const url = await createScratchDatabase(t)
  const server = await startServe(t, { ...BASE_TEST_ENV, DATABASE_URL: url, LOG_LEVEL: 'info' }, logName)
  return { server, url }
}

/** Issues a device token through the running server's admin API. */
async function deviceToken(server: ServeProcess, userId: string): Promise<string> {
  const response = await fetch(`${server.address}/v1/users/${encodeURIComponent(userId)}/devices`, {
    method: 'POST', headers: { authorization: `Bearer ${CANARY.adminToken}` }
  })
  assert.equal(response.status, 201)
  const { token } = await response.json() as { token: string }
  recordCanary(token)
  return token
}

interface HeldUpload {
  /** Sends the rest of the body; resolves with the response. */
  finish(): Promise<{ status: number, body: string }>
  request: ClientRequest
}

/**
 * Starts an upload and holds its body half-sent. Resolves once the server has parsed the request head (it
 * answered `100 Continue`), so the connection counts as busy, not idle, when the stop begins.
 */
async function holdUpload(server: ServeProcess, token: string, uuidPrefix: string): Promise<HeldUpload> {
  const body = batch(Array.from({ length: 10 }, (_, i) => heartRate(i, { uuid: `${uuidPrefix}-${i}` })))
  const half = Math.floor(body.length / 2)
  const req = request(`${server.address}/v1/healthkit/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', expect: '100-continue' },
    // A kept-alive connection would stay open after the answer and hold up the stop until its idle timeout.
    agent: false
  })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  // Without a listener the rejection of an abandoned upload would be unhandled.
  response.catch(() => {})
  await Promise.race([
    once(req, 'continue'),
    response.then((res) => { throw new Error(`the server answered ${res.statusCode} instead of 100 Continue`) })
  ])
  req.write(body.slice(0, half))
  return {
    request: req,
    async finish() {
      req.end(body.slice(half))
      const res = await response
      const chunks: Buffer[] = []
      for await (const chunk of res) chunks.push(chunk as Buffer)
      return { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }
    }
  }
}

async function storedCounts(url: string): Promise<{ byUuid: Set<string>, events: number, outbox: number, unmatched: number }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ source_record_id: string }>('SELECT source_record_id FROM events')
    const row = await eventOutboxCounts(client)
    return { byUuid: new Set(rows.map((r) => r.source_record_id)), ...row }
  } finally {
    await client.end()
  }
}

describe('bridge serve: signals (real process)', { timeout: 120_000 }, () => {
  test('SIGTERM during a stream of uploads: exit 0, acknowledged uploads stored whole, nothing else half-stored', async (t) => {
    const started = await startOnPostgres(t, 'sigterm-stream')
    if (started === undefined) return
    const { server, url } = started
    const token = await deviceToken(server, CANARY.userId)
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }

    const sent: SentBatch[] = []
    let acknowledged = 0
    let signalled = false
    const sendSignalWhenDue = (): void => {
      if (signalled || acknowledged < ACKS_BEFORE_SIGNAL) return
      signalled = true
      server.child.kill('SIGTERM')
    }

    const uploadLoop = async (loop: number): Promise<void> => {
      for (let n = 0; n < MAX_BATCHES_PER_LOOP; n++) {
        const id = `${loop}-${n}`
        const samples = Array.from({ length: SAMPLES_PER_BATCH }, (_, i) => heartRate(i, { uuid: `SIGTERM-${id}-${i}` }))
        const entry: SentBatch = { id, uuids: samples.map((s) => s.uuid) }
        sent.push(entry)
        try {
          const response = await fetch(`${server.address}/v1/healthkit/batch`, { method: 'POST', headers, body: batch(samples) })
          entry.status = response.status
          const body = await response.json() as { accepted: number }
          if (response.status === 200) {
            entry.accepted = body.accepted
            acknowledged++
            sendSignalWhenDue()
          }
        } catch (error) {
          entry.error = (error as Error).message
          // Connections fail only once the server has stopped listening.
          assert.ok(signalled, `upload ${id} failed before SIGTERM: ${entry.error}`)
          return
        }
      }
      throw new Error(`loop ${loop} sent ${MAX_BATCHES_PER_LOOP} uploads without the server ever going away`)
    }

    await Promise.all(Array.from({ length: LOOPS }, (_, loop) => uploadLoop(loop)))
    const exit = await server.exited
    assert.deepEqual(exit, { code: 0, signal: null }, 'a graceful stop ends with exit code 0')
    assert.ok(server.logs.some((line) => line.msg === 'graceful stop finished'))
    assert.deepEqual(server.logs.filter((line) => line.level >= 50).map((line) => line.msg), [], 'no errors logged while stopping')

    const statuses = new Set(sent.flatMap((s) => (s.status === undefined ? [] : [s.status])))
    assert.ok([...statuses].every((status) => status === 200 || status === 503), `only 200 and 503 answers, got ${[...statuses].join(', ')}`)
    assert.ok(sent.filter((s) => s.status === 200).every((s) => s.accepted === SAMPLES_PER_BATCH), 'every acknowledged upload accepted all its samples')

    const stored = await storedCounts(url)
    const sentUuids = new Set(sent.flatMap((s) => s.uuids))
    assert.ok(stored.byUuid.size > 0)
    assert.deepEqual([...stored.byUuid].filter((uuid) => !sentUuids.has(uuid)), [], 'stored ⊆ sent')
    for (const upload of sent) {
      const kept = upload.uuids.filter((uuid) => stored.byUuid.has(uuid)).length
      if (upload.status === 200) {
        assert.equal(kept, SAMPLES_PER_BATCH, `acknowledged upload ${upload.id} is stored whole (acknowledged ⊆ stored)`)
      } else if (upload.status !== undefined) {
        assert.equal(kept, 0, `upload ${upload.id} answered ${upload.status} left ${kept} samples behind`)
      } else {
        // No answer: the upload either committed before the connection went, or not at all; never in part.
        assert.ok(kept === 0 || kept === SAMPLES_PER_BATCH, `unanswered upload ${upload.id} was stored in part (${kept})`)
      }
    }
    assert.ok(sent.filter((s) => s.status === 200).length >= ACKS_BEFORE_SIGNAL)
    assert.equal(stored.events, stored.byUuid.size, 'one event per sample uuid')
    assert.equal(stored.outbox, stored.events, 'one outbox row per stored event')
    assert.equal(stored.unmatched, 0, 'every event has exactly one upsert outbox row and every outbox row an event')
  })

  test('a repeated SIGTERM within a second is the same request: the in-flight upload completes, exit 0', async (t) => {
    const started = await startOnPostgres(t, 'sigterm-repeat')
    if (started === undefined) return
    const { server, url } = started
    const held = await holdUpload(server, await deviceToken(server, 'sigterm-repeat-user'), 'REPEAT')

    server.child.kill('SIGTERM')
    await server.waitForLog('graceful stop started')
    server.child.kill('SIGTERM')
    // Gives a forced exit, had the repeat caused one, the chance to happen before the upload finishes.
    await sleep(300)
    assert.ok(server.isRunning(), 'the repeated signal did not end the process')

    const response = await held.finish()
    assert.equal(response.status, 200, response.body)
    assert.equal((JSON.parse(response.body) as { accepted: number }).accepted, 10)
    assert.deepEqual(await server.exited, { code: 0, signal: null })
    assert.equal(server.logs.filter((line) => line.msg === 'graceful stop started').length, 1)
    assert.equal((await storedCounts(url)).events, 10)
  })

  test('a second SIGTERM after the repeat window forces exit 1 without waiting for open uploads', async (t) => {
    const started = await startOnPostgres(t, 'sigterm-forced')
    if (started === undefined) return
    const { server, url } = started
    const held = await holdUpload(server, await deviceToken(server, 'sigterm-forced-user'), 'FORCED')

    server.child.kill('SIGTERM')
    await server.waitForLog('graceful stop started')
    await sleep(1200)
    assert.ok(server.isRunning(), 'the graceful stop waits for the open upload')
    server.child.kill('SIGTERM')
    assert.deepEqual(await server.exited, { code: 1, signal: null })
    assert.ok(server.logs.some((line) => line.msg === 'second signal: exiting immediately'), 'the forced exit says so in the log')
    await assert.rejects(held.finish(), 'the open upload is cut off')
    assert.equal((await storedCounts(url)).events, 0, 'the cut-off upload stored nothing')
  })

  test('SIGINT (Ctrl-C) stops gracefully too: the in-flight upload completes, exit 0', async (t) => {
    // Embedded storage, as under `npm start` on a developer machine.
    const server = await startServe(t, { ...BASE_TEST_ENV, DATA_DIR: 'memory://', LOG_LEVEL: 'info' }, 'sigint')
    const held = await holdUpload(server, await deviceToken(server, 'sigint-user'), 'SIGINT')

    server.child.kill('SIGINT')
    const started = await server.waitForLog('graceful stop started')
    assert.equal(started.signal, 'SIGINT')
    const response = await held.finish()
    assert.equal(response.status, 200, response.body)
    assert.equal((JSON.parse(response.body) as { accepted: number }).accepted, 10)
    assert.deepEqual(await server.exited, { code: 0, signal: null })
    assert.ok(server.logs.some((line) => line.msg === 'graceful stop finished'))
    const afterStop = await fetch(`${server.address}/healthz`).then(() => 'answered', () => 'refused')
    assert.equal(afterStop, 'refused', 'nothing listens after the stop')
  })
})
