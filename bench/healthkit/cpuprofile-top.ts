/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, by inclusive time, and self
 * time grouped by file / package. Idle time is reported separately and left out of the percentages.
 *
 *   node_modules/.bin/node bench/healthkit/cpuprofile-top.ts <file.cpuprofile> [--top 30]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } })
const file = positionals[0]
if (file === undefined) throw new Error('usage: cpuprofile-top.ts <file.cpuprofile> [--top N]')
const top = Number(values.top)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

// Each sample's time is the delta to the next sample (the last one gets the mean).
const selfUs = new Map<number, number>()
const mean = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length)
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i + 1] ?? mean
  const id = profile.samples[i]!
  selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
}

const ROOT = process.cwd()
function where(node: ProfileNode): string {
  const url = node.callFrame.url.replace(`file://${ROOT}/`, '')
  return url === '' ? '(native)' : `${url}:${node.callFrame.lineNumber + 1}`
}
function label(node: ProfileNode): string {
  return `${node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName} ${where(node)}`
}
function group(node: ProfileNode): string {
  const url = node.callFrame.url.replace(`file://${ROOT}/`, '')
  if (url === '') return node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(native builtins)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return `npm:${pkg[1]}`
  if (url.startsWith('node:')) return url
  return url
}

const IDLE = new Set(['(idle)'])
let totalUs = 0
let idleUs = 0
const selfByLabel = new Map<string, number>()
const selfByGroup = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)!
  if (IDLE.has(node.callFrame.functionName)) {
    idleUs += us
    continue
  }
  totalUs += us
  selfByLabel.set(label(node), (selfByLabel.get(label(node)) ?? 0) + us)
  selfByGroup.set(group(node), (selfByGroup.get(group(node)) ?? 0) + us)
}

// Inclusive time: each sample counts once for every distinct function on its stack.
const inclusive = new Map<string, number>()
for (const [id, us] of selfUs) {
  if (IDLE.has(byId.get(id)!.callFrame.functionName)) continue
  const seen = new Set<string>()
  for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
    const name = label(byId.get(current)!)
    if (seen.has(name)) continue
    seen.add(name)
    inclusive.set(name, (inclusive.get(name) ?? 0) + us)
  }
}

const print = (title: string, entries: Map<string, number>, count: number): void => {
  console.log(`\n${title}`)
  for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${(100 * us / totalUs).toFixed(1).padStart(5)} %  ${name}`)
  }
}
console.log(`${file}: busy ${(totalUs / 1000).toFixed(0)} ms, idle ${(idleUs / 1000).toFixed(0)} ms`)
print('Self time by function', selfByLabel, top)
print('Self time by file / package', selfByGroup, top)
print('Inclusive time by function', inclusive, top)
