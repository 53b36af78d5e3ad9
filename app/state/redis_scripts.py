"""The Redis store's atomic operations, as Lua scripts (each one runs alone on the server: no other client's
command interleaves, so a window's count and its update are one step). Times come from the server's clock
(``TIME``), the same for every replica. Same semantics as ``app.state.sqlite``.

Per key (``{id}`` is a Redis Cluster hash tag: a key's state lives in one slot):

- ``switchyard:key:{id}`` hash: the record as JSON, plus the scalar limits the scripts read;
- ``switchyard:spend:{id}`` hash: ``period_start``, ``spent``, ``total``, ``t:<model>`` (lifetime spend);
- ``switchyard:mspend:{id}`` hash: model -> spend in the current period;
- ``switchyard:rpmc:{id}``, ``switchyard:tpmc:{id}`` hashes: the rate windows' slices
  (``app.state.records.WINDOW_SLICES``), slice index -> ``<amount>:<latest event time>``, with their running
  total (``sum``) and the first slice not yet known expired (``lo``): an admission reads only the slices that
  leave the window. (Earlier builds kept ``rpmw``/``tpmw`` hashes without the total: while a replica of
  such a build runs beside a newer one, each counts only its own requests.)
- ``switchyard:lease:{id}``, ``switchyard:resv:{id}`` sorted sets by expiry; ``switchyard:resamt:{id}``
  hash: reservation -> USD.
"""

from __future__ import annotations

from app.state.records import WINDOW_SLICES

PRELUDE = (
    f"local SLICES = {WINDOW_SLICES}\n"
    + """
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
local function period_start(anchor, period, now)
  if not period or now <= anchor then return anchor end
  return anchor + math.floor((now - anchor) / period) * period
end
local function roll(spend, mspend, anchor, period, now)
  local start = period_start(anchor, period, now)
  local held = redis.call('HMGET', spend, 'period_start', 'spent')
  local stored = tonumber(held[1])
  if stored and stored >= start then return stored, tonumber(held[2]) or 0 end
  redis.call('DEL', mspend)
  redis.call('HSET', spend, 'period_start', fmt(start), 'spent', '0')
  return start, 0
end
local function left(start, period, now)
  if not period then return '' end
  return fmt(start + period - now)
end
-- A rate window is a hash: slice index -> '<amount>:<latest event time>', 'sum' (the slices' total) and 'lo'
-- (no live slice below it). Times only grow, so the expired slices are the ones from 'lo' up: an admission
-- deletes them and takes them off the sum, one HGET per slice that leaves (reading every slice, up to
-- SLICES + 1 per window, cost Redis ~3 us each at every admission).
local function idx(i) return string.format('%d', i) end
local function slice_of(now, len) return math.floor(now * SLICES / len) end
local function parse(v)
  local amount, latest = string.match(v, '^(%d+):(.+)$')
  return tonumber(amount), tonumber(latest)
end
-- the window's sum and 'lo' worked out from all its slices (a hash without them, or one idle past a window)
local function rebuild(key, now, len)
  local h = redis.call('HGETALL', key)
  local used, lo, dead = 0, nil, {}
  for i = 1, #h, 2 do
    if h[i] ~= 'sum' and h[i] ~= 'lo' then
      local amount, latest = parse(h[i + 1])
      if latest <= now - len then
        table.insert(dead, h[i])
      else
        used = used + amount
        local at = tonumber(h[i])
        if not lo or at < lo then lo = at end
      end
    end
  end
  if not lo then
    redis.call('DEL', key)
    return 0, slice_of(now, len)
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  redis.call('HSET', key, 'sum', idx(used), 'lo', idx(lo))
  return used, lo
end
-- the window's total (its expired slices deleted) and its first live slice
local function window_used(key, now, len)
  local meta = redis.call('HMGET', key, 'sum', 'lo')
  local used, lo = tonumber(meta[1]), tonumber(meta[2])
  local cur = slice_of(now, len)
  if not used or not lo then
    if redis.call('EXISTS', key) == 1 then return rebuild(key, now, len) end
    return 0, cur
  end
  if cur - lo > SLICES + 1 then return rebuild(key, now, len) end
  local first = lo
  while lo < cur do  -- the current slice never expires
    local v = redis.call('HGET', key, idx(lo))
    if v then
      local amount, latest = parse(v)
      if latest > now - len then break end
      used = used - amount
      redis.call('HDEL', key, idx(lo))
    end
    lo = lo + 1
  end
  if lo ~= first then redis.call('HSET', key, 'sum', idx(used), 'lo', idx(lo)) end
  return used, lo
end
-- nil while the window holds less than limit; else the seconds until enough of it has left
local function window_wait(key, used, lo, limit, now, len)
  if used < limit then return nil end
  for i = lo, slice_of(now, len) do
    local v = redis.call('HGET', key, idx(i))
    if v then
      local amount, latest = parse(v)
      used = used - amount
      if used < limit then return fmt(latest + len - now) end
    end
  end
  return fmt(len)
end
local function count(key, now, len, amount)
  local at = slice_of(now, len)
  local f = redis.call('HMGET', key, idx(at), 'sum', 'lo')
  local total = amount
  if f[1] then total = total + parse(f[1]) end
  local fields = {idx(at), idx(total) .. ':' .. fmt(now), 'sum', idx((tonumber(f[2]) or 0) + amount)}
  if not f[3] or at < tonumber(f[3]) then table.insert(fields, 'lo'); table.insert(fields, idx(at)) end
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, math.ceil(len) + 1)
end
"""
)

# KEYS: key, spend, mspend, rpmc, tpmc, lease. ARGV: lease_id ('' for none), lease_ttl_s, window_s.
ADMIT = (
    PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], 'id', 'revoked_at', 'expires_at', 'rpm', 'tpm', 'max_parallel',
                     'budget_usd', 'period_s', 'anchor')
if not f[1] then return {'missing'} end
if f[2] then return {'revoked'} end
local now = now_s()
local expires = tonumber(f[3])
if expires and now >= expires then return {'expired'} end
local budget, period = tonumber(f[7]), tonumber(f[8])
local start, spent = roll(KEYS[2], KEYS[3], tonumber(f[9]), period, now)
if budget and spent >= budget then return {'budget', left(start, period, now), fmt(spent), fmt(start)} end
local len = tonumber(ARGV[3])
local rpm = tonumber(f[4])
if rpm then
  local used, lo = window_used(KEYS[4], now, len)
  local wait = window_wait(KEYS[4], used, lo, rpm, now, len)
  if wait then return {'rpm', wait} end
end
local tpm = tonumber(f[5])
if tpm then
  local used, lo = window_used(KEYS[5], now, len)
  local wait = window_wait(KEYS[5], used, lo, tpm, now, len)
  if wait then return {'tpm', wait} end
end
local maxp = tonumber(f[6])
local leased = '0'
if maxp and ARGV[1] ~= '' then
  leased = '1'
  local ttl = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', fmt(now))
  if redis.call('ZCARD', KEYS[6]) >= maxp then return {'parallel', '1'} end
  redis.call('ZADD', KEYS[6], fmt(now + ttl), ARGV[1])
  redis.call('EXPIRE', KEYS[6], math.ceil(ttl) + 1)
end
if rpm then count(KEYS[4], now, len, 1) end
return {'ok', '', fmt(spent), fmt(start), leased}
"""
)

# KEYS: key, spend, mspend, resv, resamt. ARGV: reservation_id, amount, ttl_s.
RESERVE = (
    PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], 'id', 'revoked_at', 'budget_usd', 'period_s', 'anchor')
if not f[1] then return {'missing'} end
if f[2] then return {'revoked'} end
local budget, period = tonumber(f[3]), tonumber(f[4])
if not budget then return {'ok', '', '0', '0', '0'} end
local now = now_s()
local start, spent = roll(KEYS[2], KEYS[3], tonumber(f[5]), period, now)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt(now))) do redis.call('HDEL', KEYS[5], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', fmt(now))
local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[5])) do reserved = reserved + tonumber(v) end
if spent + reserved >= budget then
  local retry = '1'
  if spent >= budget then retry = left(start, period, now) end
  return {'budget', retry, fmt(spent), fmt(start), fmt(reserved)}
end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[4], fmt(now + ttl), ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[4], math.ceil(ttl) + 1)
redis.call('EXPIRE', KEYS[5], math.ceil(ttl) + 1)
return {'ok', '', fmt(spent), fmt(start), fmt(reserved + tonumber(ARGV[2]))}
"""
)

# KEYS: key, spend, mspend, resv, resamt, tpm.
# ARGV: reservation_id ('' for none), cost, model, tokens, window_s.
SETTLE = (
    PRELUDE
    + """
if ARGV[1] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
end
local f = redis.call('HMGET', KEYS[1], 'id', 'tpm', 'period_s', 'anchor')
if not f[1] then return 0 end
local now = now_s()
roll(KEYS[2], KEYS[3], tonumber(f[4]), tonumber(f[3]), now)
local cost = tonumber(ARGV[2])
if cost > 0 then
  redis.call('HINCRBYFLOAT', KEYS[2], 'spent', ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[2], 'total', ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[3], ARGV[3], ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[2], 't:' .. ARGV[3], ARGV[2])
end
local tokens = tonumber(ARGV[4])
if tokens > 0 and tonumber(f[2]) then count(KEYS[6], now, tonumber(ARGV[5]), tokens) end
return 1
"""
)

# KEYS: key, spend, mspend, rpmc, tpmc, lease, resv, resamt. ARGV: window_s.
# -> {period_start, spent, total, reserved, requests, tokens, leases, model1, spend1, model2, ...}
USAGE = (
    PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], 'id', 'period_s', 'anchor')
if not f[1] then return {} end
local now = now_s()
local len = tonumber(ARGV[1])
local start, spent = roll(KEYS[2], KEYS[3], tonumber(f[3]), tonumber(f[2]), now)
local total = redis.call('HGET', KEYS[2], 'total') or '0'
local reserved = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '(' .. fmt(now), '+inf')) do
  reserved = reserved + (tonumber(redis.call('HGET', KEYS[8], id)) or 0)
end
local requests = window_used(KEYS[4], now, len)
local tokens = window_used(KEYS[5], now, len)
local leases = redis.call('ZCOUNT', KEYS[6], '(' .. fmt(now), '+inf')
local out = {fmt(start), fmt(spent), total, fmt(reserved), string.format('%d', requests), string.format('%d', tokens),
             tostring(leases)}
local h = redis.call('HGETALL', KEYS[3])
for i = 1, #h do table.insert(out, h[i]) end
return out
"""
)
