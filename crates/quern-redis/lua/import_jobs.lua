-- store_import, jobs: stores jobs verbatim, in any state, with every structure a natively
-- stored job of that state is in (see src/ops/import.rs). ARGV[4] 'r' (refuse an id already
-- stored) or 's' (skip it), ARGV[5] job count, then per job 25 fields and the dependencies:
-- id, queue, state, priority, max_attempts, run_at, created, epoch, attempt, claimed ('' =
-- none), started (''), finished (''), unique key (''), unique window end (''), trigger,
-- static blob, result ('' = none), result expiry (''), checkpoint (''), progress JSON (''),
-- error history lines (''), workflow id (''), group (''), kind (for the job
-- events' stream), dependency count, dependency ids (distinct).
-- Everything is checked before anything is written (a script that fails half-way keeps its
-- writes). Returns {codes} (one character per job: '0' stored, '1' skipped), or
-- {'e', index, message} with nothing written.

local skip = ARGV[4] == 's'
local n = tonumber(ARGV[5])

-- The live holder of a unique key, as enqueue.lua's `unique_live` reads it.
local function holder_live(q, key)
  local uid = redis.call('HGET', qk(q, 'uniq'), key)
  if not uid then return false end
  local f = redis.call('HMGET', jk(q, uid), 's', 'ux')
  if not f[1] then return false end
  local st = tonumber(f[1])
  if st < S_OK then return true end
  return st == S_OK and f[2] ~= false and NOW < tonumber(f[2])
end

local function wfk(q, s)
  if CLUSTER then return qk(q, s) end
  return P .. ':{#}:' .. s
end

local jobs, codes = {}, {}
-- States of the jobs of this call, by id (dependencies may come earlier in the call).
local bstate, bqueue = {}, {}
local i = 6
for j = 1, n do
  local a = {}
  for x = 0, 24 do a[x + 1] = ARGV[i + x] end
  local nd = tonumber(a[25])
  local deps = {}
  for x = 1, nd do deps[x] = ARGV[i + 24 + x] end
  i = i + 25 + nd
  local job = {
    id = a[1], q = a[2], st = tonumber(a[3]), prio = a[4], max = a[5], run_at = tonumber(a[6]),
    created = a[7], epoch = a[8], attempt = a[9], claimed = a[10], started = a[11],
    finished = a[12], ukey = a[13], ux = a[14], trig = tonumber(a[15]), d = a[16], res = a[17],
    rx = a[18], cp = a[19], pg = a[20], er = a[21], wid = a[22], g = a[23], kind = a[24],
    deps = deps,
  }
  jobs[j] = job
  local q, id = job.q, job.id
  local there
  if bstate[id] then
    there = true
  elseif CLUSTER then
    there = redis.call('EXISTS', jk(q, id)) == 1
  else
    local eq = queue_of(id)
    there = eq and redis.call('EXISTS', jk(eq, id)) == 1
  end
  if there then
    if not skip then return { 'e', j, 'a job with id ' .. id .. ' is already stored' } end
    codes[j] = '1'
  else
    local ok, bad = 0, 0
    job.resolved = {}
    for x, dep in ipairs(deps) do
      local dq, dst
      if bstate[dep] then
        dq, dst = bqueue[dep], bstate[dep]
      else
        if CLUSTER then dq = q else dq = queue_of(dep) end
        if dq then dst = tonumber(redis.call('HGET', jk(dq, dep), 's')) end
      end
      if not dst and job.st ~= S_BLOCKED then
        -- A settled job may name dependencies pruned before the copy: its list is kept
        -- as it was, nothing is counted or linked for them.
        dq = q
      elseif not dst then
        local msg = 'unknown dependency ' .. dep
        if CLUSTER then msg = msg .. ' in queue ' .. q .. ' (on Redis Cluster a job can depend only on jobs in its own queue)' end
        return { 'e', j, msg }
      end
      if dst and CLUSTER and dq ~= q then
        return { 'e', j, 'dependency ' .. dep .. ' is in queue ' .. dq .. ': on Redis Cluster a job can depend only on jobs in its own queue' }
      end
      if dst == S_OK then ok = ok + 1 elseif dst and TERM[dst] then bad = bad + 1 end
      job.resolved[x] = { dq, dep, dst ~= nil }
    end
    -- A blocked job whose dependencies already settle its trigger is settled as an enqueue
    -- would settle it.
    if job.st == S_BLOCKED and #deps > 0 then
      local r = resolve(job.trig, #deps, ok, bad)
      if r == S_QUEUED then
        if job.run_at > NOW then job.st = S_SCHED else job.st = S_QUEUED end
      elseif r == S_SKIPPED then
        job.st = S_SKIPPED
        job.finished = NOWS
      end
    end
    job.ok, job.bad = ok, bad
    job.new = true
    bstate[id], bqueue[id] = job.st, q
    codes[j] = '0'
  end
end

for _, job in ipairs(jobs) do
  if job.new then
    local q, id, st = job.q, job.id, job.st
    local k = jk(q, id)
    hset_static(k, job.d, { 's', st, 'p', job.prio, 'm', job.max, 'r', job.run_at, 'c', job.created,
      'e', job.epoch, 'a', job.attempt, 'v1', ev_line(nil, st, job.attempt), 'vn', '1' })
    ev_rec(q, id, nil, st, job.attempt, job.kind)
    for _, f in ipairs({ { 'k', job.claimed }, { 't', job.started }, { 'f', job.finished },
      { 'res', job.res }, { 'rx', job.rx }, { 'cp', job.cp }, { 'pg', job.pg }, { 'er', job.er } }) do
      if f[2] ~= '' then redis.call('HSET', k, f[1], f[2]) end
    end
    -- The group before the job joins the ready set: a grouped queue's ready jobs are also
    -- in their group's set (ready_add), and the first grouped job turns the queue grouped.
    if job.g ~= '' then
      redis.call('HSET', k, 'g', job.g)
      mark_grouped(q)
    end
    if job.ukey ~= '' then
      redis.call('HSET', k, 'u', job.ukey)
      if job.ux ~= '' then redis.call('HSET', k, 'ux', job.ux) end
      if not holder_live(q, job.ukey) then redis.call('HSET', qk(q, 'uniq'), job.ukey, id) end
    end
    local nd = #job.deps
    if nd > 0 then
      local list = {}
      for x, r in ipairs(job.resolved) do
        list[x] = r[1] .. '/' .. r[2]
        if r[3] then
          redis.call('SADD', qk(r[1], 'dn:' .. r[2]), q .. '/' .. id)
          redis.call('HSET', jk(r[1], r[2]), 'hd', 1)
        end
      end
      redis.call('HSET', k, 'dt', job.trig, 'dn', nd, 'dk', job.ok, 'db', job.bad, 'dl', table.concat(list, ' '))
    end
    redis.call('ZADD', qk(q, 'ids'), 0, id)
    if not CLUSTER then
      redis.call('SADD', QUEUES, q)
      redis.call('HSET', IDX, id, q)
    end
    if job.rx ~= '' and job.res ~= '' then redis.call('ZADD', qk(q, 'rexp'), job.rx, id) end
    if st == S_QUEUED then
      ready_add(q, id, score(tonumber(job.prio), job.run_at))
      mark_wake(q)
    elseif st == S_SCHED then
      redis.call('ZADD', qk(q, 'sched'), job.run_at, id)
      mark_wake(q)
    elseif st == S_BLOCKED then
      redis.call('SADD', qk(q, 'blocked'), id)
    else
      redis.call('ZADD', qk(q, TERM[st]), tonumber(job.finished) or NOW, id)
      fin_add(q, fin_bytes(k))
    end
    if job.wid ~= '' then
      redis.call('SADD', qk(q, 'wfj:' .. job.wid), id)
      redis.call('SADD', wfk(q, 'wfqs:' .. job.wid), q)
    end
  end
end
flush_wake()
return { table.concat(codes) }
