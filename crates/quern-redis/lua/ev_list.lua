-- event_list. ARGV[4] queue, ARGV[5] job id. The timeline lines the job's hash stores (see
-- "Job events" in lib.lua; the rest of the timeline is derived from the job by the caller):
-- returns {0} when the job does not exist, else {1, lines…}.

local q, id = ARGV[4], ARGV[5]
local k = jk(q, id)
local f = redis.call('HMGET', k, 's', 'vn')
if not f[1] then return { 0 } end
local out = { 1 }
local n = tonumber(f[2]) or 0
local names = {}
for x = 1, n do names[x] = 'v' .. x end
if n == 0 then return out end
local lines = redis.call('HMGET', k, unpack(names))
for x = 1, n do
  if lines[x] then out[#out + 1] = lines[x] end
end
return out
