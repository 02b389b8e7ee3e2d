/**
 * The system under test, run as a child process of the benchmark so its CPU and memory are its own: the real app
 * (createApp, real PostgreSQL from DATABASE_URL) listening on a real port. Configuration comes from the
 * environment, as in production. Reports its address over IPC; stops gracefully on 'stop', SIGTERM or when the
 * parent goes away.
 *
 * With BENCH_PROFILE=1 it also answers { type: 'profile-start' } and { type: 'profile-stop', file } by starting
 * and stopping the V8 CPU profiler (like --cpu-prof, but only around the measured phase: no startup, no warm-up)
 * and writing the .cpuprofile to `file`.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'

const app = await createApp(loadConfig(process.env))
const address = await app.listen()
process.send?.({ type: 'listening', address })

const session = process.env.BENCH_PROFILE === '1' ? new Session() : undefined
if (session !== undefined) {
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
}

let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  await app.stop()
  process.exit(0)
}

async function onMessage(message: unknown): Promise<void> {
  if (message === 'stop') return stop()
  const command = message as { type?: string, file?: string }
  if (session === undefined) return
  if (command.type === 'profile-start') {
    await session.post('Profiler.start')
    process.send?.({ type: 'profile-started' })
  } else if (command.type === 'profile-stop' && command.file !== undefined) {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(command.file, JSON.stringify(profile))
    process.send?.({ type: 'profile-written', file: command.file })
  }
}

process.on('SIGTERM', () => void stop())
process.on('message', (message) => void onMessage(message))
process.on('disconnect', () => void stop())
