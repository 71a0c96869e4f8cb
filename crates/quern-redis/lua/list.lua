-- job_list's scan of one queue, newest id first. ARGV[4] queue, ARGV[5] exclusive upper id
-- ('' = from the newest), ARGV[6] wanted matches, ARGV[7] state number ('' = any), ARGV[8]
-- most ids to look at. Returns {cursor, ids...}: the cursor is the last id looked at, or ''
-- when the queue has no older ids.

local q, before, want, state, scan = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local max = '+'
if before ~= '' then max = '(' .. before end
local ids = redis.call('ZREVRANGEBYLEX', qk(q, 'ids'), max, '-', 'LIMIT', 0, scan)
local out = { '' }
local found = 0
for _, id in ipairs(ids) do
  out[1] = id
  if state == '' or redis.call('HGET', jk(q, id), 's') == state then
    out[#out + 1] = id
    found = found + 1
    if found >= want then return out end
  end
end
if #ids < scan then out[1] = '' end
return out
