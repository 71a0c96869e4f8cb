-- job_complete. ARGV[4] item count, then per item: queue, id, epoch, result ('' = none),
-- result ttl ms ('' = keep until pruned), handler start time ('' = none). Marks each job succeeded and settles its
-- dependents in the same script. Returns per item 1, or 0 when the token is stale.

local call = redis.call
local n = tonumber(ARGV[4])
local out = {}
-- Per queue: ids leaving the lease set and [score, id] pairs for the succeeded set, each
-- written with one multi-member call at the end.
local gone, done = {}, {}
for x = 0, n - 1 do
  local b = 5 + 6 * x
  local q, id, epoch = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local k = jk(q, id)
  local f = call('HMGET', k, 's', 'e', 'hd', 'k', 'a')
  if f[1] == '3' and f[2] == epoch then
    if not gone[q] then gone[q], done[q] = {}, {} end
    table.insert(gone[q], id)
    set_started(k, ARGV[b + 5], f[4])
    if ARGV[b + 3] ~= '' then
      redis.call('HSET', k, 'res', ARGV[b + 3])
      if ARGV[b + 4] ~= '' then
        local rx = NOW + tonumber(ARGV[b + 4])
        redis.call('HSET', k, 'rx', rx)
        redis.call('ZADD', qk(q, 'rexp'), rx, id)
      end
    end
    finish(q, id, S_OK, f[3] == '1', done[q], nil, f[5])
    out[x + 1] = 1
  else
    out[x + 1] = 0
  end
end
for q, ids in pairs(gone) do
  slices('ZREM', qk(q, 'lease'), ids)
  slices('ZADD', qk(q, 'succeeded'), done[q])
  roll(q, 's', #ids)
end
flush_roll()
flush_fin()
flush_wake()
return out
