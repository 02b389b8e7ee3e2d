import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import { EXIT, runCli, type CliIo } from '../../src/cli/main.ts'

function io(): CliIo & { errors: () => string } {
  const stderr = new PassThrough()
  let errors = ''
  stderr.on('data', (chunk: Buffer) => { errors += chunk.toString() })
  return { env: {}, stdout: new PassThrough(), stderr, isTty: false, errors: () => errors }
}

describe('bridge bench', () => {
  test('runs bench/run.ts with the arguments passed through and returns its exit code', async () => {
    assert.equal(await runCli(['bench', '--list'], io()), EXIT.ok)
    // The runner's usage error (64) comes back as the CLI's.
    assert.equal(await runCli(['bench', '--no-such-option'], io()), EXIT.usage)
    assert.equal(await runCli(['bench', '--only', 'nothing-like-this'], io()), EXIT.usage)
  })

  test('is listed in the help', async () => {
    const out = new PassThrough()
    let text = ''
    out.on('data', (chunk: Buffer) => { text += chunk.toString() })
    assert.equal(await runCli(['help'], { ...io(), stdout: out }), EXIT.ok)
    assert.match(text, /\n {2}bench /)
  })
})
