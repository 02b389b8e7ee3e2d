import { Writable } from 'node:stream'
import { runCli } from '../../src/cli/main.ts'

export interface CapturedRun {
  code: number
  stdout: string
  stderr: string
}

/** `bridge <args>` in this process with the given environment, stdout and stderr captured. */
export async function runCliCaptured(args: string[], env: Record<string, string>): Promise<CapturedRun> {
  const output = { stdout: '', stderr: '' }
  const sink = (key: 'stdout' | 'stderr'): Writable => new Writable({
    write(chunk: Buffer, _encoding, done) {
      output[key] += chunk.toString()
      done()
    }
  })
  const code = await runCli(args, { env, stdout: sink('stdout'), stderr: sink('stderr'), isTty: false })
  return { code, ...output }
}
