import type { Redis } from 'ioredis'
import { priorityLimit, type RateWindow, type RequestBudget } from '../providers/client/rate-budget.ts'

// KEYS: the hold-off key, then one sorted set per window (members = request ids, scores = Redis time in ms).
// ARGV: member, then per window: limit for this priority, full limit, window ms.
// Atomic: every node's takes are serialized by Redis, so no window ever holds more than its limit, and the
// clock is Redis's own, so nodes with skewed clocks still agree. Returns {1, remaining} or {0, retryAfterMs}.
const TAKE_SCRIPT = `
local held = redis.call('PTTL', KEYS[1])
if held > 0 then return {0, held} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local remaining = math.huge
for i = 2, #KEYS do
  local base = (i - 2) * 3 + 1
  local limit = tonumber(ARGV[base + 1])
  local full = tonumber(ARGV[base + 2])
  local window = tonumber(ARGV[base + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local used = redis.call('ZCARD', KEYS[i])
  if used >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local wait = 1
    if oldest[2] ~= nil then wait = math.max(1, tonumber(oldest[2]) + window - now) end
    return {0, wait}
  end
  remaining = math.min(remaining, full - used - 1)
end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[(i - 2) * 3 + 4]))
end
return {1, remaining}
`

// Extends the hold-off to ARGV[1] ms unless it already lasts longer.
const HOLD_SCRIPT = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`

interface BudgetCommands {
  bbTakeBudget(...args: Array<string | number>): Promise<[number, number]>
  bbHoldBudget(...args: Array<string | number>): Promise<number>
}

/**
 * A provider app's request budget shared by every node through Redis: sliding windows of request times and a
 * hold-off every node respects when the provider asked to wait. `keyPrefix` names the app, e.g. `bb:budget:whoop:`.
 * Throws when Redis cannot answer; the caller decides what to fall back to.
 */
export function createRedisBudget(redis: Redis, keyPrefix: string, windows: readonly RateWindow[]): RequestBudget {
  if (!('bbTakeBudget' in redis)) {
    redis.defineCommand('bbTakeBudget', { lua: TAKE_SCRIPT })
    redis.defineCommand('bbHoldBudget', { numberOfKeys: 1, lua: HOLD_SCRIPT })
  }
  const commands = redis as unknown as BudgetCommands
  const holdKey = `${keyPrefix}hold`
  const keys = [holdKey, ...windows.map((window) => `${keyPrefix}${window.windowMs}`)]
  let sequence = 0
  const member = `${process.pid}:${Math.random().toString(36).slice(2)}`
  return {
    async take(priority) {
      const limits = windows.flatMap((window) => [priorityLimit(window, priority), window.requests, window.windowMs])
      const [ok, value] = await commands.bbTakeBudget(keys.length, ...keys, `${member}:${sequence++}`, ...limits)
      return ok === 1 ? { ok: true, remaining: value } : { ok: false, retryAfterMs: value }
    },
    async holdOff(ms) {
      await commands.bbHoldBudget(holdKey, Math.max(1, Math.ceil(ms)))
    }
  }
}
