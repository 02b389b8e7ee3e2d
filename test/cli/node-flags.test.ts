import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { DEPLOYED_NODE_FLAGS } from '../../bench/lib/node-flags.ts'
import { runBridge } from '../helpers/bridge-process.ts'

const MiB = 1024 * 1024
/**
 * V8 sometimes holds pages beyond its two semi-spaces (4.25 MiB seen with 2 MiB semi-spaces on a busy machine,
 * 4 MiB otherwise). The slack stays far below the gaps the checks are about (4 vs 32 MiB, 32 vs V8's 64 MiB here).
 */
const PAGE_SLACK_BYTES = 4 * MiB

/**
 * A preload that churns short-lived objects until V8 has grown the young generation as far as its flags allow,
 * then records NODE_OPTIONS and the young generation's size (two semi-spaces).
 */
const PROBE = `
const { writeFileSync } = require('node:fs')
const v8 = require('node:v8')
let live = []
for (let i = 0; i < 3e6; i++) { live.push({ i, s: 'x' + i }); if (live.length > 50000) live = [] }
const newSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
writeFileSync(process.env.PROBE_OUT, JSON.stringify({ nodeOptions: process.env.NODE_OPTIONS, newSpaceBytes: newSpace.space_size }))
`

interface Probe { nodeOptions: string, newSpaceBytes: number }

/** Runs `bin/bridge help` with the probe preloaded through the caller's NODE_OPTIONS. */
async function probeBridge(t: TestContext, ownNodeOptions: string): Promise<Probe> {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-flags-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const script = join(dir, 'probe.cjs')
  const out = join(dir, 'probe.json')
  writeFileSync(script, PROBE)
  const result = await runBridge(['help'], { NODE_OPTIONS: `${ownNodeOptions} --require ${script}`.trim(), PROBE_OUT: out }, { via: 'bin' })
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(readFileSync(out, 'utf8')) as Probe
}

test('bin/node-flags holds the deployed flags, one per line, comments aside', () => {
  assert.deepEqual(DEPLOYED_NODE_FLAGS, ['--max-semi-space-size=16', '--max-old-space-size=1024'])
})

test('bin/bridge runs Node with bin/node-flags: 16 MiB semi-spaces bound the young generation to 32 MiB', async (t) => {
  const seen = await probeBridge(t, '')
  assert.ok(seen.nodeOptions.startsWith(DEPLOYED_NODE_FLAGS.join(' ')), seen.nodeOptions)
  assert.ok(seen.newSpaceBytes <= 32 * MiB + PAGE_SLACK_BYTES, `young generation ${seen.newSpaceBytes / MiB} MiB`)
})

test('a flag of the operator\'s own NODE_OPTIONS comes later and wins over bin/node-flags', async (t) => {
  const seen = await probeBridge(t, '--max-semi-space-size=2')
  assert.match(seen.nodeOptions, /^--max-semi-space-size=16 --max-old-space-size=1024 --max-semi-space-size=2 --require /)
  assert.ok(seen.newSpaceBytes <= 4 * MiB + PAGE_SLACK_BYTES, `young generation ${seen.newSpaceBytes / MiB} MiB`)
})
