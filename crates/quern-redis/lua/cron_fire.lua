-- schedule_fire, in the slot of the template's queue: the checks, the tick's job (through
-- the enqueue script body, ENQ, so unique keys and every other rule are the enqueue's own)
-- and the run's record, in one atomic step. ARGV[4] is the count M of own arguments:
-- [5] queue, [6] name, [7] revision, [8] tick, [9] run kind code, [10] '1' for a scheduled
-- run or skip (checked, and moves the watermark, runs, last_tick, last_job) or '0' for a
-- manual one, [11] history size, [12] '1' when the caller's job is not in this queue (then
-- no job is sent: refused, unless the revision is stale, which is what the caller must
-- hear after a change of the template's queue); an atomic one-job enqueue batch follows
-- from ARGV[5+M] when the run has a job. Nothing is written unless the run is recorded.
-- Returns {0, job id, 1 if a duplicate else 0} fired, {1} skipped, {2} already fired,
-- {3} paused, {4} ended, {5} stale, {6} no such schedule, {7, message} job refused,
-- {8} the schedule is being moved to another queue, {9} the job is not in this queue.

local M = tonumber(ARGV[4])
local EBASE = 5 + M
local q, name, tick, kind = ARGV[5], ARGV[6], ARGV[8], ARGV[9]
local checked = ARGV[10] == '1'
local k = qk(q, 'cron:' .. name)
local f = redis.call('HMGET', k, 'v', 'pa', 'n', 'lim', 'w', 'mv')
if not f[1] then return { 6 } end
if f[6] then return { 8 } end
if checked then
  if f[1] ~= ARGV[7] then return { 5 } end
  if ARGV[12] == '1' then return { 9 } end
  if f[2] == '1' then return { 3 } end
  if f[4] and tonumber(f[3]) >= tonumber(f[4]) then return { 4 } end
  if tonumber(tick) <= tonumber(f[5]) then return { 2 } end
end
local jid, dup = '', 0
if #ARGV >= EBASE then
  local t = { ARGV[1], ARGV[2], ARGV[3] }
  for x = EBASE, #ARGV do t[#t + 1] = ARGV[x] end
  local r = ENQ(t)
  local code = string.sub(r[1], 1, 1)
  if code == '3' then return { 7, r[3] } end
  if code == '1' then
    jid, dup, kind = r[3], 1, '1'
  else
    jid = ARGV[EBASE + 2]
  end
end
-- History member: sequence number (record order, zero-padded so members of one tick sort
-- by it), tick, recorded at, kind, job id ('-' = none); scored by the tick.
local seq = redis.call('HINCRBY', k, 'hs', 1)
local hk = qk(q, 'cronh:' .. name)
local j = jid
if j == '' then j = '-' end
redis.call('ZADD', hk, tick, string.format('%012d', seq) .. ' ' .. tick .. ' ' .. NOWS .. ' ' .. kind .. ' ' .. j)
local cap = tonumber(ARGV[11])
if redis.call('ZCARD', hk) > cap then redis.call('ZREMRANGEBYRANK', hk, 0, -(cap + 1)) end
if checked then
  redis.call('HSET', k, 'w', tick, 'lt', tick)
  redis.call('HINCRBY', k, 'n', 1)
  if jid ~= '' then redis.call('HSET', k, 'lj', jid) end
end
if jid == '' then return { 1 } end
return { 0, jid, dup }
