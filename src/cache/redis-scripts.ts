/**
 * Lua scripts of the Redis cache adapter. Each runs atomically, so a merge is one round trip and no other
 * client sees half of it. They implement the decisions of cache.ts (`decideLatest`, `decideFill`,
 * `collectNewest`, `mergeSeriesFill`); the shared behavioural tests run both adapters against each other.
 *
 * Encodings (all times are epoch milliseconds as decimal text):
 * - latest hash field value: `<startMs>|<eventId>|<updatedMs or empty>|<ingestedMs>|<event JSON>`, so a script
 *   compares without decoding JSON;
 * - series stream entry: id `<startMs>-<seq>` (ascending by start), fields in the order e (event id),
 *   s (start as ISO text), v (value), u (updated ms or empty), i (ingested ms). Scripts read fields by position.
 * Needs Redis ≥ 7.0 for `XADD … <ms>-*`.
 */

const PRELUDE = `
local function num(text)
  if text == nil or text == '' then return nil end
  return tonumber(text)
end
-- true when revision (u1, i1) is older than (u2, i2): source_updated_at first (absent is oldest), then ingested_at
local function older(u1, i1, u2, i2)
  local a, b = u1 or -math.huge, u2 or -math.huge
  if a ~= b then return a < b end
  return i1 < i2
end
-- (start, event_id) ascending
local function before(s1, id1, s2, id2)
  if s1 ~= s2 then return s1 < s2 end
  return id1 < id2
end
local function parse(value)
  local s, id, u, i = string.match(value, '^(%d+)|([^|]+)|(%-?%d*)|(%-?%d+)|')
  return tonumber(s), id, num(u), tonumber(i)
end
local function idMs(id)
  return tonumber(string.match(id, '^(%d+)'))
end
local function tokenMatches(genKey, epochKey, gen, epoch)
  return (redis.call('GET', genKey) or '') == gen and (redis.call('GET', epochKey) or '') == epoch
end
`

/**
 * KEYS: latest hash, generation, then per metric: series stream, series state.
 * ARGV: ttlSeconds, cap, generationTtlSeconds, metricCount, then per metric: metric, entryCount, top encoded
 * value, second encoded value (or empty), and entryCount × (startMs, eventId, startIso, value, updatedMs,
 * ingestedMs), ascending by (start, event_id).
 */
export const RECORD_SCRIPT = `${PRELUDE}
local ttl, cap, genTtl, metricCount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local latestKey, genKey = KEYS[1], KEYS[2]
local latestTouched = false
local pos = 5
for m = 1, metricCount do
  local metric, count, top, second = ARGV[pos], tonumber(ARGV[pos + 1]), ARGV[pos + 2], ARGV[pos + 3]
  local first, last = pos + 4, pos + 3 + count * 6
  pos = last + 1

  local current = redis.call('HGET', latestKey, metric)
  local candidate = top
  if current then
    local cs, cid, cu, ci = parse(current)
    local moved = false
    for j = first, last, 6 do
      if ARGV[j + 1] == cid and tonumber(ARGV[j]) < cs and not older(num(ARGV[j + 4]), tonumber(ARGV[j + 5]), cu, ci) then
        moved = true
      end
    end
    if moved then
      -- The cached measurement moved to an earlier start: which event is latest now is unknown.
      redis.call('INCR', genKey)
      redis.call('EXPIRE', genKey, genTtl)
      redis.call('DEL', latestKey)
      candidate = ''
    else
      local _, tid, tu, ti = parse(top)
      -- A late, older revision of the cached event is no candidate; the next best entry may be.
      if tid == cid and older(tu, ti, cu, ci) then candidate = second end
      if candidate ~= '' then
        local ns, nid, nu, ni = parse(candidate)
        if before(ns, nid, cs, cid) or (ns == cs and nid == cid and older(nu, ni, cu, ci)) then candidate = '' end
      end
    end
  end
  if candidate ~= '' then
    redis.call('HSET', latestKey, metric, candidate)
    latestTouched = true
  end

  local seriesKey, stateKey = KEYS[1 + 2 * m], KEYS[2 + 2 * m]
  local newestMs = nil
  local tail = redis.call('XREVRANGE', seriesKey, '+', '-', 'COUNT', 1)
  if tail[1] then newestMs = idMs(tail[1][1]) end
  for j = first, last, 6 do
    local startMs = tonumber(ARGV[j])
    if newestMs and startMs < newestMs then
      -- Below the newest point the series would stop being a contiguous window of the newest events.
      redis.call('DEL', seriesKey, stateKey)
    end
    redis.call('XADD', seriesKey, 'MAXLEN', '~', cap, ARGV[j] .. '-*',
      'e', ARGV[j + 1], 's', ARGV[j + 2], 'v', ARGV[j + 3], 'u', ARGV[j + 4], 'i', ARGV[j + 5])
    newestMs = startMs
  end
  if count > 0 then
    redis.call('EXPIRE', seriesKey, ttl)
    redis.call('EXPIRE', stateKey, ttl)
  end
end
if latestTouched then redis.call('EXPIRE', latestKey, ttl) end
return 1
`

/**
 * KEYS: latest hash, generation, epoch. ARGV: generation and epoch of the token, ttlSeconds, count, then
 * count × (metric, encoded value). Returns 1 when the picture was completed, 0 when refused.
 */
export const FILL_LATEST_SCRIPT = `${PRELUDE}
if not tokenMatches(KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then return 0 end
local ttl, count = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
for k = 0, count - 1 do
  local metric, value = ARGV[5 + 2 * k], ARGV[6 + 2 * k]
  local current = redis.call('HGET', KEYS[1], metric)
  local write = true
  if current then
    local cs, cid, cu, ci = parse(current)
    local ns, nid, nu, ni = parse(value)
    if nid == cid then
      if older(nu, ni, cu, ci) then
        write = false
      elseif ns < cs then
        -- A newer revision moved earlier: its writer has not reached the cache yet. Leave it incomplete.
        return 0
      end
    elseif not before(cs, cid, ns, nid) then
      write = false
    end
  end
  if write then redis.call('HSET', KEYS[1], metric, value) end
end
redis.call('HSET', KEYS[1], '__complete', '1')
redis.call('EXPIRE', KEYS[1], ttl)
return 1
`

/**
 * KEYS: series stream, series state, generation, epoch. ARGV: limit.
 * Returns { generation, epoch, state, length, exhausted (1/0), then per point: startMs, eventId, startIso, value,
 * updatedMs, ingestedMs }, newest first, until `limit` distinct events and every tie at the last start.
 */
export const READ_SERIES_SCRIPT = `${PRELUDE}
local limit = tonumber(ARGV[1])
local out = { redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[4]) or '', '', 0, 0 }
local state = redis.call('GET', KEYS[2])
if not state then return out end
out[3], out[4], out[5] = state, redis.call('XLEN', KEYS[1]), 1
local seen, distinct, boundary = {}, 0, nil
local cursor, page = '+', limit + 16
while true do
  local entries = redis.call('XREVRANGE', KEYS[1], cursor, '-', 'COUNT', page)
  for _, entry in ipairs(entries) do
    local id, f = entry[1], entry[2]
    local ms = idMs(id)
    if boundary and ms < boundary then
      out[5] = 0
      return out
    end
    out[#out + 1] = string.match(id, '^(%d+)')
    out[#out + 1] = f[2]
    out[#out + 1] = f[4]
    out[#out + 1] = f[6]
    out[#out + 1] = f[8]
    out[#out + 1] = f[10]
    if not seen[f[2]] then
      seen[f[2]] = true
      distinct = distinct + 1
      if distinct == limit then boundary = ms end
    end
  end
  if #entries < page then return out end
  cursor = '(' .. entries[#entries][1]
end
`

/**
 * KEYS: series stream, series state, generation, epoch. ARGV: generation and epoch of the token, ttlSeconds,
 * cap, exhaustive (1/0), count, then count × (startMs, eventId, startIso, value, updatedMs, ingestedMs), newest
 * first. Returns 1 when filled, 0 when refused.
 */
export const FILL_SERIES_SCRIPT = `${PRELUDE}
if not tokenMatches(KEYS[3], KEYS[4], ARGV[1], ARGV[2]) then return 0 end
local ttl, cap, exhaustive, count = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local byId, points = {}, {}
-- point: { startMs, eventId, startIso, value, updatedMs, ingestedMs, startMs as text }
local function add(msText, id, s, v, u, i)
  local seen = byId[id]
  if seen == nil then
    local point = { tonumber(msText), id, s, v, u, i, msText }
    byId[id] = point
    points[#points + 1] = point
  elseif older(num(seen[5]), tonumber(seen[6]), num(u), tonumber(i)) then
    seen[1], seen[3], seen[4], seen[5], seen[6], seen[7] = tonumber(msText), s, v, u, i, msText
  end
end
for k = 0, count - 1 do
  local j = 7 + 6 * k
  add(ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5])
end
local state = redis.call('GET', KEYS[2])
local existing = redis.call('XRANGE', KEYS[1], '-', '+')
for _, entry in ipairs(existing) do
  local f = entry[2]
  add(string.match(entry[1], '^(%d+)'), f[2], f[4], f[6], f[8], f[10])
end
local existingExhaustive = state == 'all' and #existing < cap
local cutMs, cutId = nil, nil
if not exhaustive and not existingExhaustive and count > 0 then
  local j = 7 + 6 * (count - 1)
  cutMs, cutId = tonumber(ARGV[j]), ARGV[j + 1]
  -- A complete window already held extends what the merge may keep below the snapshot.
  if state and existing[1] then
    local ms, id = idMs(existing[1][1]), existing[1][2][2]
    if before(ms, id, cutMs, cutId) then cutMs, cutId = ms, id end
  end
end
local kept = {}
for _, p in ipairs(points) do
  if cutMs == nil or not before(p[1], p[2], cutMs, cutId) then kept[#kept + 1] = p end
end
table.sort(kept, function(a, b) return before(a[1], a[2], b[1], b[2]) end)
local first = 1
local completeness = (exhaustive or existingExhaustive) and 'all' or 'top'
if #kept > cap then
  first = #kept - cap + 1
  completeness = 'top'
end
redis.call('DEL', KEYS[1])
for k = first, #kept do
  local p = kept[k]
  redis.call('XADD', KEYS[1], p[7] .. '-*', 'e', p[2], 's', p[3], 'v', p[4], 'u', p[5], 'i', p[6])
end
if #kept >= first then redis.call('EXPIRE', KEYS[1], ttl) end
redis.call('SET', KEYS[2], completeness, 'EX', ttl)
return 1
`
