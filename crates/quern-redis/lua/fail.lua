-- job_fail. ARGV[4] item count, then per item: queue, id, epoch, action, time, error line,
-- handler start time ('' = none).
-- Actions: 'r' retry at time ('' = the policy gave up: dead), 'd' dead, 's' snooze until
-- time (the attempt is not counted, no error recorded), 'l' rate limited (a snooze that
-- also holds the job's group, or its kind, until the time: `gate_hold`), 'c' cancelled.
-- Returns per item 1, or 0 when the token is stale.

local n = tonumber(ARGV[4])
local out = {}
for x = 0, n - 1 do
  local b = 5 + 7 * x
  local q, id, epoch, action, at, line = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local k = jk(q, id)
  local f = job_hmget(k, 's', 'e', 'a', 'm', 'c', 'r', 'k')
  if f[1] == '3' and f[2] == epoch then
    redis.call('ZREM', qk(q, 'lease'), id)
    set_started(k, ARGV[b + 6], f[7])
    if action == 'r' and (at == '' or tonumber(f[3]) >= tonumber(f[4])) then action = 'd' end
    if action == 'r' or action == 's' or action == 'l' then
      if action == 'l' then gate_hold(q, id, at) end
      if action == 's' or action == 'l' then
        redis.call('HINCRBY', k, 'a', -1)
      else
        add_error(k, err_times(line, f[7], f[6], at))
        roll(q, 'f', 1)
      end
      if f[5] then
        redis.call('HSET', k, 's', S_SCHED, 'r', at)
      else
        -- A job stored without `c` was created at its first run_at (enqueue_plain.lua).
        redis.call('HSET', k, 's', S_SCHED, 'r', at, 'c', f[6])
      end
      redis.call('HDEL', k, 'lw', 'lx')
      redis.call('ZADD', qk(q, 'sched'), at, id)
      if action == 'r' then
        -- Derived from the error line when the timeline is read.
        ev_hot(q, id, S_RUNNING, S_SCHED, f[3], '')
      else
        -- A snooze records no error: its claim (which the next claim's `k` overwrites)
        -- and its move are stored as lines.
        if f[7] then ev_keep(k, ev_line(S_QUEUED, S_RUNNING, f[3], f[7], true)) end
        event(q, id, S_RUNNING, S_SCHED)
      end
      mark_wake(q)
    elseif action == 'c' then
      add_error(k, err_times(line, f[7], f[6], nil))
      finish(q, id, S_CANCELLED, nil, nil, nil, f[3])
    else
      add_error(k, err_times(line, f[7], f[6], nil))
      finish(q, id, S_DEAD, nil, nil, nil, f[3])
      roll(q, 'f', 1)
      roll(q, 'd', 1)
    end
    out[x + 1] = 1
  else
    out[x + 1] = 0
  end
end
flush_roll()
flush_wake()
return out
