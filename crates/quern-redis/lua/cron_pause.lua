-- schedule_pause / schedule_resume. ARGV[4] queue, [5] name, [6] '1' pause or '0' resume.
-- A change bumps the revision; resuming moves the watermark to now (if it was earlier), so
-- ticks that passed while paused never fire. Returns {} when no such schedule is here,
-- {2, target} when it is being moved to queue `target`, else {code, HGETALL}: code 1 changed,
-- 0 already so.

local q, name, pause = ARGV[4], ARGV[5], ARGV[6]
local k = qk(q, 'cron:' .. name)
local f = redis.call('HMGET', k, 'pa', 'mv', 'w')
if not f[1] then return {} end
if f[2] then return { 2, f[2] } end
if f[1] == pause then return { 0, redis.call('HGETALL', k) } end
redis.call('HSET', k, 'pa', pause, 'u', NOWS)
redis.call('HINCRBY', k, 'v', 1)
if pause == '0' and tonumber(f[3]) < NOW then redis.call('HSET', k, 'w', NOWS) end
return { 1, redis.call('HGETALL', k) }
