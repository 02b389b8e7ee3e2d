/** The machine a benchmark ran on, as every results header records it. */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { DEPLOYED_NODE_FLAGS } from './node-flags.ts'
import { adminQuery } from './scratch-db.ts'

export interface Machine {
  date: string
  cpu: string
  cores: number
  ramGb: number
  /** The Node version, with the flags the bridge processes run with (bin/node-flags). */
  node: string
  postgres: string
  postgresSettings: Record<string, string>
}

/** pg_settings values in their usual spelling: shared_buffers 16384 × 8kB → 128MB. */
export function formatSetting(setting: string, unit: string | null): string {
  const blocks = unit === null ? undefined : /^(\d+)kB$/.exec(unit)
  if (blocks === undefined || blocks === null) return `${setting}${unit ?? ''}`
  const kb = Number(setting) * Number(blocks[1])
  return kb % 1024 === 0 ? `${kb / 1024}MB` : `${kb}kB`
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown'
  const [version] = await adminQuery<{ server_version: string }>('SHOW server_version')
  const settings = await adminQuery<{ name: string, setting: string, unit: string | null }>(
    `SELECT name, setting, unit FROM pg_settings WHERE name IN
       ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method', 'max_wal_size', 'commit_delay')`)
  return {
    date: new Date().toISOString(),
    cpu,
    cores: os.availableParallelism(),
    ramGb: Math.round(os.totalmem() / 1024 ** 3),
    node: `${process.version} (bridge processes: ${DEPLOYED_NODE_FLAGS.join(' ')})`,
    postgres: version?.server_version ?? 'unknown',
    postgresSettings: Object.fromEntries(settings.map((row) => [row.name, formatSetting(row.setting, row.unit)]))
  }
}
