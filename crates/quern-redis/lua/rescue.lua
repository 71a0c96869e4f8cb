-- lease_rescue. ARGV[4] limit, ARGV[5] queue count, then queue names, then the lost worker
-- count and the lost worker ids. Jobs whose lease expired, and jobs whose lease a lost
-- worker holds, go back to queued (the attempt stays counted) or, after their last attempt,
-- dead (dependents settled). Each gets a lease_expired (or worker_lost) entry in its error
-- history. Returns {requeued ids..., '', dead ids...}.

local left = tonumber(ARGV[4])
local nq = tonumber(ARGV[5])
local nl = tonumber(ARGV[6 + nq] or '0')
local lost = {}
for x = 1, nl do lost[ARGV[6 + nq + x]] = true end
local requeued, dead = {}, {}

-- Re-delivers running job `id` of queue `q`; `why` is 'lease_expired' or 'worker_lost'.
local function rescue(q, lk, id, f, why)
  local k = jk(q, id)
  redis.call('ZREM', lk, id)
  local attempt = tonumber(f[2])
  local msg
  if why == 'lease_expired' then
    msg = 'lease expired (worker ' .. (f[6] or '?') .. ' stopped heartbeating)'
  else
    msg = 'worker ' .. (f[6] or '?') .. ' was lost (missed three heartbeats)'
  end
  add_error(k, err_times(string.format('{"attempt":%d,"at":%d,"kind":"%s","message":%s}',
    attempt, NOW, why, cjson.encode(msg)), f[7], f[5], nil))
  roll(q, 'f', 1)
  if attempt >= tonumber(f[3]) then
    roll(q, 'd', 1)
    finish(q, id, S_DEAD)
    dead[#dead + 1] = id
  else
    redis.call('HSET', k, 's', S_QUEUED)
    redis.call('HDEL', k, 'lw', 'lx')
    ready_add(q, id, score(tonumber(f[4]), tonumber(f[5])))
    event(q, id, S_RUNNING, S_QUEUED)
    mark_wake(q)
    requeued[#requeued + 1] = id
  end
  left = left - 1
end

for x = 0, nq - 1 do
  if left <= 0 then break end
  local q = ARGV[6 + x]
  local lk = qk(q, 'lease')
  local ids = redis.call('ZRANGEBYSCORE', lk, '-inf', '(' .. string.format('%d', NOW), 'LIMIT', 0, left)
  for _, id in ipairs(ids) do
    local f = job_hmget(jk(q, id), 's', 'a', 'm', 'p', 'r', 'lw', 'k')
    if f[1] == '3' then
      rescue(q, lk, id, f, 'lease_expired')
    else
      redis.call('ZREM', lk, id)
    end
  end
  if nl > 0 and left > 0 then
    -- Every still-valid lease of the queue: few (running jobs), and read only while some
    -- worker is lost.
    local live = redis.call('ZRANGEBYSCORE', lk, string.format('%d', NOW), '+inf')
    for _, id in ipairs(live) do
      if left <= 0 then break end
      local f = job_hmget(jk(q, id), 's', 'a', 'm', 'p', 'r', 'lw', 'k')
      if f[1] == '3' and f[6] and lost[f[6]] then
        rescue(q, lk, id, f, 'worker_lost')
      end
    end
  end
end
flush_roll()
flush_wake()
local out = requeued
out[#out + 1] = ''
for _, id in ipairs(dead) do out[#out + 1] = id end
return out
