-- job_release. ARGV[4] item count, then per item: queue, id, epoch. Gives the lease back:
-- the job is queued again at its old place (priority, run_at) and the attempt is not counted.
-- Returns per item 1, or 0 when the token is stale.

local n = tonumber(ARGV[4])
local out = {}
for x = 0, n - 1 do
  local b = 5 + 3 * x
  local q, id, epoch = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local k = jk(q, id)
  local f = job_hmget(k, 's', 'e', 'p', 'r', 'a', 'k')
  if f[1] == '3' and f[2] == epoch then
    redis.call('ZREM', qk(q, 'lease'), id)
    redis.call('HINCRBY', k, 'a', -1)
    redis.call('HSET', k, 's', S_QUEUED)
    redis.call('HDEL', k, 'lw', 'lx')
    ready_add(q, id, score(tonumber(f[3]), tonumber(f[4])))
    -- Two timeline lines: the claim given back (the next claim overwrites `k`, from
    -- which the timeline derives claims) and the release.
    if f[6] then ev_keep(k, ev_line(S_QUEUED, S_RUNNING, f[5], f[6], true)) end
    event(q, id, S_RUNNING, S_QUEUED)
    mark_wake(q)
    out[x + 1] = 1
  else
    out[x + 1] = 0
  end
end
flush_wake()
return out
