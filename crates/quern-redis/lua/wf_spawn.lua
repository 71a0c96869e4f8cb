-- job_fail with FailAction::Spawn. Own arguments: queue, id, epoch, checkpoint flag ('1'
-- = set), checkpoint, then one workflow id per child. The children follow as an atomic
-- enqueue batch.
-- In one step: the children are stored; the parent forgets the edges from its old
-- dependencies, waits on the children instead (trigger all_done, counters counting the
-- children already terminal, `dl` listing them in order, `sp` marking that `dl`/`dt` now
-- override the dependencies of its static blob), its attempt is not counted and its lease
-- ends; it is queued at once when no child is pending.
-- Returns {1}; {0} when the token is stale; {2, index, message} when a child was refused
-- (nothing written).

local q, id, epoch, cpf, cp = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local wfs = {}
for x = 10, 4 + M do wfs[#wfs + 1] = ARGV[x] end
local k = jk(q, id)
local f = job_hmget(k, 's', 'e', 'dl', 'a', 'p', 'r')
if f[1] ~= '3' or f[2] ~= epoch then return { 0 } end
local jobs = {}
if HAS_JOBS then
  local _, ej, emsg
  jobs, _, ej, emsg = run_enqueue(EBASE, wfs)
  if not jobs then return { 2, ej, emsg } end
end
local member = q .. '/' .. id
if f[3] and f[3] ~= '' then
  for m in string.gmatch(f[3], '%S+') do
    local dq, did = split_member(m)
    redis.call('SREM', qk(dq, 'dn:' .. did), member)
  end
end
local seen, list, ok, bad = {}, {}, 0, 0
for _, j in ipairs(jobs) do
  local cid = j.id
  -- A unique-key duplicate was not stored: the parent waits on the job that holds the key.
  if j.code == 1 then cid = j.detail end
  if not seen[cid] then
    seen[cid] = true
    list[#list + 1] = j.q .. '/' .. cid
    redis.call('SADD', qk(j.q, 'dn:' .. cid), member)
    redis.call('HSET', jk(j.q, cid), 'hd', 1)
    if j.st == S_OK then ok = ok + 1 elseif TERM[j.st] then bad = bad + 1 end
  end
end
redis.call('ZREM', qk(q, 'lease'), id)
local a = tonumber(f[4]) or 0
if a > 0 then a = a - 1 end
redis.call('HDEL', k, 'lw', 'lx')
if cpf == '1' then redis.call('HSET', k, 'cp', cp) end
redis.call('HSET', k, 'a', a, 'dt', 1, 'dn', #list, 'dk', ok, 'db', bad, 'dl', table.concat(list, ' '), 'sp', 1)
if ok + bad == #list then
  make_ready(q, id, tonumber(f[5]), tonumber(f[6]), S_RUNNING)
else
  redis.call('HSET', k, 's', S_BLOCKED)
  redis.call('SADD', qk(q, 'blocked'), id)
  event(q, id, S_RUNNING, S_BLOCKED)
end
flush_wake()
return { 1 }
