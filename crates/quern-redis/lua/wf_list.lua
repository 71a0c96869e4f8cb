-- workflow_list in one home (the whole store on a single node). Own arguments: home queue,
-- index suffix ('all' or a state number), exclusive upper id ('' = from the newest), most
-- records. Returns {id, HGETALL, id, HGETALL, …}, newest id first.

local home, which, before, limit = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local max = '+'
if before ~= '' then max = '(' .. before end
local ids = redis.call('ZREVRANGEBYLEX', wk(home, 'wfs:' .. which), max, '-', 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', wk(home, 'wf:' .. id))
end
return out
