/**
 * The bridge under soak, as a forked child (bench/lib/child.ts): the real app (createApp with
 * loadConfig(process.env) and listen(), what `bridge serve` runs) plus a sampler the parent reads over IPC, so
 * memory, CPU and event-loop lag are measured inside the bridge process without an HTTP scrape competing with
 * the load.
 *
 * Answers `{ type: 'sample', resetLag }` with a `BridgeSample`. Event-loop lag comes from
 * perf_hooks.monitorEventLoopDelay: it records the interval between two runs of a LAG_RESOLUTION_MS timer, so
 * the lag is that interval minus the resolution (an idle loop reads ~0–3 ms). `resetLag` starts a new lag window
 * (the parent resets at each report row; memory samples in between leave it alone). Stops on 'stop', SIGTERM or
 * when the parent goes away.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8'
import { createApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'

/** Timer period of the lag monitor, in ms; prom-client's default metrics use the same. */
const LAG_RESOLUTION_MS = 10
const NS_PER_MS = 1e6

export interface BridgeSample {
  type: 'sample'
  /** process.cpuUsage() since start, user + system, in µs. */
  cpuUs: number
  rssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  /** Reserved size of V8's young generation (new space) and old space, bytes: where heapTotal goes. */
  newSpaceBytes: number
  oldSpaceBytes: number
  /** Memory of C++ objects bound to JS (Buffers, sockets) and of ArrayBuffers, bytes. */
  externalBytes: number
  arrayBuffersBytes: number
  /** Peak RSS since start (getrusage ru_maxrss), in KiB. */
  maxRssKb: number
  /** Event-loop lag since the last reset, in ms: p50, p99, max, and how many timer runs it is taken over. */
  lagP50Ms: number
  lagP99Ms: number
  lagMaxMs: number
  lagSamples: number
  /**
   * Heap used right after the last major (mark-compact) GC, in bytes: the live heap, free of the garbage that
   * heapUsedBytes includes until V8 next collects (it lets the heap grow a long way first). NaN before the first.
   */
  heapAfterMajorGcBytes: number
  /** Since the last lag reset: major GCs and the time all GCs paused the loop, in ms. */
  majorGcs: number
  gcPauseMs: number
  /** performance.eventLoopUtilization() since start: busy and idle time of the loop, in ms. */
  eluActiveMs: number
  eluIdleMs: number
}

const prefix = process.env.BENCH_CACHE_PREFIX
const app = await createApp(loadConfig(process.env), prefix === undefined ? {} : { cacheKeyPrefix: prefix })
const address = await app.listen()

const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })
lag.enable()
process.send?.({ type: 'listening', address })

let heapAfterMajorGcBytes = Number.NaN
let majorGcs = 0
let gcPauseMs = 0
// Entries arrive in a batch shortly after the GC: heapUsed then is the live heap plus the little allocated since.
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
    gcPauseMs += entry.duration
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      majorGcs++
      heapAfterMajorGcBytes = getHeapStatistics().used_heap_size
    }
  }
})
gcObserver.observe({ entryTypes: ['gc'] })

const lagMs = (ns: number): number => Math.max(0, ns / NS_PER_MS - LAG_RESOLUTION_MS)

function sample(resetLag: boolean): BridgeSample {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  const elu = performance.eventLoopUtilization()
  const spaces = getHeapSpaceStatistics()
  const counted = lag.count
  const reading: BridgeSample = {
    type: 'sample',
    cpuUs: cpu.user + cpu.system,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    newSpaceBytes: spaces.find((space) => space.space_name === 'new_space')?.space_size ?? Number.NaN,
    oldSpaceBytes: spaces.find((space) => space.space_name === 'old_space')?.space_size ?? Number.NaN,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    maxRssKb: process.resourceUsage().maxRSS,
    // An empty histogram reports NaN/huge values: say 0 with no samples instead.
    lagP50Ms: counted === 0 ? 0 : lagMs(lag.percentile(50)),
    lagP99Ms: counted === 0 ? 0 : lagMs(lag.percentile(99)),
    lagMaxMs: counted === 0 ? 0 : lagMs(lag.max),
    lagSamples: counted,
    heapAfterMajorGcBytes, majorGcs, gcPauseMs,
    eluActiveMs: elu.active,
    eluIdleMs: elu.idle
  }
  if (resetLag) {
    lag.reset()
    majorGcs = 0
    gcPauseMs = 0
  }
  return reading
}

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  lag.disable()
  gcObserver.disconnect()
  await app.stop()
  process.exit(0)
}

process.on('SIGTERM', () => void stop())
process.on('disconnect', () => void stop())
process.on('message', (message: unknown) => {
  if (message === 'stop') return void stop()
  const command = message as { type?: string, resetLag?: boolean }
  if (command.type === 'sample') process.send?.(sample(command.resetLag === true))
})
