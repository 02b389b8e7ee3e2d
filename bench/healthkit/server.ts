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
import { createApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { startChildProfiler } from '../lib/profiler.ts'

const app = await createApp(loadConfig(process.env))
const address = await app.listen()
process.send?.({ type: 'listening', address })

const profiler = await startChildProfiler()

let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  await app.stop()
  process.exit(0)
}

async function onMessage(message: unknown): Promise<void> {
  if (message === 'stop') return stop()
  await profiler.handle(message as { type?: string, file?: string }, (reply) => process.send?.(reply))
}

process.on('SIGTERM', () => void stop())
process.on('message', (message) => void onMessage(message))
process.on('disconnect', () => void stop())
