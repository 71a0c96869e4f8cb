-- queue_pause / queue_resume. ARGV[4] queue, ARGV[5] '1' pause or '0' resume (the caller
-- checked that the queue exists). Resuming wakes waiting workers.

local q = ARGV[4]
if ARGV[5] == '1' then
  redis.call('HSET', qk(q, 'meta'), 'paused', '1')
else
  redis.call('HDEL', qk(q, 'meta'), 'paused')
  mark_wake(q)
end
flush_wake()
return 1
