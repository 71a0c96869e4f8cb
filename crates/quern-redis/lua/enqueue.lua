-- job_enqueue. ARGV[4] 'a' (atomic) or 'b' (best effort), ARGV[5] job count, then per job:
-- id, queue, priority, max_attempts, run_at, static blob, unique key ('' = none),
-- unique_for ms ('' = none), trigger (0/1/2), dependency count, dependency ids (distinct),
-- kind (for the job events);
-- then, only when some job has a group, one group per job ('' = none).
-- Per job a code: 0 stored, 1 unique-key duplicate (of an existing job), 2 same id already
-- stored with the same content (an idempotent resend), 3 error. In atomic mode nothing is
-- written when any job has code 3. Returns, compactly (a batch can be thousands of jobs):
-- {codes, details…}: `codes` has two digits per job (code, state; state 9 for errors),
-- `details` a pair (1-based index, existing id or error message) per job with code 1 or 3.

local atomic = ARGV[4] == 'a'
local n = tonumber(ARGV[5])

-- A unique key's holder, if it still holds: while the job is not terminal (however long it
-- waits); after success only until its window ends; never once it ended dead, cancelled or
-- skipped.
local function unique_live(q, key)
  local uid = redis.call('HGET', qk(q, 'uniq'), key)
  if not uid then return nil end
  local f = redis.call('HMGET', jk(q, uid), 's', 'ux')
  if not f[1] then return nil end
  local st = tonumber(f[1])
  if st < S_OK then return uid, st end
  if st == S_OK and f[2] and NOW < tonumber(f[2]) then return uid, st end
  return nil
end

local jobs = {}
local out = {}
-- Single node: one lookup for every id of the batch in the id index.
local known = {}
if not CLUSTER and n > 0 then
  local ids, x = {}, 6
  for j = 1, n do
    ids[j] = ARGV[x]
    x = x + 11 + tonumber(ARGV[x + 9])
  end
  -- In slices: unpack() is limited by the Lua stack (a spawn can store 10,000 jobs).
  for s = 1, n, 4000 do
    local e = math.min(s + 3999, n)
    local qs = redis.call('HMGET', IDX, unpack(ids, s, e))
    for j = s, e do
      if qs[j - s + 1] then known[ids[j]] = qs[j - s + 1] end
    end
  end
end
local bstate, bqueue, bindex, alias, buniq = {}, {}, {}, {}, {}
local failed = false
local i = 6
for j = 1, n do
  local job = {
    id = ARGV[i], q = ARGV[i + 1], prio = tonumber(ARGV[i + 2]), max = ARGV[i + 3],
    run_at = tonumber(ARGV[i + 4]), d = ARGV[i + 5], ukey = ARGV[i + 6], ufor = ARGV[i + 7],
    trig = tonumber(ARGV[i + 8]), deps = {},
  }
  local nd = tonumber(ARGV[i + 9])
  for x = 1, nd do job.deps[x] = ARGV[i + 9 + x] end
  job.kind = ARGV[i + 10 + nd]
  i = i + 11 + nd
  jobs[j] = job
  local q, id = job.q, job.id

  -- Same id already stored (in this batch or before): an idempotent resend if the content
  -- matches, an error otherwise.
  local eq, ed, est
  if bstate[id] then
    eq, ed, est = bqueue[id], jobs[bindex[id]].d, bstate[id]
  else
    if CLUSTER then
      if redis.call('EXISTS', jk(q, id)) == 1 then eq = q end
    else
      eq = known[id]
    end
    if eq then
      ed = hget_static(jk(eq, id))
      est = tonumber(redis.call('HGET', jk(eq, id), 's'))
      if not ed then eq = nil end
    end
  end
  if eq then
    if ed == job.d and eq == q then
      out[j] = { 2, id, est }
    else
      out[j] = { 3, id, 'job id ' .. id .. ' is already used by another job' }
      failed = true
    end
  end

  -- Unique key held by a live job (earlier in this batch, or stored).
  if not out[j] and job.ukey ~= '' then
    local bk = q .. '\0' .. job.ukey
    local uid, ust = buniq[bk], nil
    if uid then
      ust = bstate[uid]
    else
      uid, ust = unique_live(q, job.ukey)
    end
    if uid then
      alias[id] = uid
      out[j] = { 1, uid, ust }
    end
  end

  -- Dependencies: each must exist (stored, or earlier in this batch). Count their outcomes.
  if not out[j] then
    local ok, bad = 0, 0
    job.resolved = {}
    for x, dep0 in ipairs(job.deps) do
      local dep = alias[dep0] or dep0
      local dq, dst = nil, nil
      if bstate[dep] then
        dq, dst = bqueue[dep], bstate[dep]
      else
        if CLUSTER then
          if redis.call('EXISTS', jk(q, dep)) == 1 then dq = q end
        else
          dq = queue_of(dep)
        end
        if dq then dst = tonumber(redis.call('HGET', jk(dq, dep), 's')) end
      end
      if not dst then
        local msg = 'dependency ' .. dep0 .. ' does not exist'
        if CLUSTER then msg = msg .. ' in queue ' .. q .. ' (on Redis Cluster a job can depend only on jobs in its own queue)' end
        out[j] = { 3, id, msg }
        failed = true
        break
      end
      if CLUSTER and dq ~= q then
        out[j] = { 3, id, 'dependency ' .. dep0 .. ' is in queue ' .. dq .. ': on Redis Cluster a job can depend only on jobs in its own queue' }
        failed = true
        break
      end
      if dst == S_OK then ok = ok + 1 elseif TERM[dst] then bad = bad + 1 end
      job.resolved[x] = { dq, dep }
    end
    if not out[j] then
      local st
      local nd2 = #job.deps
      if nd2 == 0 then
        st = S_QUEUED
      else
        st = resolve(job.trig, nd2, ok, bad) or S_BLOCKED
      end
      if st == S_QUEUED and job.run_at > NOW then st = S_SCHED end
      job.st, job.ok, job.bad = st, ok, bad
      job.new = true
      bstate[id], bqueue[id], bindex[id] = st, q, j
      if job.ukey ~= '' then buniq[q .. '\0' .. job.ukey] = id end
      out[j] = { 0, id, st }
    end
  end
end

-- The groups, after the last job's arguments.
if #ARGV >= i then
  for j = 1, n do jobs[j].g = ARGV[i + j - 1] end
end

local function reply()
  local codes, details = {}, {}
  for j = 1, n do
    local o = out[j]
    if o[1] == 3 then
      codes[j] = '39'
      details[#details + 1] = j
      details[#details + 1] = o[3]
    else
      codes[j] = o[1] .. o[3]
      if o[1] == 1 then
        details[#details + 1] = j
        details[#details + 1] = o[2]
      end
    end
  end
  local r = { table.concat(codes) }
  for _, d in ipairs(details) do r[#r + 1] = d end
  return r
end

if failed and atomic then
  return reply()
end

-- Per queue, the entries for the ready set and the id list (one multi-member ZADD each),
-- and the id index (one HSET).
local ready, ids, idx, seenq = {}, {}, {}, {}
for _, job in ipairs(jobs) do
  if job.new then
    local q, id, st = job.q, job.id, job.st
    local k = jk(q, id)
    if not seenq[q] then
      seenq[q] = true
      ready[q], ids[q] = {}, {}
      if not CLUSTER then redis.call('SADD', QUEUES, q) end
    end
    hset_static(k, job.d, { 's', st, 'p', job.prio, 'm', job.max, 'r', job.run_at, 'c', NOW })
    -- The creation's event: derived from `c` and `r` when the timeline is read, unless
    -- an actor asked for it or the job has dependencies (its first state depends on
    -- theirs), which store the line.
    ev_rec(q, id, nil, st, '0', job.kind)
    if ACTOR or #job.deps > 0 then ev_keep(k, ev_line(nil, st, '0')) end
    if job.g and job.g ~= '' then
      redis.call('HSET', k, 'g', job.g)
      mark_grouped(q)
    end
    if job.ukey ~= '' then
      redis.call('HSET', k, 'u', job.ukey)
      if job.ufor ~= '' then redis.call('HSET', k, 'ux', NOW + tonumber(job.ufor)) end
      redis.call('HSET', qk(q, 'uniq'), job.ukey, id)
    end
    local nd = #job.deps
    if nd > 0 then
      local list = {}
      for x, r in ipairs(job.resolved) do
        list[x] = r[1] .. '/' .. r[2]
        redis.call('SADD', qk(r[1], 'dn:' .. r[2]), q .. '/' .. id)
        redis.call('HSET', jk(r[1], r[2]), 'hd', 1)
      end
      redis.call('HSET', k, 'dt', job.trig, 'dn', nd, 'dk', job.ok, 'db', job.bad, 'dl', table.concat(list, ' '))
    end
    local iq = ids[q]
    iq[#iq + 1] = 0
    iq[#iq + 1] = id
    if not CLUSTER then
      idx[#idx + 1] = id
      idx[#idx + 1] = q
    end
    if st == S_QUEUED then
      local rq = ready[q]
      rq[#rq + 1] = score(job.prio, job.run_at)
      rq[#rq + 1] = id
      mark_wake(q)
    elseif st == S_SCHED then
      redis.call('ZADD', qk(q, 'sched'), job.run_at, id)
      mark_wake(q)
    elseif st == S_BLOCKED then
      redis.call('SADD', qk(q, 'blocked'), id)
    else
      redis.call('HSET', k, 'f', NOW)
      redis.call('ZADD', qk(q, TERM[st]), NOW, id)
      fin_add(q, fin_bytes(k))
    end
  end
end
for q, _ in pairs(seenq) do
  if #ready[q] > 0 then
    slices('ZADD', qk(q, 'ready'), ready[q])
    if is_grouped(q) then
      local rq = ready[q]
      for x = 1, #rq, 2 do
        group_ready(q, redis.call('HGET', jk(q, rq[x + 1]), 'g') or '', rq[x], rq[x + 1])
      end
    end
  end
  slices('ZADD', qk(q, 'ids'), ids[q])
end
if #idx > 0 then slices('HSET', IDX, idx) end
flush_wake()
return reply()
