-- job_heartbeat. ARGV[4] lease ms, ARGV[5] item count, then per item: queue, id, epoch,
-- progress JSON ('' = unchanged), checkpoint flag ('1' = store the next value), checkpoint.
-- Returns per item the new lease deadline, or -1 when the token is stale.

local lease_until = NOW + tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {}
for x = 0, n - 1 do
  local b = 6 + 6 * x
  local q, id, epoch = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local k = jk(q, id)
  local f = redis.call('HMGET', k, 's', 'e')
  if f[1] == '3' and f[2] == epoch then
    redis.call('HSET', k, 'lx', lease_until)
    redis.call('ZADD', qk(q, 'lease'), lease_until, id)
    if ARGV[b + 3] ~= '' then redis.call('HSET', k, 'pg', ARGV[b + 3]) end
    if ARGV[b + 4] == '1' then redis.call('HSET', k, 'cp', ARGV[b + 5]) end
    out[x + 1] = lease_until
  else
    out[x + 1] = -1
  end
end
return out
