-- workflow_counts. Own arguments: home queue, id. Returns the counts of the workflow's jobs
-- by state (8 numbers, JobState order), or {-1} for an unknown workflow. Costs O(jobs of
-- the workflow); members whose job was pruned are dropped from the set on the way.

local home, wid = ARGV[5], ARGV[6]
if redis.call('EXISTS', wk(home, 'wf:' .. wid)) == 0 then return { -1 } end
local sk = wk(home, 'wfj:' .. wid)
local out = { 0, 0, 0, 0, 0, 0, 0, 0 }
local gone = {}
for _, m in ipairs(redis.call('SMEMBERS', sk)) do
  local jq, jid = split_member(m)
  local s = redis.call('HGET', jk(jq, jid), 's')
  if s then
    local st = tonumber(s) + 1
    out[st] = out[st] + 1
  else
    gone[#gone + 1] = m
  end
end
if #gone > 0 then slices('SREM', sk, gone) end
return out
