-- workflow_create. Own arguments: home queue, id, name, spec JSON, tasks JSON, then one
-- workflow id per job (all equal to the id). The task jobs follow as an atomic enqueue batch.
-- Returns {0}; {1} when the id is taken; {2, index, message} when a job was refused.
-- Nothing is written unless everything is.

local home, wid, name, spec, tasks = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local wfs = {}
for x = 10, 4 + M do wfs[#wfs + 1] = ARGV[x] end
local rk = wk(home, 'wf:' .. wid)
if redis.call('EXISTS', rk) == 1 then return { 1 } end
if HAS_JOBS then
  local jobs, _, ej, emsg = run_enqueue(EBASE, wfs)
  if not jobs then return { 2, ej, emsg } end
end
redis.call('HSET', rk, 'n', name, 's', 0, 'ph', 0, 'v', 1, 'sp', spec, 'tk', tasks, 'c', NOW, 'u', NOW)
redis.call('ZADD', wk(home, 'wfs:all'), 0, wid)
redis.call('ZADD', wk(home, 'wfs:0'), 0, wid)
return { 0 }
