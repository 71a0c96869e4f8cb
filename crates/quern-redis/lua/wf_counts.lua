-- workflow_counts. Own arguments: home queue, id. Returns the counts of the workflow's jobs
-- by state (8 numbers, JobState order), or {-1} for an unknown workflow. Per queue the
-- workflow uses, its member set is intersected with the queue's structure of each state
-- (ZINTERCARD / SINTERCARD, in C): O(jobs of the workflow) with a small constant, no Lua
-- loop per job. Pruned jobs are in no state structure, so they are not counted.

local home, wid = ARGV[5], ARGV[6]
if redis.call('EXISTS', wk(home, 'wf:' .. wid)) == 0 then return { -1 } end
local out = { 0, 0, 0, 0, 0, 0, 0, 0 }
local where = { 'sched', 'ready', 'blocked', 'lease', 'succeeded', 'dead', 'cancelled', 'skipped' }
for _, q in ipairs(redis.call('SMEMBERS', wk(home, 'wfqs:' .. wid))) do
  local sk = qk(q, 'wfj:' .. wid)
  for i, name in ipairs(where) do
    if name == 'blocked' then
      out[i] = out[i] + redis.call('SINTERCARD', 2, sk, qk(q, name))
    else
      out[i] = out[i] + redis.call('ZINTERCARD', 2, sk, qk(q, name))
    end
  end
end
return out
