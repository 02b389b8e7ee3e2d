/**
 * The Node flags every bridge process runs with as deployed (bin/node-flags, which bin/bridge reads too).
 * Benchmarks start their bridge processes with these first; flags given on a benchmark's command line come
 * after them and so override them.
 */
import { readFileSync } from 'node:fs'

export const DEPLOYED_NODE_FLAGS: readonly string[] = readFileSync(new URL('../../bin/node-flags', import.meta.url), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
