-- job_retry by ids. ARGV[4] count, then per job: queue, id. Every job must exist and be
-- dead, cancelled or skipped, else nothing changes: returns {1, index, state} or {2, index}
-- (missing). Otherwise each moves back to queued (or blocked while its dependencies are
-- pending, recounted from their current states), attempt 0, error history kept.
-- Returns {0}.

local n = tonumber(ARGV[4])
local jobs = {}
for x = 0, n - 1 do
  local q, id = ARGV[5 + 2 * x], ARGV[6 + 2 * x]
  local s = redis.call('HGET', jk(q, id), 's')
  if not s then return { 2, x } end
  local st = tonumber(s)
  if st ~= S_DEAD and st ~= S_CANCELLED and st ~= S_SKIPPED then return { 1, x, st } end
  jobs[x + 1] = { q, id, st }
end
for _, j in ipairs(jobs) do
  local q, id, st = j[1], j[2], j[3]
  local k = jk(q, id)
  -- A job listed twice is handled once.
  if tonumber(redis.call('HGET', k, 's')) == st then
    redis.call('ZREM', qk(q, TERM[st]), id)
    uncount(q, id, st)
    redis.call('HSET', k, 'a', 0)
    redis.call('HDEL', k, 'f', 'lw', 'lx', 'res', 'rx', 'pg')
    redis.call('ZREM', qk(q, 'rexp'), id)
    local f = redis.call('HMGET', k, 'dl', 'dt', 'p', 'r')
    local target = S_QUEUED
    if f[1] and f[1] ~= '' then
      local ok, bad, nd = 0, 0, 0
      for m in string.gmatch(f[1], '%S+') do
        nd = nd + 1
        local dq, did = split_member(m)
        local ds = redis.call('HGET', jk(dq, did), 's')
        -- A pruned dependency finished long ago; count it as done without success.
        local dst = S_DEAD
        if ds then dst = tonumber(ds) end
        if dst == S_OK then ok = ok + 1 elseif TERM[dst] then bad = bad + 1 end
        redis.call('SADD', qk(dq, 'dn:' .. did), q .. '/' .. id)
      end
      redis.call('HSET', k, 'dk', ok, 'db', bad)
      -- An operator retry runs the job once its dependencies allow, or now if they never
      -- will (the retry overrides the skip).
      if resolve(tonumber(f[2]), nd, ok, bad) == nil then target = S_BLOCKED end
    end
    if target == S_BLOCKED then
      redis.call('HSET', k, 's', S_BLOCKED)
      redis.call('SADD', qk(q, 'blocked'), id)
    else
      redis.call('HSET', k, 's', S_QUEUED)
      redis.call('ZADD', qk(q, 'ready'), score(tonumber(f[3]), tonumber(f[4])), id)
      mark_wake(q)
    end
  end
end
flush_wake()
return { 0 }
