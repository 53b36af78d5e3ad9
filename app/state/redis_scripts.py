"""The Redis store's atomic operations, as Lua scripts (each one runs alone on the server: no other client's
command interleaves, so a window's count and its update are one step). Times come from the server's clock
(``TIME``), the same for every replica. Same semantics as ``app.state.sqlite``.

Per key (``{id}`` is a Redis Cluster hash tag: a key's state lives in one slot):

- ``switchyard:key:{id}`` hash: the record as JSON, plus the scalar limits the scripts read;
- ``switchyard:spend:{id}`` hash: ``period_start``, ``spent``, ``total``, ``t:<model>`` (lifetime spend);
- ``switchyard:mspend:{id}`` hash: model -> spend in the current period;
- ``switchyard:rpm:{id}``, ``switchyard:tpm:{id}`` sorted sets: request and token events by time (a token
  event is ``<id>:<tokens>``);
- ``switchyard:lease:{id}``, ``switchyard:resv:{id}`` sorted sets by expiry; ``switchyard:resamt:{id}``
  hash: reservation -> USD.
"""

from __future__ import annotations

PRELUDE = """
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
  local stored = tonumber(redis.call('HGET', spend, 'period_start'))
  if stored and stored >= start then
    return stored, tonumber(redis.call('HGET', spend, 'spent')) or 0
  end
  redis.call('DEL', mspend)
  redis.call('HSET', spend, 'period_start', fmt(start), 'spent', '0')
  return start, 0
end
local function left(start, period, now)
  if not period then return '' end
  return fmt(start + period - now)
end
local function amount_of(member) return tonumber(string.match(member, ':(%d+)$')) or 0 end
"""

# KEYS: key, spend, mspend, rpm, tpm, lease. ARGV: request_id, lease_id ('' for none), lease_ttl_s, window_s.
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
local window = tonumber(ARGV[4])
local rpm = tonumber(f[4])
if rpm then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', fmt(now - window))
  local n = redis.call('ZCARD', KEYS[4])
  if n >= rpm then
    local e = redis.call('ZRANGE', KEYS[4], n - rpm, n - rpm, 'WITHSCORES')
    return {'rpm', fmt(tonumber(e[2]) + window - now)}
  end
end
local tpm = tonumber(f[5])
if tpm then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', fmt(now - window))
  local e = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
  local used = 0
  for i = 1, #e, 2 do used = used + amount_of(e[i]) end
  if used >= tpm then
    for i = 1, #e, 2 do
      used = used - amount_of(e[i])
      if used < tpm then return {'tpm', fmt(tonumber(e[i + 1]) + window - now)} end
    end
    return {'tpm', fmt(window)}
  end
end
local maxp = tonumber(f[6])
local leased = '0'
if maxp and ARGV[2] ~= '' then
  leased = '1'
  local ttl = tonumber(ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', fmt(now))
  if redis.call('ZCARD', KEYS[6]) >= maxp then return {'parallel', '1'} end
  redis.call('ZADD', KEYS[6], fmt(now + ttl), ARGV[2])
  redis.call('EXPIRE', KEYS[6], math.ceil(ttl) + 1)
end
if rpm then
  redis.call('ZADD', KEYS[4], fmt(now), ARGV[1])
  redis.call('EXPIRE', KEYS[4], math.ceil(window) + 1)
end
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
# ARGV: reservation_id ('' for none), cost, model, tokens, event_id, window_s.
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
if tokens > 0 and tonumber(f[2]) then
  local window = tonumber(ARGV[6])
  redis.call('ZADD', KEYS[6], fmt(now), ARGV[5] .. ':' .. ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', fmt(now - window))
  redis.call('EXPIRE', KEYS[6], math.ceil(window) + 1)
end
return 1
"""
)

# KEYS: key, spend, mspend, rpm, tpm, lease, resv, resamt. ARGV: window_s.
# -> {period_start, spent, total, reserved, requests, tokens, leases, model1, spend1, model2, ...}
USAGE = (
    PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], 'id', 'period_s', 'anchor')
if not f[1] then return {} end
local now = now_s()
local window = tonumber(ARGV[1])
local start, spent = roll(KEYS[2], KEYS[3], tonumber(f[3]), tonumber(f[2]), now)
local total = redis.call('HGET', KEYS[2], 'total') or '0'
local reserved = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '(' .. fmt(now), '+inf')) do
  reserved = reserved + (tonumber(redis.call('HGET', KEYS[8], id)) or 0)
end
local requests = redis.call('ZCOUNT', KEYS[4], '(' .. fmt(now - window), '+inf')
local tokens = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. fmt(now - window), '+inf')) do
  tokens = tokens + amount_of(m)
end
local leases = redis.call('ZCOUNT', KEYS[6], '(' .. fmt(now), '+inf')
local out = {fmt(start), fmt(spent), total, fmt(reserved), tostring(requests), tostring(tokens), tostring(leases)}
local h = redis.call('HGETALL', KEYS[3])
for i = 1, #h do table.insert(out, h[i]) end
return out
"""
)
