-- job_claim. ARGV[4] worker id, ARGV[5] lease ms, ARGV[6] queue count, then per queue: name,
-- how many jobs to take from it; then a ready-set score bound ('' = none): only jobs scoring
-- below it are taken (a priority bound, `more_urgent_than`; the same bound as peek.lua's);
-- then a random seed (1 to 2^31 - 2) for weighted-random orders. Paused queues are skipped. Due scheduled jobs are promoted
-- first, so a delayed job is claimable exactly at its run_at. Within a queue the order is
-- the ready set's: priority, then run_at, then id, unless the queue sets another order or
-- aging (`queue_order`, `pick_ordered` in lib.lua), and a grouped queue goes round-robin
-- over its groups under its group cap (`pick_groups`). A queue's limits (`admit` in lib.lua:
-- its concurrency cap and rate limit) bound how many of its share are taken.
-- Returns a flat list: queue, id, HGETALL of the job *before* the claim, for each job taken
-- (the caller applies the claim: see `apply_claim` in src/jobs.rs), packed as one MessagePack
-- string (src/packed.rs says why), and after them, when a queue's rate limit held back part
-- of its share while it still has ready jobs, the earliest next admission time (ms, as text;
-- the list's length is then 1 more than a multiple of 3); nothing to say: an empty array.

local call = redis.call
local worker = ARGV[4]
local lease_until = string.format('%d', NOW + tonumber(ARGV[5]))
-- Small counters as text, converted once per value (see NOWS in lib.lua).
local ISTR = {}
local function istr(v)
  local s = ISTR[v]
  if not s then
    s = string.format('%d', v)
    ISTR[v] = s
  end
  return s
end
local nq = tonumber(ARGV[6])
local below = ARGV[7 + 2 * nq]
local below_level = 10
if below == '' then below = nil else
  below_level = math.floor(tonumber(below) / PRIO_UNIT)
  below = '(' .. below
end
-- Park-Miller: deterministic from the caller's seed, exact in doubles.
local seed = tonumber(ARGV[8 + 2 * nq] or '1')
local function rnd()
  seed = (seed * 16807) % 2147483647
  return (seed - 1) / 2147483646
end
local next_admission = nil
local out, nout = {}, 0
for x = 0, nq - 1 do
  local q = ARGV[7 + 2 * x]
  local want = tonumber(ARGV[8 + 2 * x])
  if redis.call('HGET', qk(q, 'meta'), 'paused') ~= '1' then
    local pm = want
    if pm < 100 then pm = 100 end
    promote(q, pm)
    local interval, base, token, gate
    if want > 0 then
      local take, capped
      take, capped, token, interval, base = admit(q, want)
      want = take
    end
    if want > 0 then
      -- The `want` first of the ready set, then removed by rank: the same jobs ZPOPMIN would
      -- take, without its scores (Redis formats each score with printf for the reply).
      local rk = qk(q, 'ready')
      local popped
      local o, a = queue_order(q)
      local grouped = is_grouped(q)
      local groups = nil
      -- Kind and group rates and holds (`gate_new` in lib.lua), when the queue has any.
      gate = gate_new(q)
      if grouped then
        -- Round-robin over the queue's groups (`pick_groups` in lib.lua).
        popped, groups = pick_groups(q, want, below_level, false, gate)
        if #popped > 0 then redis.call('ZREM', rk, unpack(popped)) end
      elseif gate then
        popped = gate_pick(q, o, a, want, below_level, rnd, gate)
        if #popped > 0 then redis.call('ZREM', rk, unpack(popped)) end
      elseif o or a then
        popped = pick_ordered(q, o, a, want, below_level, rnd)
        if #popped > 0 then redis.call('ZREM', rk, unpack(popped)) end
      elseif below then
        -- The most urgent jobs are the lowest ranks, so removing by rank below still fits.
        popped = redis.call('ZRANGEBYSCORE', rk, '-inf', below, 'LIMIT', '0', string.format('%d', want))
      else
        popped = redis.call('ZRANGE', rk, '0', string.format('%d', want - 1))
      end
      if #popped > 0 and not (o or a or grouped or gate) then
        redis.call('ZREMRANGEBYRANK', rk, '0', string.format('%d', #popped - 1))
      end
      local leases, nl = {}, 0
      -- A group cap counts each lease in its group's running set.
      local capped_groups = groups and redis.call('HEXISTS', qk(q, 'meta'), 'gc') == 1
      for y = 1, #popped do
        local id = popped[y]
        local k = jk(q, id)
        -- The job as it was; the caller applies the claim's changes (state, epoch + 1,
        -- attempt + 1, claimed_at, lease) to this image, which saves a read per job. A gate
        -- that admitted the job read it already.
        local all = (gate and gate.img[id]) or call('HGETALL', k)
        if #all > 0 then
          local e, a = 0, 0
          for z = 1, #all, 2 do
            local f = all[z]
            if f == 'e' then e = tonumber(all[z + 1]) elseif f == 'a' then a = tonumber(all[z + 1]) end
          end
          local as = istr(a + 1)
          call('HSET', k, 's', '3', 'e', istr(e + 1), 'a', as, 'k', NOWS, 'lw', worker, 'lx', lease_until)
          -- The claim's event: derived from `k` when the timeline is read; the stream
          -- record's kind is resolved when the stream is read.
          ev_hot(q, id, S_QUEUED, S_RUNNING, as, '')
          leases[nl + 1], leases[nl + 2] = lease_until, id
          nl = nl + 2
          if capped_groups then
            redis.call('ZADD', qk(q, 'gl:' .. groups[y]), lease_until, id)
          end
          out[nout + 1], out[nout + 2], out[nout + 3] = q, id, all
          nout = nout + 3
        end
      end
      if nl > 0 then slices('ZADD', qk(q, 'lease'), leases) end
      took(q, nl / 2, interval, base)
      if gate then
        gate_store(gate)
        if nl / 2 < want and gate.next_at and (not next_admission or gate.next_at < next_admission) then
          next_admission = gate.next_at
        end
      end
    end
    -- Throttled with ready jobs left: not empty, say when the next one is admitted.
    if token and ready_below(q, below_level) and (not next_admission or token < next_admission) then
      next_admission = token
    end
  end
end
if next_admission then
  out[nout + 1] = string.format('%d', next_admission)
  nout = nout + 1
end
if nout == 0 then return {} end
flush_events()
return cmsgpack.pack(out)
