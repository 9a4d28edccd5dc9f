"""Lua scripts that make each change to the bus atomic.

A step's outputs, the acknowledgement of its input, its run bookkeeping and its events are one script call:
Redis runs a script as a unit and logs its effects to the append-only file together, so a crash can never
leave a message acknowledged without its outputs, or outputs without the acknowledgement.
"""

from __future__ import annotations

from runtime.bus.keys import STEP_GROUP, WORK_CHANNEL

# Shared by the scripts that queue step messages: a queue stream is created with its group the first time
# (a member of the queues set always has both, so a message can never land in a stream no worker reads), and
# is marked ready for the fair-share reader (runtime/coordinator/).
ENQUEUE = f"""
local known = {{}}  -- queues this call made sure of already
local function enqueue(queues, ready, q, payload)
  if not known[q] then
    if redis.call('SADD', queues, q) == 1 then
      redis.pcall('XGROUP', 'CREATE', q, '{STEP_GROUP}', '0', 'MKSTREAM')
    end
    redis.call('SADD', ready, q)
    known[q] = true
  end
  return redis.call('XADD', q, '*', 'm', payload)
end
local function ring() redis.call('PUBLISH', '{WORK_CHANNEL}', '1') end
"""

# A flow's concurrency limit, checked when a run starts (START, INGRESS). Returns 'free' (the flow has no
# limit), 'go' (the caller counts it as running), 'wait' (queued until a run of the flow finishes), 'skip' or
# 'fail'. It writes nothing: a start refused for another reason afterwards must not hold a place.
ADMIT = """
local function admit(limits, running)
  local v = redis.call('HMGET', limits, 'limit', 'mode')
  local limit = tonumber(v[1])
  if not limit then return 'free' end
  if tonumber(redis.call('GET', running) or '0') < limit then return 'go' end
  if v[2] == 'skip' or v[2] == 'fail' then return v[2] end
  return 'wait'
end
local function limit_reached(limits)
  return 'the flow is at its limit of ' .. (redis.call('HGET', limits, 'limit') or '?') .. ' runs at once'
end
-- Start waiting runs while the flow is under its limit as it is now (no limit: all of them). Returns how many.
local function release(limits, running, waiting, queues, ready)
  local limit = tonumber(redis.call('HGET', limits, 'limit') or '0')
  local n = 0
  while limit == 0 or tonumber(redis.call('GET', running) or '0') < limit do
    local nxt = redis.call('LPOP', waiting)
    if not nxt then break end
    local cut = string.find(nxt, '\\n', 1, true)
    enqueue(queues, ready, string.sub(nxt, 1, cut - 1), string.sub(nxt, cut + 1))
    redis.call('INCR', running)
    n = n + 1
  end
  return n
end
"""

# Commit a batch of processed messages of one tenant.
# KEYS: 1 the flow's queue stream the messages came from, 2 events stream, 3 delayed zset, 4 dead-letter stream,
#       5 backlog counter, 6 queues set, 7 ready set,
#       8.. keys referenced by index from the ops (run hashes, bodies, snapshots, reply lists).
# ARGV: 1 consumer group, 2 now (ms), 3 ops: JSON array of
#   {id, rid, run, delta, add[], delay[[due, payload]], dead[], failed?, leaf?, ev[], bset[[k, v]], bdel?,
#    snap[[k, field, value]], reply[[k, value]], agg[[k, index, value, count, envelope]],
#    bat[[items k, generation k, value, size, flush envelope, window ms, generation, whole envelope]],
#    bfl[[items k, generation k, generation, whole envelope]]}
# One op is one delivered message; its lists may hold the effects of several steps (fused steps run in the
# same commit); failed and leaf are counts.
# An op is applied only if its XACK acknowledged something: a message already committed by another worker
# (it was reclaimed while this one was still busy) changes nothing the second time.
COMMIT = (
    ENQUEUE
    + ADMIT
    + """
local group = ARGV[1]
local now = tonumber(ARGV[2])
local ops = cjson.decode(ARGV[3])
local events = {}
local backlog = 0
local applied = 0
local queued = 0
local crashes = 0
for _, op in ipairs(ops) do
  if redis.call('XACK', KEYS[1], group, op.id) == 1 then
    applied = applied + 1
    if op.add then
      for _, payload in ipairs(op.add) do enqueue(KEYS[6], KEYS[7], KEYS[1], payload) end
      queued = queued + #op.add
    end
    -- A delayed message names its queue: PROMOTE puts it back there.
    if op.delay then for _, d in ipairs(op.delay) do redis.call('ZADD', KEYS[3], d[1], KEYS[1] .. '\\n' .. d[2]) end end
    if op.dead then for _, d in ipairs(op.dead) do redis.call('XADD', KEYS[4], '*', 'm', d) end end
    if op.bset then for _, b in ipairs(op.bset) do redis.call('SET', KEYS[b[1]], b[2]) end end
    if op.bdel then redis.call('DEL', KEYS[op.bdel]) end
    if op.snap then for _, n in ipairs(op.snap) do redis.call('HSET', KEYS[n[1]], n[2], n[3]) end end
    if op.reply then
      -- A router waiting for this run (synchronous webhook) hears the reply at once.
      local rt = redis.call('HGET', KEYS[op.run], 'rt')
      for _, r in ipairs(op.reply) do
        redis.call('RPUSH', KEYS[r[1]], r[2])
        redis.call('EXPIRE', KEYS[r[1]], 600)
        if rt then redis.call('PUBLISH', rt, op.rid .. ' R ' .. r[2]) end
      end
    end
    local emitted = 0
    if op.agg then
      for _, a in ipairs(op.agg) do
        local key = KEYS[a[1]]
        redis.call('HSET', key, a[2], a[3])
        redis.call('EXPIRE', key, 86400)
        if redis.call('HLEN', key) >= a[4] then
          local all = redis.call('HGETALL', key)
          local parts = {}
          for i = 1, #all, 2 do parts[#parts + 1] = {tonumber(all[i]), all[i + 1]} end
          table.sort(parts, function(x, y) return x[1] < y[1] end)
          local values = {}
          for _, p in ipairs(parts) do values[#values + 1] = p[2] end
          local s, e = string.find(a[5], '"__hub_aggregate_parts__"', 1, true)
          local whole = string.sub(a[5], 1, s - 1) .. '[' .. table.concat(values, ',') .. ']' .. string.sub(a[5], e + 1)
          enqueue(KEYS[6], KEYS[7], KEYS[1], whole)
          queued = queued + 1
          redis.call('DEL', key)
          emitted = emitted + 1
        end
      end
    end
    -- A batch: the first value starts its window (a delayed message of its own run, which keeps that run
    -- open), the value that fills it sends the whole batch on in its run, the window's end sends what is there.
    local function send_batch(items, gen, whole)
      local values = redis.call('LRANGE', items, 0, -1)
      redis.call('DEL', items, gen)
      local s, e = string.find(whole, '"__hub_aggregate_parts__"', 1, true)
      enqueue(KEYS[6], KEYS[7], KEYS[1], string.sub(whole, 1, s - 1) .. '[' .. table.concat(values, ',') .. ']' .. string.sub(whole, e + 1))
      queued = queued + 1
      emitted = emitted + 1
    end
    if op.bat then
      for _, b in ipairs(op.bat) do
        local items, gen = KEYS[b[1]], KEYS[b[2]]
        local n = redis.call('RPUSH', items, b[3])
        redis.call('EXPIRE', items, 2592000)
        if n == 1 then
          redis.call('SET', gen, b[7], 'EX', 2592000)
          if b[6] > 0 then
            redis.call('ZADD', KEYS[3], now + b[6], KEYS[1] .. '\\n' .. b[5])
            emitted = emitted + 1
          end
        end
        if n >= b[4] then send_batch(items, gen, b[8]) end
      end
    end
    if op.bfl then
      for _, f in ipairs(op.bfl) do
        if redis.call('GET', KEYS[f[2]]) == f[3] and redis.call('LLEN', KEYS[f[1]]) > 0 then
          send_batch(KEYS[f[1]], KEYS[f[2]], f[4])
        end
      end
    end
    if op.ev then for _, e in ipairs(op.ev) do events[#events + 1] = e end end
    if op.crash then crashes = crashes + op.crash end
    backlog = backlog + op.delta + emitted
    local runkey = KEYS[op.run]
    if op.failed then redis.call('HINCRBY', runkey, 'failed', op.failed) end
    if op.leaf then redis.call('HINCRBY', runkey, 'leaves', op.leaf) end
    local left = redis.call('HINCRBY', runkey, 'inflight', op.delta + emitted)
    if left <= 0 then
      local failed = tonumber(redis.call('HGET', runkey, 'failed') or '0')
      local leaves = tonumber(redis.call('HGET', runkey, 'leaves') or '0')
      local started = tonumber(redis.call('HGET', runkey, 'started') or '0')
      local status = 'succeeded'
      if failed > 0 then
        if leaves > 0 then status = 'partially_failed' else status = 'failed' end
      end
      events[#events + 1] = cjson.encode({t = 'run.finished', run = op.rid, status = status, ts = now,
                                          started = started, failed = failed})
      local rt = redis.call('HGET', runkey, 'rt')
      if rt then redis.call('PUBLISH', rt, op.rid .. ' F ' .. status) end
      -- Under the flow's concurrency limit, its place is given back and waiting runs start while the flow is
      -- under its limit as it is now (it may have been changed meanwhile).
      local limits, running = redis.call('HGET', runkey, 'cl'), redis.call('HGET', runkey, 'cc')
      if running then
        redis.call('DECR', running)
        if limits then
          queued = queued + release(limits, running, redis.call('HGET', runkey, 'cw'), KEYS[6], KEYS[7])
        end
      end
      redis.call('DEL', runkey)
    end
  end
end
if backlog ~= 0 then redis.call('INCRBY', KEYS[5], backlog) end
if #events > 0 then redis.call('XADD', KEYS[2], '*', 'e', '[' .. table.concat(events, ',') .. ']') end
if queued > 0 then ring() end
if crashes > 0 then
  -- Counted against the flow (its queue) for the bad-citizen watch, in the tenant's usage bucket (usage.py).
  local usage = string.gsub(KEYS[5], ':backlog$', ':usage:' .. math.floor(now / 60000))
  redis.call('HINCRBY', usage, 'strike:crash:' .. KEYS[1], crashes)
  redis.call('EXPIRE', usage, 3900)
end
return applied
"""
)

# Start a run: refuse when the tenant's backlog is full, else enqueue its first message (or, at the flow's
# concurrency limit: keep it waiting, refuse it (SKIPPED), or record the run as failed at once).
# KEYS: 1 the flow's queue stream, 2 events stream, 3 run hash, 4 backlog counter, 5 body key, 6 dead-letter
#       stream, 7 queues set, 8 ready set, 9 the flow's limit hash, 10 its running counter, 11 its waiting list,
#       12 the tenant's quota hash (its own max_backlog, when the hub wrote one, replaces the cap)
# ARGV: 1 envelope, 2 run.started event (JSON), 3 backlog cap (0: none), 4 now (ms), 5 body ('' when inline),
#       6 dead-letter id to remove ('' when not a replay), 7 run id
# Returns the stream entry id, 'WAITING' or 'FAILED'.
START = (
    ENQUEUE
    + ADMIT
    + """
local cap = tonumber(redis.call('HGET', KEYS[12], 'max_backlog') or '0')
if cap <= 0 then cap = tonumber(ARGV[3]) end
if cap > 0 then
  local current = tonumber(redis.call('GET', KEYS[4]) or '0')
  if current >= cap then return redis.error_reply('BACKLOG ' .. cap) end
end
local decision = admit(KEYS[9], KEYS[10])
if decision == 'skip' then return redis.error_reply('SKIPPED ' .. limit_reached(KEYS[9])) end
-- A replay consumes its dead letter: of two replays of the same one, only the first starts a run.
if ARGV[6] ~= '' and redis.call('XDEL', KEYS[6], ARGV[6]) == 0 then return redis.error_reply('GONE') end
if decision == 'go' then redis.call('INCR', KEYS[10]) end
if decision == 'fail' then
  local finished = cjson.encode({t = 'run.finished', run = ARGV[7], status = 'failed', ts = tonumber(ARGV[4]),
                                 started = tonumber(ARGV[4]), failed = 1, error = limit_reached(KEYS[9])})
  redis.call('XADD', KEYS[2], '*', 'e', '[' .. ARGV[2] .. ',' .. finished .. ']')
  return 'FAILED'
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[5], ARGV[5]) end
redis.call('HSET', KEYS[3], 'inflight', 1, 'failed', 0, 'leaves', 0, 'started', ARGV[4])
if decision ~= 'free' then redis.call('HSET', KEYS[3], 'cl', KEYS[9], 'cc', KEYS[10], 'cw', KEYS[11]) end
redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[2], '*', 'e', '[' .. ARGV[2] .. ']')
if decision == 'wait' then
  redis.call('RPUSH', KEYS[11], KEYS[1] .. '\\n' .. ARGV[1])
  return 'WAITING'
end
local id = enqueue(KEYS[7], KEYS[8], KEYS[1], ARGV[1])
ring()
return id
"""
)

# Move delayed messages whose time has come back onto their queues. A member is `<queue>\n<envelope>`; one
# without a queue was delayed by a hub before per-flow queues and goes to the tenant's old steps stream.
# KEYS: 1 delayed zset, 2 legacy steps stream, 3 queues set, 4 ready set. ARGV: 1 now (ms), 2 at most this many.
PROMOTE = (
    ENQUEUE
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local cut = string.find(member, '\\n', 1, true)
  if cut then
    enqueue(KEYS[3], KEYS[4], string.sub(member, 1, cut - 1), string.sub(member, cut + 1))
  else
    redis.pcall('XGROUP', 'CREATE', KEYS[2], '"""
    + STEP_GROUP
    + """', '0', 'MKSTREAM')  -- it may have been retired
    enqueue(KEYS[3], KEYS[4], KEYS[2], member)
  end
  redis.call('ZREM', KEYS[1], member)
end
if #due > 0 then ring() end
return #due
"""
)

# Accept webhook requests of one tenant (one call per tenant per router flush, many requests per call). Per
# request: the route must still be live at the revision the router resolved (a rotated or revoked URL has no
# state any more; a changed route has a new revision), accepting (active flow, or a listening test URL), within
# the flow's and the tenant's rate limits (GCRA on the server's clock, so several routers share one limit) and
# the tenant's backlog quota; then the run starts exactly as START does. A refused request writes nothing.
# Records are variable so that the common request (async, no limits, small body) costs 2 keys and 4 arguments.
# KEYS: 1 queues set, 2 events stream, 3 backlog counter, 4 ready set, then per request: its state key, its run
#   hash, its flow's queue stream, and as its flags say: body key (1), capture key (2), attachments key (4), flow rate key (8), tenant rate key (16)
# ARGV: 1 backlog cap (0: none), 2 attachment lifetime (s), then per request: flags, expected revision,
#   envelope, run.started event, and as its flags say: body (1), capture document (2), attachments (4),
#   flow rate interval and tolerance in ms (8), tenant rate interval and tolerance (16), reply channel (32)
# Returns per request the stream entry id, or E:GONE | E:STALE | E:OFF | E:BACKLOG | E:RATE:<wait ms>.
INGRESS_BODY, INGRESS_CAPTURE, INGRESS_FILES, INGRESS_FLOW_RATE, INGRESS_TENANT_RATE, INGRESS_SYNC = (
    1, 2, 4, 8, 16, 32
)  # fmt: skip
# The flow has a concurrency limit: keys its limit hash, running counter and waiting list; argument the run id.
# Beyond the limit a request gets E:LIMIT:<reason> (skip), E:LIMITFAIL:<reason> (the run is recorded as failed) or
# waits (the result is then W:<run id>).
INGRESS_LIMITED = 64
INGRESS = (
    ENQUEUE
    + ADMIT
    + """
local cap = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local backlog = tonumber(redis.call('GET', KEYS[3]) or '0')
local added, waited = 0, 0
local refused_rate, refused_backlog = 0, 0
local strikes = {}  -- queue -> requests refused by a quota or limit (the bad-citizen watch reads them)
local function strike(q) strikes[q] = (strikes[q] or 0) + 1 end
local results = {}
local events = {}
local function gcra(key, interval, tolerance)
  if not key then return 0, 0 end
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > 0 then return nil, wait end
  return tat + interval, 0
end
local k, a = 5, 3
while a <= #ARGV do
  local flags, rev, envelope, event = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  local skey, runkey, queue = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  k = k + 3
  local bkey, body, ckey, capture, akey, files, fkey, fint, ftol, tkey, tint, ttol, reply
  if bit.band(flags, 1) ~= 0 then bkey, body, k, a = KEYS[k], ARGV[a], k + 1, a + 1 end
  if bit.band(flags, 2) ~= 0 then ckey, capture, k, a = KEYS[k], ARGV[a], k + 1, a + 1 end
  if bit.band(flags, 4) ~= 0 then akey, files, k, a = KEYS[k], ARGV[a], k + 1, a + 1 end
  if bit.band(flags, 8) ~= 0 then
    fkey, fint, ftol, k, a = KEYS[k], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), k + 1, a + 2
  end
  if bit.band(flags, 16) ~= 0 then
    tkey, tint, ttol, k, a = KEYS[k], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), k + 1, a + 2
  end
  if bit.band(flags, 32) ~= 0 then reply, a = ARGV[a], a + 1 end
  local lkey, lrun, lwait, run_id
  if bit.band(flags, 64) ~= 0 then
    lkey, lrun, lwait, run_id, k, a = KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a], k + 3, a + 1
  end
  local r
  local state = redis.call('GET', skey)
  local srev, flag
  if state then srev, flag = string.match(state, '^(%d+):(%d+)$') end
  if not srev then
    r = 'E:GONE'  -- never created, or removed (a tombstone)
  else
    if srev ~= rev then
      r = 'E:STALE'
    elseif flag == '0' or (flag ~= '1' and tonumber(flag) < now) then
      r = 'E:OFF'
    elseif cap > 0 and backlog + added + waited >= cap then
      r = 'E:BACKLOG'
      refused_backlog = refused_backlog + 1
      strike(queue)
    else
      local ftat, fwait = gcra(fkey, fint, ftol)
      local ttat, twait = gcra(tkey, tint, ttol)
      local decision = 'free'
      if not ftat or not ttat then
        r = 'E:RATE:' .. math.ceil(math.max(fwait, twait))
        refused_rate = refused_rate + 1
        strike(queue)
      elseif lkey then
        decision = admit(lkey, lrun)
        if decision == 'go' then redis.call('INCR', lrun) end
      end
      if r then
        -- refused by a rate limit
      elseif decision == 'skip' then
        r = 'E:LIMIT:' .. limit_reached(lkey)  -- the flow's own choice: no strike against it
      elseif decision == 'fail' then
        local finished = cjson.encode({t = 'run.finished', run = run_id, status = 'failed', ts = math.floor(now),
                                       started = math.floor(now), failed = 1, error = limit_reached(lkey)})
        events[#events + 1] = event
        events[#events + 1] = finished
        r = 'E:LIMITFAIL:' .. limit_reached(lkey)
      else
        if fkey then redis.call('SET', fkey, string.format('%.3f', ftat), 'PX', math.ceil(ftat - now) + 1000) end
        if tkey then redis.call('SET', tkey, string.format('%.3f', ttat), 'PX', math.ceil(ttat - now) + 1000) end
        if bkey then redis.call('SET', bkey, body) end
        if akey then redis.call('SET', akey, files, 'EX', keep) end
        redis.call('HSET', runkey, 'inflight', 1, 'failed', 0, 'leaves', 0, 'started', math.floor(now))
        if reply then redis.call('HSET', runkey, 'rt', reply) end
        if decision ~= 'free' then redis.call('HSET', runkey, 'cl', lkey, 'cc', lrun, 'cw', lwait) end
        if ckey then
          -- A test URL captures one request per listening window.
          redis.call('SET', ckey, capture, 'EX', 3600)
          redis.call('SET', skey, rev .. ':0')
        end
        if decision == 'wait' then
          redis.call('RPUSH', lwait, queue .. '\\n' .. envelope)
          r = 'W:' .. run_id
          waited = waited + 1  -- in the backlog like an accepted request, without a queue entry yet
        else
          r = enqueue(KEYS[1], KEYS[4], queue, envelope)
          added = added + 1
        end
        events[#events + 1] = event
      end
    end
  end
  results[#results + 1] = r
end
if added + waited > 0 then redis.call('INCRBY', KEYS[3], added + waited) end
if #events > 0 then redis.call('XADD', KEYS[2], '*', 'e', '[' .. table.concat(events, ',') .. ']') end
if added > 0 then ring() end
if next(strikes) then
  -- The tenant's usage bucket of this minute (TenantKeys.usage; same slot as the backlog key).
  local usage = string.gsub(KEYS[3], ':backlog$', ':usage:' .. math.floor(now / 60000))
  if refused_rate > 0 then redis.call('HINCRBY', usage, 'throttled:rate', refused_rate) end
  if refused_backlog > 0 then redis.call('HINCRBY', usage, 'throttled:backlog', refused_backlog) end
  for q, n in pairs(strikes) do redis.call('HINCRBY', usage, 'strike:quota:' .. q, n) end
  redis.call('EXPIRE', usage, 3900)
end
return results
"""
)

# Delete a queue stream that is empty (so nothing is undelivered or pending: trimming never removes a pending
# entry) and was last written to before a given time, with its bookkeeping, in one step: a script writing to
# the queue meanwhile would find it gone from the queues set and create it again with its group.
# KEYS: 1 queue stream, 2 queues set, 3 ready set, 4 queue vtimes, 5 queue costs. ARGV: 1 group,
#       2 written before (ms)
RETIRE = """
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local ms = tonumber(string.match(info[i + 1], '^(%d+)-'))
      if ms >= tonumber(ARGV[2]) then return 0 end
    end
  end
  redis.call('DEL', KEYS[1])
end
redis.call('SREM', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], KEYS[1])
redis.call('ZREM', KEYS[4], KEYS[1])
redis.call('HDEL', KEYS[5], KEYS[1])
return 1
"""

# A flow's concurrency limit was changed or lifted: waiting runs start while the flow is under its new limit
# (all of them without one).
# KEYS: 1 the flow's limit hash, 2 running counter, 3 waiting list, 4 queues set, 5 ready set.
RELEASE_WAITING = (
    ENQUEUE
    + ADMIT
    + """
local moved = release(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if moved > 0 then ring() end
return moved
"""
)

# Make a tenant's steps stream from before per-flow queues one of its queues, unless it is one already (atomic
# with RETIRE, so it never adds a stream that is gone).
# KEYS: 1 the old steps stream, 2 queues set, 3 ready set.
ADOPT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('SISMEMBER', KEYS[2], KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('SADD', KEYS[3], KEYS[1])
return 1
"""
