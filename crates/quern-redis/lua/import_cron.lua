-- store_import, one schedule, verbatim, in the slot of its template's queue (the caller has
-- claimed the name in the global index first). ARGV[4] queue, [5] name, [6] field count F,
-- then F field/value pairs (sp v pa c u w n lt lj lim hs), then the history members, oldest
-- first (`seq tick fired_at kind job`, as cron_fire.lua writes them). Returns 0 stored, 1 a
-- schedule of that name is already in this slot.

local q, name = ARGV[4], ARGV[5]
local k, hk = qk(q, 'cron:' .. name), qk(q, 'cronh:' .. name)
if redis.call('EXISTS', k) == 1 then return 1 end
local nf = tonumber(ARGV[6])
local fields = {}
for x = 7, 6 + 2 * nf do fields[#fields + 1] = ARGV[x] end
redis.call('HSET', k, unpack(fields))
for x = 7 + 2 * nf, #ARGV do
  redis.call('ZADD', hk, string.match(ARGV[x], '^%d+ (%-?%d+) '), ARGV[x])
end
redis.call('SADD', qk(q, 'crons'), name)
return 0
