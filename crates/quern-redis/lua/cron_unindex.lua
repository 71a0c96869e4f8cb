-- schedule_delete's last step: drops the name's entry from the global index `{#}:cron`
-- (KEYS[1]) if it still names queue ARGV[5]. ARGV[4] name.

if redis.call('HGET', KEYS[1], ARGV[4]) == ARGV[5] then
  redis.call('HDEL', KEYS[1], ARGV[4])
end
return 1
