-- schedule_delete, and the last step of a move. ARGV[4] queue, [5] name, [6] move token
-- ('' = delete whatever is here; else only a copy carrying this token), [7] '1': only a copy
-- still moving (the move's last step; a move called off keeps its copy). See
-- src/ops/schedule.rs. Deletes the schedule and its history (its jobs stay). Returns {} when
-- nothing was deleted, else {HGETALL}.

local q, name, token = ARGV[4], ARGV[5], ARGV[6]
local k = qk(q, 'cron:' .. name)
local f = redis.call('HGETALL', k)
if #f == 0 then return {} end
if token ~= '' then
  local m = redis.call('HMGET', k, 'mk', 'mv')
  if m[1] ~= token or (ARGV[7] == '1' and not m[2]) then return {} end
end
redis.call('DEL', k, qk(q, 'cronh:' .. name))
redis.call('SREM', qk(q, 'crons'), name)
return { f }
