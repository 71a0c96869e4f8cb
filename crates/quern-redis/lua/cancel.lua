-- job_cancel. ARGV[4] queue, ARGV[5] id, ARGV[6] error line ('' = none recorded).
-- A job that is not terminal ends cancelled (a running job's lease is revoked: its worker
-- gets LeaseLost next time) and its dependents are settled.
-- Returns {0, HGETALL} on success, {1, state} when the job is terminal, {2} when missing.

local q, id, line = ARGV[4], ARGV[5], ARGV[6]
local k = jk(q, id)
local s = redis.call('HGET', k, 's')
if not s then return { 2 } end
local st = tonumber(s)
if TERM[st] then return { 1, st } end
unlink_live(q, id, st)
-- A running job's record carries its claim time (the timeline's start of the attempt).
if line ~= '' then
  local claimed = nil
  if st == S_RUNNING then claimed = redis.call('HGET', k, 'k') end
  add_error(k, err_times(line, claimed, nil, nil))
end
finish(q, id, S_CANCELLED, nil, nil, st)
flush_wake()
return { 0, redis.call('HGETALL', k) }
