-- work_wait's check, for the queues named in ARGV[5..]: {1} when one of them (not paused)
-- has a ready job scoring below ARGV[4] (a priority bound, as in claim.lua; '' = any job)
-- that its limits admit now (`admit`, the claim's rule), or a due scheduled job; otherwise
-- {0, when to look again ('' = no time: the next due scheduled job, a throttled queue's
-- next token, or 20 ms ahead for a queue at its concurrency cap, which frees when a job
-- ends without a wake entry), then the
-- last id of each queue's wake stream}. Blocking on the wake streams from these ids cannot
-- miss an enqueue that happens after this check.

local next_due = nil
local last = {}
local below_level = 10
if ARGV[4] ~= '' then below_level = math.floor(tonumber(ARGV[4]) / PRIO_UNIT) end
for qi = 5, #ARGV do
  local q = ARGV[qi]
  if redis.call('HGET', qk(q, 'meta'), 'paused') ~= '1' then
    if ready_below(q, below_level) then
      local take, capped, token = admit(q, 1)
      -- Kind and group rates and holds: the claim's gate, as a question.
      local gate = nil
      if take > 0 then gate = gate_new(q) end
      if take > 0 and is_grouped(q) then
        if #pick_groups(q, 1, below_level, true, gate) == 0 then
          -- Every group with ready jobs is at the group cap (frees when a job ends) or
          -- turned away by the gate (until its next token or the end of a hold).
          take = 0
          if gate and gate.next_at then
            token = gate.next_at
            capped = redis.call('HEXISTS', qk(q, 'meta'), 'gc') == 1
          else
            capped = true
          end
        end
      elseif take > 0 and gate then
        local o, a = queue_order(q)
        if #gate_pick(q, o, a, 1, below_level, function() return 0 end, gate) == 0 then take, token = 0, gate.next_at end
      end
      if take > 0 then return { 1 } end
      local again = token
      if capped then again = NOW + 20 end
      if again and (not next_due or again < next_due) then next_due = again end
    end
    local head = redis.call('ZRANGE', qk(q, 'sched'), 0, 0, 'WITHSCORES')
    if #head > 0 then
      local due = tonumber(head[2])
      if due <= NOW then return { 1 } end
      if not next_due or due < next_due then next_due = due end
    end
  end
  local e = redis.call('XREVRANGE', qk(q, 'wake'), '+', '-', 'COUNT', 1)
  if #e > 0 then last[#last + 1] = e[1][1] else last[#last + 1] = '0-0' end
end
local out = { 0, '' }
if next_due then out[2] = string.format('%d', next_due) end
for _, id in ipairs(last) do out[#out + 1] = id end
return out
