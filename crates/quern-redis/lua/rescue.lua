-- lease_rescue. ARGV[4] limit, ARGV[5] queue count, then queue names. Jobs whose lease
-- expired go back to queued (the attempt stays counted) or, after their last attempt, dead
-- (dependents settled). Each gets a lease_expired entry in its error history.
-- Returns {requeued ids..., '', dead ids...}.

local left = tonumber(ARGV[4])
local nq = tonumber(ARGV[5])
local requeued, dead = {}, {}
for x = 0, nq - 1 do
  if left <= 0 then break end
  local q = ARGV[6 + x]
  local lk = qk(q, 'lease')
  local ids = redis.call('ZRANGEBYSCORE', lk, '-inf', '(' .. string.format('%d', NOW), 'LIMIT', 0, left)
  for _, id in ipairs(ids) do
    local k = jk(q, id)
    redis.call('ZREM', lk, id)
    local f = job_hmget(k, 's', 'a', 'm', 'p', 'r', 'lw')
    if f[1] == '3' then
      local attempt = tonumber(f[2])
      add_error(k, string.format('{"attempt":%d,"at":%d,"kind":"lease_expired","message":%s}',
        attempt, NOW, cjson.encode('lease expired (worker ' .. (f[6] or '?') .. ' stopped heartbeating)')))
      if attempt >= tonumber(f[3]) then
        finish(q, id, S_DEAD)
        dead[#dead + 1] = id
      else
        redis.call('HSET', k, 's', S_QUEUED)
        redis.call('HDEL', k, 'lw', 'lx')
        redis.call('ZADD', qk(q, 'ready'), score(tonumber(f[4]), tonumber(f[5])), id)
        mark_wake(q)
        requeued[#requeued + 1] = id
      end
      left = left - 1
    end
  end
end
flush_wake()
local out = requeued
out[#out + 1] = ''
for _, id in ipairs(dead) do out[#out + 1] = id end
return out
