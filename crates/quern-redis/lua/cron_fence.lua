-- First step of moving a schedule to another queue's slot (see src/ops/schedule.rs). ARGV[4]
-- old queue, [5] name, [6] new queue, [7] new spec JSON, [8] move token. Marks the copy here
-- as moving (`mv` target, `mvs` spec, `mk` token): from now on it refuses fires (a fire is
-- answered "moving") and nothing here changes it, so the snapshot returned is final. A copy
-- already moving to the same target with the same spec keeps its token (concurrent movers
-- share one move). Returns {} when no such schedule is here, else {token, HGETALL, history
-- members oldest first}.

local q, name, to, spec = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k = qk(q, 'cron:' .. name)
if redis.call('EXISTS', k) == 0 then return {} end
local f = redis.call('HMGET', k, 'mv', 'mvs', 'mk')
local token = ARGV[8]
if f[1] == to and f[2] == spec and f[3] then
  token = f[3]
else
  redis.call('HSET', k, 'mv', to, 'mvs', spec, 'mk', token)
end
return { token, redis.call('HGETALL', k), redis.call('ZRANGE', qk(q, 'cronh:' .. name), 0, -1) }
