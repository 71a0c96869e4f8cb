-- alert_state_put. KEYS[1] the alert-state hash ({#}:alerts): field 'v:<name>' the version,
-- 's:<name>' the state text. ARGV[4] name, ARGV[5] expected version (0: none yet), ARGV[6]
-- the state. Returns the new version, or 0 (nothing written) when the stored version differs.

local name, expect = ARGV[4], tonumber(ARGV[5])
local v = tonumber(redis.call('HGET', KEYS[1], 'v:' .. name) or '0')
if v ~= expect then return 0 end
redis.call('HSET', KEYS[1], 'v:' .. name, v + 1, 's:' .. name, ARGV[6])
return v + 1
