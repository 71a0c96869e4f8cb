-- workflow_update: compare-and-set on the revision, with the job changes of the decision.
-- Own arguments: home queue, id, expected revision, new state ('' = keep), new phase ('' =
-- keep), error mode ('' keep, 's' set, 'c' clear), error text, cancel scope ('' none, 'n'
-- not started, 'a' all), the error line recorded on each cancelled job, retry count, the
-- retry ids, then one workflow id per compensation. The compensations follow as an atomic
-- enqueue batch.
--
-- Everything that can refuse the update is checked before anything is written (a script
-- that fails half-way would leave its first writes in place): the revision, each retried
-- job (exists, belongs to the workflow, is dead, cancelled or skipped, and its trigger can
-- still be met, counting the jobs this update cancels as cancelled), then the compensations
-- (the enqueue body writes nothing when one is refused). Storing the compensations before
-- the cancel and the retry gives the same states as the documented order (cancel, retry,
-- compensations): their dependency counters follow every later change of their
-- dependencies, and the cancel acts on the jobs that were in scope before they existed.
--
-- Returns {0, HGETALL record}; {1} unknown workflow; {2, revision} conflict; {3, id} job
-- not found; {4, id} job of another workflow; {5, id, state} job not retryable; {6, id}
-- trigger can no longer be met; {7, index, message} compensation refused.

local home, wid, rev = ARGV[5], ARGV[6], ARGV[7]
local new_state, new_phase, errmode, errtext = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local scope, cancel_line = ARGV[12], ARGV[13]
local nretry = tonumber(ARGV[14])
local rk = wk(home, 'wf:' .. wid)
local cur = redis.call('HMGET', rk, 'v', 's')
if not cur[1] then return { 1 } end
if cur[1] ~= rev then return { 2, tonumber(cur[1]) } end

-- The jobs the cancel acts on, in order: blocked, scheduled, queued (then running), newest
-- first within each state, so dependents are cancelled before a dependency's cancel could
-- skip them.
local targets = {}
-- The state each job will have after this update, where the checks must assume it:
-- cancelled by the cancel below, queued again by the retry (a retry wins).
local assumed = {}
if scope ~= '' then
  local by = { [S_BLOCKED] = {}, [S_SCHED] = {}, [S_QUEUED] = {}, [S_RUNNING] = {} }
  for _, jq in ipairs(redis.call('SMEMBERS', wk(home, 'wfqs:' .. wid))) do
    for _, jid in ipairs(redis.call('SMEMBERS', qk(jq, 'wfj:' .. wid))) do
      local s = redis.call('HGET', jk(jq, jid), 's')
      if s then
        local st = tonumber(s)
        if by[st] and (scope == 'a' or st ~= S_RUNNING) then
          table.insert(by[st], { jq, jid })
        end
      end
    end
  end
  for _, st in ipairs({ S_BLOCKED, S_SCHED, S_QUEUED, S_RUNNING }) do
    table.sort(by[st], function(x, y) return x[2] > y[2] end)
    for _, t in ipairs(by[st]) do
      targets[#targets + 1] = t
      assumed[t[2]] = S_CANCELLED
    end
  end
end

-- Retry checks (as job_retry by ids, with this update's cancels counted).
local rargs = { ARGV[1], ARGV[2], ARGV[3], nretry, '0' }
local retried = {}
for x = 1, nretry do
  local id = ARGV[14 + x]
  local q
  if CLUSTER then
    if redis.call('EXISTS', jk(home, id)) == 1 then q = home end
  else
    q = queue_of(id)
  end
  if not q then return { 3, id } end
  if redis.call('SISMEMBER', qk(q, 'wfj:' .. wid), id) == 0 then return { 4, id } end
  local f = redis.call('HMGET', jk(q, id), 's', 'dl', 'dt')
  if not f[1] then return { 3, id } end
  if not retried[id] then
    local st = tonumber(f[1])
    if st ~= S_DEAD and st ~= S_CANCELLED and st ~= S_SKIPPED then return { 5, id, st } end
    if f[2] and f[2] ~= '' then
      local ok, bad, nd = count_deps(f[2], assumed)
      if resolve(tonumber(f[3]), nd, ok, bad) == S_SKIPPED then return { 6, id } end
    end
    retried[id] = true
    assumed[id] = S_QUEUED
  end
  rargs[#rargs + 1] = q
  rargs[#rargs + 1] = id
end

-- Compensations: the last step that can refuse.
local comp = {}
if HAS_JOBS then
  local wfs = {}
  for x = 15 + nretry, 4 + M do wfs[#wfs + 1] = ARGV[x] end
  local jobs, _, ej, emsg = run_enqueue(EBASE, wfs)
  if not jobs then return { 7, ej, emsg } end
  for _, j in ipairs(jobs) do comp[#comp + 1] = j.id end
end

-- From here on nothing refuses.
for _, t in ipairs(targets) do
  local jq, jid = t[1], t[2]
  local k = jk(jq, jid)
  local st = tonumber(redis.call('HGET', k, 's'))
  -- An earlier cancel in this loop may have skipped it through its dependencies.
  if st and not TERM[st] then
    unlink_live(jq, jid, st)
    add_error(k, cancel_line)
    finish(jq, jid, S_CANCELLED, nil, nil, st)
  end
end
if nretry > 0 then
  local r = RETRY(rargs)
  if r[1] ~= 0 then
    return redis.error_reply('workflow retry refused after the checks passed: ' .. tostring(r[1]))
  end
end

local fields = { 'v', tonumber(cur[1]) + 1, 'u', NOW }
if new_state ~= '' then
  redis.call('ZREM', wk(home, 'wfs:' .. cur[2]), wid)
  redis.call('ZADD', wk(home, 'wfs:' .. new_state), 0, wid)
  fields[#fields + 1] = 's'
  fields[#fields + 1] = new_state
  if new_state == '0' then
    redis.call('HDEL', rk, 'fa')
  else
    fields[#fields + 1] = 'fa'
    fields[#fields + 1] = NOW
  end
end
if new_phase ~= '' then
  fields[#fields + 1] = 'ph'
  fields[#fields + 1] = new_phase
end
if errmode == 's' then
  fields[#fields + 1] = 'er'
  fields[#fields + 1] = errtext
elseif errmode == 'c' then
  redis.call('HDEL', rk, 'er')
end
if #comp > 0 then
  local cm = redis.call('HGET', rk, 'cm')
  local add = table.concat(comp, ' ')
  if cm and cm ~= '' then add = cm .. ' ' .. add end
  fields[#fields + 1] = 'cm'
  fields[#fields + 1] = add
end
redis.call('HSET', rk, unpack(fields))
flush_wake()
return { 0, redis.call('HGETALL', rk) }
