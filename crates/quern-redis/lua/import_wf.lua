-- store_import, one workflow record, verbatim. ARGV[4] home queue (Cluster; '' on a single
-- node), [5] id, [6] name, [7] state, [8] phase, [9] revision, [10] spec JSON, [11] tasks
-- JSON, [12] compensation ids (space-separated, '' = none), [13] error ('' = none),
-- [14] created, [15] updated, [16] finished ('' = none). Returns 0 stored, 1 the id is taken.

local home, wid = ARGV[4], ARGV[5]
local function wfk(s)
  if CLUSTER then return qk(home, s) end
  return P .. ':{#}:' .. s
end
local rk = wfk('wf:' .. wid)
if redis.call('EXISTS', rk) == 1 then return 1 end
redis.call('HSET', rk, 'n', ARGV[6], 's', ARGV[7], 'ph', ARGV[8], 'v', ARGV[9], 'sp', ARGV[10],
  'tk', ARGV[11], 'c', ARGV[14], 'u', ARGV[15])
if ARGV[12] ~= '' then redis.call('HSET', rk, 'cm', ARGV[12]) end
if ARGV[13] ~= '' then redis.call('HSET', rk, 'er', ARGV[13]) end
if ARGV[16] ~= '' then redis.call('HSET', rk, 'fa', ARGV[16]) end
redis.call('ZADD', wfk('wfs:all'), 0, wid)
redis.call('ZADD', wfk('wfs:' .. ARGV[7]), 0, wid)
return 0
