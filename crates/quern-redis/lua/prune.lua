-- job_prune. ARGV[4] finished_before (exclusive), ARGV[5] limit, ARGV[6] state count, then
-- the terminal state names, then ARGV[...] queue names to the end. Deletes finished jobs and
-- drops expired results. Returns {jobs deleted, results expired, deleted ids...}.

local before = '(' .. ARGV[4]
local left = tonumber(ARGV[5])
local ns = tonumber(ARGV[6])
local states = {}
for x = 1, ns do states[x] = ARGV[6 + x] end
local deleted, expired = 0, 0
local ids_out = {}
for qi = 7 + ns, #ARGV do
  local q = ARGV[qi]
  for _, sname in ipairs(states) do
    if left <= 0 then break end
    local zk = qk(q, sname)
    local ids = redis.call('ZRANGEBYSCORE', zk, '-inf', before, 'LIMIT', 0, left)
    for _, id in ipairs(ids) do
      local k = jk(q, id)
      local u = redis.call('HGET', k, 'u')
      if u and redis.call('HGET', qk(q, 'uniq'), u) == id then
        redis.call('HDEL', qk(q, 'uniq'), u)
      end
      redis.call('DEL', k, qk(q, 'dn:' .. id))
      redis.call('ZREM', zk, id)
      redis.call('ZREM', qk(q, 'ids'), id)
      redis.call('ZREM', qk(q, 'rexp'), id)
      if not CLUSTER then redis.call('HDEL', IDX, id) end
      ids_out[#ids_out + 1] = id
      deleted = deleted + 1
      left = left - 1
    end
  end
  local gone = redis.call('ZRANGEBYSCORE', qk(q, 'rexp'), '-inf', NOW, 'LIMIT', 0, 10000)
  for _, id in ipairs(gone) do
    redis.call('HDEL', jk(q, id), 'res', 'rx')
    expired = expired + 1
  end
  if #gone > 0 then redis.call('ZREM', qk(q, 'rexp'), unpack(gone)) end
end
local out = { deleted, expired }
for _, id in ipairs(ids_out) do out[#out + 1] = id end
return out
