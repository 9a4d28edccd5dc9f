"""Lua scripts of the fair-share reader. Virtual times are in worker milliseconds (divided by the tenant's
weight between tenants); the lowest virtual time with work goes next. A tenant or flow that had no work does
not bank credit: its virtual time is raised to at most `credit` below the clock, the lowest virtual time of
those that have work (the same rule as Linux CFS's min_vruntime)."""

from __future__ import annotations

from runtime.bus.keys import STEP_GROUP

# Order the tenants that have work, lowest virtual time first. The clock moves up to the lowest virtual time of
# the tenants that were busy already (seen since `recent`): a tenant coming back from idle must not hold it back.
# KEYS: 1 tenants' vtimes zset, 2 clock, 3 seen zset. ARGV: 1 now (ms), 2 credit, 3 recent (ms), 4.. tenants.
ORDER = """
local now, credit, recent = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = tonumber(redis.call('GET', KEYS[2]) or '0')
local low
for i = 4, #ARGV do
  local s, seen = redis.call('ZSCORE', KEYS[1], ARGV[i]), redis.call('ZSCORE', KEYS[3], ARGV[i])
  if s and seen and tonumber(seen) >= recent and (not low or tonumber(s) < low) then low = tonumber(s) end
end
if low and low > clock then
  clock = low
  redis.call('SET', KEYS[2], string.format('%.3f', clock))
end
local floor = clock - credit
local order = {}
for i = 4, #ARGV do
  local t = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], t)
  local vt = s and tonumber(s) or floor
  if vt < floor then
    vt = floor
    redis.call('ZADD', KEYS[1], vt, t)
  end
  redis.call('ZADD', KEYS[3], now, t)
  order[#order + 1] = {vt, t}
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
# KEYS: 1 ready set, 2 queue vtimes, 3 queue clock, 4 queue costs, 5 leases, 6 penalties, 7 throttled until.
# ARGV: 1 consumer, 2 now (ms), 3 lease expiry (ms), 4 lease id, 5 most messages, 6 quantum (ms), 7 step cap
#       (0: none), 8 slot cap (0: none), 9 credit (ms), 10 cost of a message never measured (ms).
# Returns {} (no work), {'CAP', why} or {queue, charge, cost per message, {entries}}.
TAKE = f"""
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local stepcap, slotcap = tonumber(ARGV[7]), tonumber(ARGV[8])
local room = tonumber(ARGV[5])
local leases = redis.call('ZRANGE', KEYS[5], 0, -1)
if slotcap > 0 and #leases >= slotcap then return {{'CAP', 'share'}} end
if stepcap > 0 then
  local used = 0
  for _, m in ipairs(leases) do used = used + tonumber(string.match(m, '|(%d+)$')) end
  if used >= stepcap then return {{'CAP', 'steps'}} end
  room = math.min(room, stepcap - used)
end
local ready = redis.call('SMEMBERS', KEYS[1])
if #ready == 0 then return {{}} end
local clock = tonumber(redis.call('GET', KEYS[3]) or '0')
local floor = clock - tonumber(ARGV[9])
local order = {{}}
for _, q in ipairs(ready) do
  local s = redis.call('ZSCORE', KEYS[2], q)
  local vt = s and tonumber(s) or floor
  if vt < floor then
    vt = floor
    redis.call('ZADD', KEYS[2], vt, q)
  end
  order[#order + 1] = {{vt, q}}
end
table.sort(order, function(x, y) return x[1] < y[1] end)
if order[1][1] > clock then redis.call('SET', KEYS[3], string.format('%.3f', order[1][1])) end
for _, e in ipairs(order) do
  local q = e[2]
  local cost = tonumber(redis.call('HGET', KEYS[4], q) or ARGV[10])
  local n = math.max(1, math.min(room, math.floor(tonumber(ARGV[6]) / math.max(cost, 0.001))))
  local got, wait = false, false
  if redis.call('HGET', KEYS[6], q) == 'throttle' then
    if tonumber(redis.call('HGET', KEYS[7], q) or '0') <= now then
      got = redis.call('XREADGROUP', 'GROUP', '{STEP_GROUP}', ARGV[1], 'COUNT', 1, 'STREAMS', q, '>')
      redis.call('HSET', KEYS[7], q, now + 1000)
    else
      wait = true  -- not its turn yet: it stays ready
    end
  else
    got = redis.call('XREADGROUP', 'GROUP', '{STEP_GROUP}', ARGV[1], 'COUNT', n, 'STREAMS', q, '>')
  end
  if got and got[1] and #got[1][2] > 0 then
    local entries = got[1][2]
    redis.call('ZADD', KEYS[5], tonumber(ARGV[3]), ARGV[4] .. '|' .. #entries)
    local charge = cost * #entries
    redis.call('ZINCRBY', KEYS[2], charge, q)
    return {{q, string.format('%.3f', charge), string.format('%.3f', cost), entries}}
  end
  if not wait then redis.call('SREM', KEYS[1], q) end
end
return {{}}
"""
