-- queue_stats for the queues named in ARGV[4..]. Returns per queue: paused (0/1), then the
-- counts scheduled, queued, blocked, running, succeeded, dead, cancelled, skipped, then the
-- run_at of the oldest queued job ('' if none).

local out = {}
for qi = 4, #ARGV do
  local q = ARGV[qi]
  local paused = 0
  if redis.call('HGET', qk(q, 'meta'), 'paused') == '1' then paused = 1 end
  local rk = qk(q, 'ready')
  local oldest = nil
  -- The ready set is ordered by priority first: look at the head of each priority band.
  for p = 0, 9 do
    local head = redis.call('ZRANGEBYSCORE', rk, p * PRIO_UNIT, '(' .. string.format('%d', (p + 1) * PRIO_UNIT), 'WITHSCORES', 'LIMIT', 0, 1)
    if #head > 0 then
      local run_at = tonumber(head[2]) - p * PRIO_UNIT
      if not oldest or run_at < oldest then oldest = run_at end
    end
  end
  local row = {
    paused,
    redis.call('ZCARD', qk(q, 'sched')),
    redis.call('ZCARD', rk),
    redis.call('SCARD', qk(q, 'blocked')),
    redis.call('ZCARD', qk(q, 'lease')),
    redis.call('ZCARD', qk(q, 'succeeded')),
    redis.call('ZCARD', qk(q, 'dead')),
    redis.call('ZCARD', qk(q, 'cancelled')),
    redis.call('ZCARD', qk(q, 'skipped')),
  }
  if oldest then row[10] = string.format('%d', oldest) else row[10] = '' end
  out[#out + 1] = row
end
return out
