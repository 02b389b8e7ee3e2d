import type { Config } from '../config/load.ts'
import type { CliIo } from './main.ts'

export async function runDemo(_config: Config, _options: { days: number, keepRunning: boolean }, io: CliIo): Promise<number> {
  io.stderr.write('demo: not yet available\n')
  return 1
}
