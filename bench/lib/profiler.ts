/**
 * The V8 CPU profiler of a benchmark's child process, only around the measured phase (like --cpu-prof without
 * start-up and warm-up). Active with BENCH_PROFILE=1: it answers `profile-start` and `profile-stop { file }`,
 * writing the .cpuprofile to `file`. Sampling every 200 µs: requests take tens of µs, the default 1 ms would see
 * few of them.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'

export interface ChildProfiler {
  /** Handles a profiler command and returns true; returns false for any other command (or when inactive). */
  handle(command: { type?: string, file?: string }, reply: (message: Record<string, unknown>) => void): Promise<boolean>
}

export async function startChildProfiler(): Promise<ChildProfiler> {
  const session = process.env.BENCH_PROFILE === '1' ? new Session() : undefined
  if (session !== undefined) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
  }
  return {
    async handle(command, reply) {
      if (session === undefined) return false
      if (command.type === 'profile-start') {
        await session.post('Profiler.start')
        reply({ type: 'profile-started' })
        return true
      }
      if (command.type === 'profile-stop' && command.file !== undefined) {
        const { profile } = await session.post('Profiler.stop')
        writeFileSync(command.file, JSON.stringify(profile))
        reply({ type: 'profile-written', file: command.file })
        return true
      }
      return false
    }
  }
}
