-- event_list. ARGV[4] queue, ARGV[5] job id. The job's timeline, as its hash keeps it (see
-- "Job events" in lib.lua): returns {0} when the job does not exist, else {1, kind, lines…}
-- (a line missing from a hash written before events existed is left out).

local q, id = ARGV[4], ARGV[5]
local k = jk(q, id)
local f = redis.call('HMGET', k, 's', 'kd', 'vn')
if not f[1] then return { 0 } end
local out = { 1, f[2] or '' }
local n = tonumber(f[3]) or 1
local names = {}
for x = 1, n do names[x] = 'v' .. x end
local lines = redis.call('HMGET', k, unpack(names))
for x = 1, n do
  if lines[x] then out[#out + 1] = lines[x] end
end
return out
