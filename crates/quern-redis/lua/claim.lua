-- job_claim. ARGV[4] worker id, ARGV[5] lease ms, ARGV[6] queue count, then per queue: name,
-- how many jobs to take from it. Paused queues are skipped. Due scheduled jobs are promoted
-- first, so a delayed job is claimable exactly at its run_at. Within a queue the order is
-- the ready set's: priority, then run_at, then id.
-- Returns a flat list: queue, id, HGETALL of the job after the claim, for each job taken.

local worker = ARGV[4]
local lease_until = NOW + tonumber(ARGV[5])
local nq = tonumber(ARGV[6])
local out = {}
for x = 0, nq - 1 do
  local q = ARGV[7 + 2 * x]
  local want = tonumber(ARGV[8 + 2 * x])
  if redis.call('HGET', qk(q, 'meta'), 'paused') ~= '1' then
    local pm = want
    if pm < 100 then pm = 100 end
    promote(q, pm)
    if want > 0 then
      local popped = redis.call('ZPOPMIN', qk(q, 'ready'), want)
      local leases = {}
      for y = 1, #popped, 2 do
        local id = popped[y]
        local k = jk(q, id)
        local f = redis.call('HMGET', k, 's', 'e', 'a')
        if f[1] then
          redis.call('HSET', k, 's', S_RUNNING, 'e', tonumber(f[2] or '0') + 1,
            'a', tonumber(f[3] or '0') + 1, 't', NOW, 'lw', worker, 'lx', lease_until)
          leases[#leases + 1] = lease_until
          leases[#leases + 1] = id
          out[#out + 1] = q
          out[#out + 1] = id
          out[#out + 1] = redis.call('HGETALL', k)
        end
      end
      if #leases > 0 then redis.call('ZADD', qk(q, 'lease'), unpack(leases)) end
    end
  end
end
return out
