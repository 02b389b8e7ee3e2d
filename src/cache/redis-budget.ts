import type { Redis } from 'ioredis'
import { PRIORITY_SHARE, type RateWindow, type SharedBudget } from '../providers/client/shared-budget.ts'

// KEYS: one sorted set per window (members = request ids, scores = Redis time in ms).
// ARGV: member, then per window: limit for this priority, window ms.
// Atomic: every node's takes are serialized by Redis, so no window ever holds more than its limit, and the
// clock is Redis's own, so nodes with skewed clocks still agree. Returns {1, remaining} or {0, retryAfterMs}.
const TAKE_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local remaining = math.huge
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i * 2])
  local window = tonumber(ARGV[i * 2 + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  if used >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = 1
    if oldest[2] ~= nil then wait = math.max(1, tonumber(oldest[2]) + window - now) end
    return {0, wait}
  end
  remaining = math.min(remaining, limit - used - 1)
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[i * 2 + 1]))
end
return {1, remaining}
`

interface BudgetCommands {
  bbTakeBudget(...args: Array<string | number>): Promise<[number, number]>
}

/**
 * A provider app's request budget shared by every node through Redis (sliding windows of request times).
 * `keyPrefix` names the app, e.g. `bb:budget:whoop:`. Issue 5 wires it into the WHOOP client; the port is
 * providers/client/shared-budget.ts.
 */
export function createRedisSharedBudget(redis: Redis, keyPrefix: string, windows: readonly RateWindow[]): SharedBudget {
  if (!('bbTakeBudget' in redis)) redis.defineCommand('bbTakeBudget', { lua: TAKE_SCRIPT })
  const commands = redis as unknown as BudgetCommands
  const keys = windows.map((window) => `${keyPrefix}${window.windowMs}`)
  let sequence = 0
  const member = `${process.pid}:${Math.random().toString(36).slice(2)}`
  return {
    async take(priority) {
      const limits = windows.flatMap((window) => [Math.floor(window.requests * PRIORITY_SHARE[priority]), window.windowMs])
      const [ok, value] = await commands.bbTakeBudget(keys.length, ...keys, `${member}:${sequence++}`, ...limits)
      return ok === 1 ? { ok: true, remaining: value } : { ok: false, retryAfterMs: value }
    }
  }
}
