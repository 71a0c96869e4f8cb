-- queue_get and queue_update. ARGV[4] queue, ARGV[5] 'get' or 'set'; for 'set' then the
-- concurrency cap and the rate limit's count, period (ms) and burst, each '-' to keep the
-- stored value or '' to clear it (the caller checked each given value). Changing the rate
-- limit starts it with a full bucket (`rt` dropped). Returns cc, rc, rp, rb, rt as stored
-- ('' when absent) and the queue's running jobs (its lease set).

local q = ARGV[4]
local mk = qk(q, 'meta')
if ARGV[5] == 'set' then
  if not CLUSTER then redis.call('SADD', QUEUES, q) end
  local cc = ARGV[6]
  if cc == '' then redis.call('HDEL', mk, 'cc') elseif cc ~= '-' then redis.call('HSET', mk, 'cc', cc) end
  if ARGV[7] ~= '-' then
    local old = redis.call('HMGET', mk, 'rc', 'rp', 'rb')
    if ARGV[7] == '' then
      redis.call('HDEL', mk, 'rc', 'rp', 'rb', 'rt')
    elseif old[1] ~= ARGV[7] or old[2] ~= ARGV[8] or old[3] ~= ARGV[9] then
      redis.call('HSET', mk, 'rc', ARGV[7], 'rp', ARGV[8], 'rb', ARGV[9])
      redis.call('HDEL', mk, 'rt')
    end
  end
  -- A raised cap or a new rate may admit waiting jobs at once.
  mark_wake(q)
  flush_wake()
end
local m = redis.call('HMGET', mk, 'cc', 'rc', 'rp', 'rb', 'rt')
local out = {}
for x = 1, 5 do out[x] = m[x] or '' end
out[6] = redis.call('ZCARD', qk(q, 'lease'))
return out
