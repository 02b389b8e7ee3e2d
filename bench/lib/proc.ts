/**
 * CPU accounting from /proc, shared by the benchmarks: per process, per PostgreSQL backend of a database, and
 * for the whole machine. Linux only.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type pg from 'pg'

export const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** User + system CPU time of a process, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
}

/**
 * CPU of the PostgreSQL backends serving one database, in milliseconds, by backend pid. Backends that exit
 * between two readings lose their share; pools keep theirs open during a measurement, so that is rare.
 */
export async function backendCpu(admin: pg.Client, database: string): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database])
  const cpu = new Map<number, number>()
  for (const { pid } of rows) {
    try {
      cpu.set(pid, cpuMs(pid))
    } catch {
      // exited since the query
    }
  }
  return cpu
}

export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0)
  return total
}

/** CPU time all cores spent busy since boot (user, nice, system, irq, softirq, steal), in milliseconds. */
export function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
  return (user + nice + system + irq + softirq + steal) * 1000 / CLOCK_TICKS
}

/** CPU time of this process, in milliseconds. */
export const ownCpuMs = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/** The 1-minute load average. */
export const loadAverage = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])

export interface QuietReading {
  /** Whether a window below the limit was seen before the timeout. */
  quiet: boolean
  /** Cores the machine was busy in the last window. */
  busyCores: number
  waitedMs: number
}

/**
 * Waits until the whole machine is busy for less than `maxCores` during one `windowMs` window, or until
 * `timeoutMs` have passed: lets a benchmark start a phase after other work (another user's tests, a checkpoint,
 * autovacuum after a burst) has died down instead of measuring it.
 */
export async function waitForQuietMachine(maxCores: number, windowMs: number, timeoutMs: number): Promise<QuietReading> {
  const started = performance.now()
  for (;;) {
    const before = machineBusyMs()
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    const busyCores = (machineBusyMs() - before) / windowMs
    const waitedMs = performance.now() - started
    if (busyCores < maxCores) return { quiet: true, busyCores, waitedMs }
    if (waitedMs >= timeoutMs) return { quiet: false, busyCores, waitedMs }
  }
}
