"""Lua scripts of the fair-share reader. Virtual times are in worker milliseconds (divided by the tenant's
weight between tenants); the lowest virtual time with work goes next. Credit is bounded: of those with work,
none may be more than `credit` behind the one furthest ahead, so a tenant or flow that was idle, or had only a
little work while another flooded, cannot claim the workers for long when it floods in turn."""

from __future__ import annotations

from runtime.bus.keys import STEP_GROUP

# Order the tenants that have work, lowest virtual time first, after raising those more than `credit` behind
# the one furthest ahead.
# KEYS: 1 tenants' vtimes zset, 2 seen zset. ARGV: 1 now (ms), 2 credit, 3.. tenants with work.
ORDER = """
local now, credit = tonumber(ARGV[1]), tonumber(ARGV[2])
local order, lead = {}, nil
for i = 3, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local vt = s and tonumber(s)
  if vt and (not lead or vt > lead) then lead = vt end
  order[#order + 1] = {vt, ARGV[i]}
end
local floor = (lead or 0) - credit
for _, e in ipairs(order) do
  if not e[1] or e[1] < floor then
    e[1] = floor
    redis.call('ZADD', KEYS[1], floor, e[2])
  end
  redis.call('ZADD', KEYS[2], now, e[2])
end
table.sort(order, function(x, y) return x[1] < y[1] end)
local names = {}
for i, e in ipairs(order) do names[i] = e[2] end
return names
"""

# Take a batch of one tenant: the ready queue (flow) with the lowest virtual time that has messages, within the
# tenant's concurrency quota and its share of the workers. The batch is sized so that it takes about a quantum
# of wall time, is leased (the lease expires with the visibility timeout, so a dead worker's lease goes too)
# and charged up front at its expected cost, corrected when the worker settles it.
# A queue under the `throttle` penalty gives one message a second at most.
# KEYS: 1 ready set, 2 queue vtimes, 3 queue costs, 4 leases, 5 penalties, 6 throttled until.
# ARGV: 1 consumer, 2 now (ms), 3 lease expiry (ms), 4 lease id, 5 most messages, 6 quantum (ms), 7 step cap
#       (0: none), 8 slot cap (0: none), 9 credit (ms), 10 cost of a message never measured (ms).
# Returns {} (no work), {'CAP', why} or {queue, charge, cost per message, {entries}}.
TAKE = f"""
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local stepcap, slotcap = tonumber(ARGV[7]), tonumber(ARGV[8])
local room = tonumber(ARGV[5])
local leases = redis.call('ZRANGE', KEYS[4], 0, -1)
if slotcap > 0 and #leases >= slotcap then return {{'CAP', 'share'}} end
if stepcap > 0 then
  local used = 0
  for _, m in ipairs(leases) do used = used + tonumber(string.match(m, '|(%d+)$')) end
  if used >= stepcap then return {{'CAP', 'steps'}} end
  room = math.min(room, stepcap - used)
end
local ready = redis.call('SMEMBERS', KEYS[1])
if #ready == 0 then return {{}} end
local order, lead = {{}}, nil
for _, q in ipairs(ready) do
  local s = redis.call('ZSCORE', KEYS[2], q)
  local vt = s and tonumber(s)
  if vt and (not lead or vt > lead) then lead = vt end
  order[#order + 1] = {{vt, q}}
end
local floor = (lead or 0) - tonumber(ARGV[9])
for _, e in ipairs(order) do
  if not e[1] or e[1] < floor then
    e[1] = floor
    redis.call('ZADD', KEYS[2], floor, e[2])
  end
end
table.sort(order, function(x, y) return x[1] < y[1] end)
for _, e in ipairs(order) do
  local q = e[2]
  local cost = tonumber(redis.call('HGET', KEYS[3], q) or ARGV[10])
  local n = math.max(1, math.min(room, math.floor(tonumber(ARGV[6]) / math.max(cost, 0.001))))
  local got, wait = false, false
  if redis.call('HGET', KEYS[5], q) == 'throttle' then
    if tonumber(redis.call('HGET', KEYS[6], q) or '0') <= now then
      got = redis.pcall('XREADGROUP', 'GROUP', '{STEP_GROUP}', ARGV[1], 'COUNT', 1, 'STREAMS', q, '>')
      redis.call('HSET', KEYS[6], q, now + 1000)
    else
      wait = true  -- not its turn yet: it stays ready
    end
  else
    -- pcall: a queue retired meanwhile (no stream, no group) is simply no longer ready.
    got = redis.pcall('XREADGROUP', 'GROUP', '{STEP_GROUP}', ARGV[1], 'COUNT', n, 'STREAMS', q, '>')
  end
  if type(got) == 'table' and got.err then
    if not string.find(got.err, 'NOGROUP', 1, true) then return redis.error_reply(got.err) end
    got = false
  end
  if got and got[1] and #got[1][2] > 0 then
    local entries = got[1][2]
    redis.call('ZADD', KEYS[4], tonumber(ARGV[3]), ARGV[4] .. '|' .. #entries)
    local charge = cost * #entries
    redis.call('ZINCRBY', KEYS[2], charge, q)
    return {{q, string.format('%.3f', charge), string.format('%.3f', cost), entries}}
  end
  if not wait then redis.call('SREM', KEYS[1], q) end
end
return {{}}
"""
