-- job_fail with FailAction::Skip. Own arguments: queue, id, epoch, error line.
-- running → skipped: the attempt is not counted, the reason is recorded, dependents are
-- settled as for any skip (transitively). Returns 1, or 0 when the token is stale.

local q, id, epoch, line = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local k = jk(q, id)
local f = redis.call('HMGET', k, 's', 'e', 'a', 'hd', 'k', 'r')
if f[1] ~= '3' or f[2] ~= epoch then return 0 end
redis.call('ZREM', qk(q, 'lease'), id)
local a = tonumber(f[3]) or 0
if a > 0 then redis.call('HSET', k, 'a', a - 1) end
add_error(k, err_times(line, f[5], f[6], nil))
finish(q, id, S_SKIPPED, f[4] == '1', nil, nil, string.format('%d', math.max(a - 1, 0)))
flush_wake()
return 1
