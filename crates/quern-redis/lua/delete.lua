-- job_delete by ids. ARGV[4] count, ARGV[5] check-only flag ('1': check, change nothing; a
-- dry run, or the first phase on Cluster), then per job: queue, id. Every job must exist and
-- be finished (succeeded, dead, cancelled, skipped), else nothing changes: returns
-- {1, index, state} (live) or {2, index} (missing). Otherwise each is deleted as prune.lua
-- deletes: its hash, unique key, dependents list, logs and set memberships. Returns
-- {0, deleted}.

local n = tonumber(ARGV[4])
local check_only = ARGV[5] == '1'
local jobs, seen = {}, {}
for x = 0, n - 1 do
  local q, id = ARGV[6 + 2 * x], ARGV[7 + 2 * x]
  local st = redis.call('HGET', jk(q, id), 's')
  if not st then return { 2, x } end
  st = tonumber(st)
  if not TERM[st] then return { 1, x, st } end
  if not seen[id] then
    seen[id] = true
    jobs[#jobs + 1] = { q, id, st }
  end
end
if check_only then return { 0, #jobs } end

for _, j in ipairs(jobs) do
  drop_finished(j[1], j[2], j[3])
end
flush_events()
return { 0, #jobs }
