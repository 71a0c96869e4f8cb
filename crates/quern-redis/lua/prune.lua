-- job_prune. ARGV[4] finished_before (exclusive), ARGV[5] limit, ARGV[6] dry run ('1': count
-- only, change nothing), ARGV[7] state count, then the terminal state names, then queue
-- names to the end, each followed by '1' (delete its finished jobs) or '0' (only drop its
-- expired results). Drops expired results, then deletes finished jobs. Returns
-- {jobs deleted, results expired, deleted ids...} (for a dry run: what would be).

local before = '(' .. ARGV[4]
local left = tonumber(ARGV[5])
local dry = ARGV[6] == '1'
local ns = tonumber(ARGV[7])
local states = {}
for x = 1, ns do states[x] = ARGV[7 + x] end
local deleted, expired = 0, 0
local ids_out = {}
local nows = string.format('%d', NOW)
local state_of = {}
for st, name in pairs(TERM) do state_of[name] = st end
for qi = 8 + ns, #ARGV, 2 do
  local q = ARGV[qi]
  local jobs_too = ARGV[qi + 1] == '1'
  -- Results first, as on SQLite: a job deleted below whose result had expired counts in both.
  if dry then
    expired = expired + math.min(redis.call('ZCOUNT', qk(q, 'rexp'), '-inf', nows), 10000)
  else
    local gone = redis.call('ZRANGEBYSCORE', qk(q, 'rexp'), '-inf', nows, 'LIMIT', 0, 10000)
    for _, id in ipairs(gone) do
      local jkey = jk(q, id)
      local st = tonumber(redis.call('HGET', jkey, 's'))
      if st and TERM[st] then fin_add(q, -redis.call('HSTRLEN', jkey, 'res')) end
      redis.call('HDEL', jkey, 'res', 'rx')
      expired = expired + 1
    end
    if #gone > 0 then redis.call('ZREM', qk(q, 'rexp'), unpack(gone)) end
  end
  for _, sname in ipairs(states) do
    if left <= 0 or not jobs_too then break end
    local zk = qk(q, sname)
    local ids = redis.call('ZRANGEBYSCORE', zk, '-inf', before, 'LIMIT', 0, left)
    for _, id in ipairs(ids) do
      if not dry then
        drop_finished(q, id, state_of[sname])
        ids_out[#ids_out + 1] = id
      end
      deleted = deleted + 1
      left = left - 1
    end
  end
end
flush_events()
local out = { deleted, expired }
for _, id in ipairs(ids_out) do out[#out + 1] = id end
return out
