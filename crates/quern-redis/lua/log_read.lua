-- job_logs. ARGV[4] queue, ARGV[5] id, ARGV[6] after (seq), ARGV[7] limit. Returns {} for a
-- job that does not exist, else {dropped, entries...}: the kept entries with seq > after,
-- oldest first. The kept lines are seq `n - l` … `n - 1`, so the first wanted one is at
-- list index `after + 1 - (n - l)`.

local q, id = ARGV[4], ARGV[5]
if redis.call('EXISTS', jk(q, id)) == 0 then return {} end
local h = redis.call('HMGET', qk(q, 'logh:' .. id), 'n', 'l', 'd')
local out = { h[3] or '0' }
if not h[1] then return out end
local first = tonumber(h[1]) - tonumber(h[2])
local from = math.max(0, tonumber(ARGV[6]) + 1 - first)
local limit = tonumber(ARGV[7])
if limit <= 0 then return out end
local got = redis.call('LRANGE', qk(q, 'log:' .. id), from, from + limit - 1)
for _, e in ipairs(got) do out[#out + 1] = e end
return out
