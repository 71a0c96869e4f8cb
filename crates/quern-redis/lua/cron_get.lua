-- schedule_get / schedule_runs / schedule_list: one schedule and its latest runs. ARGV[4]
-- queue, [5] name, [6] how many runs (newest first). Returns {} when the slot holds no
-- schedule of that name, else {HGETALL, runs}.

local q, name = ARGV[4], ARGV[5]
local k = qk(q, 'cron:' .. name)
local f = redis.call('HGETALL', k)
if #f == 0 then return {} end
local n = tonumber(ARGV[6])
local runs = {}
if n > 0 then runs = redis.call('ZREVRANGE', qk(q, 'cronh:' .. name), 0, n - 1) end
return { f, runs }
