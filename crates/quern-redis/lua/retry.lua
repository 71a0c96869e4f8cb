-- job_retry by ids. ARGV[4] count, ARGV[5] check-only flag, then per job: queue, id. Every job must exist and be
-- dead, cancelled or skipped, and its dependencies must still be able to meet its trigger;
-- else nothing changes: returns {1, index, state} (not retryable), {2, index} (missing) or
-- {3, index} (its trigger can never be met). Otherwise each moves back to queued (or
-- blocked while its dependencies are pending, recounted from their current states),
-- attempt 0, error history kept. Returns {0}.

local n = tonumber(ARGV[4])
-- ARGV[5] '1': check only (Cluster runs every queue's check before moving anything).
local check_only = ARGV[5] == '1'

-- Pass 1: check everything, change nothing.
local jobs = {}
-- Jobs retried earlier in this call count as pending (queued) for the later ones.
local retried = {}
for x = 0, n - 1 do
  local q, id = ARGV[6 + 2 * x], ARGV[7 + 2 * x]
  local k = jk(q, id)
  local f = redis.call('HMGET', k, 's', 'dl', 'dt')
  if not f[1] then return { 2, x } end
  local st = tonumber(f[1])
  if not retried[id] then
    if st ~= S_DEAD and st ~= S_CANCELLED and st ~= S_SKIPPED then return { 1, x, st } end
    local target = S_QUEUED
    if f[2] and f[2] ~= '' then
      local ok, bad, nd = count_deps(f[2], retried)
      local r = resolve(tonumber(f[3]), nd, ok, bad)
      if r == S_SKIPPED then return { 3, x } end
      if r == nil then target = S_BLOCKED end
    end
    retried[id] = S_QUEUED
    jobs[#jobs + 1] = { q, id, st, target }
  end
end

if check_only then return { 0 } end

-- Pass 2: move them.
for _, j in ipairs(jobs) do
  local q, id, st, target = j[1], j[2], j[3], j[4]
  local k = jk(q, id)
  redis.call('ZREM', qk(q, TERM[st]), id)
  fin_add(q, -fin_bytes(k))
  uncount(q, id, st)
  redis.call('HSET', k, 'a', 0)
  redis.call('HDEL', k, 'f', 't', 'k', 'lw', 'lx', 'res', 'rx', 'pg')
  redis.call('ZREM', qk(q, 'rexp'), id)
  local f = job_hmget(k, 'dl', 'p', 'r')
  if f[1] and f[1] ~= '' then
    -- Recount from the dependencies' states now (earlier jobs of this call are queued or
    -- blocked again by now) and make sure each dependency will report back.
    local ok, bad = count_deps(f[1], {})
    redis.call('HSET', k, 'dk', ok, 'db', bad)
    for m in string.gmatch(f[1], '%S+') do
      local dq, did = split_member(m)
      if redis.call('EXISTS', jk(dq, did)) == 1 then
        redis.call('SADD', qk(dq, 'dn:' .. did), q .. '/' .. id)
        redis.call('HSET', jk(dq, did), 'hd', 1)
      end
    end
  end
  if target == S_BLOCKED then
    redis.call('HSET', k, 's', S_BLOCKED)
    redis.call('SADD', qk(q, 'blocked'), id)
  else
    redis.call('HSET', k, 's', S_QUEUED)
    ready_add(q, id, score(tonumber(f[2]), tonumber(f[3])))
    mark_wake(q)
  end
  event(q, id, st, target)
end
flush_wake()
return { 0 }
