-- Shared prelude of the workflow scripts (after lib.lua, and after the enqueue and retry
-- script bodies, which src/workflows.rs wraps as the functions ENQ(argv) and RETRY(argv) so
-- a workflow script can store jobs and reopen jobs inside its own atomic step).
--
-- Workflow keys: on a single node under the global tag `{#}`; on Redis Cluster under the
-- workflow's home queue `{<queue>}`, which every job of the workflow must share (so a
-- workflow's record, its member set and its jobs are all in one slot).
--   wf:<id>      hash: n name, s state, ph phase, v revision, sp spec JSON, tk tasks JSON,
--                cm compensation ids (space-separated), er error, c/u/fa created, updated,
--                finished
--   wfqs:<id>    set of the queues the workflow has jobs in
--   wfs:all      zset (score 0, by id) of every workflow; wfs:<state> one per state
-- and, in each of those queues' slot, `{<queue>}:wfj:<id>`: the set of the workflow's job ids
-- in that queue. Being in the queue's slot and holding bare ids, it intersects in C with the
-- queue's state structures (ready, sched, lease, blocked, the terminal sets): counts by
-- state cost a few ZINTERCARDs, not a Lua loop over every job.

local function wk(home, s)
  if CLUSTER then return qk(home, s) end
  return P .. ':{#}:' .. s
end

-- Runs the enqueue body on ARGV[base…] (its mode, count and jobs). `wfs[j]` is job j's
-- workflow id ('' = none): each stored job joins its workflow's member set.
-- Returns jobs (per job {q, id, code, st, detail}), the enqueue reply, and, when a job was
-- refused in atomic mode (then nothing was written and `jobs` is nil), its index and message.
local function run_enqueue(base, wfs)
  local t = { ARGV[1], ARGV[2], ARGV[3] }
  for x = base, #ARGV do t[#t + 1] = ARGV[x] end
  local atomic = ARGV[base] == 'a'
  local r = ENQ(t)
  local codes = r[1]
  local n = tonumber(ARGV[base + 1])
  local jobs = {}
  local i = base + 2
  for j = 1, n do
    jobs[j] = {
      id = ARGV[i], q = ARGV[i + 1],
      code = tonumber(string.sub(codes, 2 * j - 1, 2 * j - 1)),
      st = tonumber(string.sub(codes, 2 * j, 2 * j)),
    }
    i = i + 11 + tonumber(ARGV[i + 9])
  end
  for x = 2, #r, 2 do jobs[tonumber(r[x])].detail = r[x + 1] end
  if atomic then
    for j = 1, n do
      if jobs[j].code == 3 then return nil, r, j, jobs[j].detail end
    end
  end
  -- One SADD per (workflow, queue), not two per job.
  local by, order = {}, {}
  for j = 1, n do
    local w, job = wfs[j], jobs[j]
    if w and w ~= '' and job.code == 0 then
      local key = w .. '\0' .. job.q
      if not by[key] then
        by[key] = {}
        order[#order + 1] = { w, job.q, key }
      end
      table.insert(by[key], job.id)
    end
  end
  for _, o in ipairs(order) do
    slices('SADD', qk(o[2], 'wfj:' .. o[1]), by[o[3]])
    redis.call('SADD', wk(o[2], 'wfqs:' .. o[1]), o[2])
  end
  return jobs, r
end

-- ARGV[4] is the count M of the script's own arguments (ARGV[5 .. 4+M]); the enqueue
-- arguments, if any, follow from ARGV[5+M].
local M = tonumber(ARGV[4])
local EBASE = 5 + M
local HAS_JOBS = #ARGV >= EBASE
