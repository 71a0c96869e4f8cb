-- leader_acquire / leader_renew / leader_release. KEYS[1] the lease key. ARGV[4] operation
-- ('a' acquire, 'n' renew, 'r' release), ARGV[5] holder, ARGV[6] ttl ms. Expiry is judged by
-- the injected clock (ARGV[3]), not by Redis key expiry. Returns 1 when we hold it after.

local op, me = ARGV[4], ARGV[5]
local f = redis.call('HMGET', KEYS[1], 'h', 'x')
local holder, exp = f[1], tonumber(f[2] or '0')
local live = holder and exp > NOW
if op == 'r' then
  if holder == me then redis.call('DEL', KEYS[1]) end
  return 0
end
if op == 'n' and not (live and holder == me) then return 0 end
if op == 'a' and live and holder ~= me then return 0 end
redis.call('HSET', KEYS[1], 'h', me, 'x', NOW + tonumber(ARGV[6]))
return 1
