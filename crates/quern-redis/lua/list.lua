-- job_list's scan of one queue, newest id first. ARGV[4] queue, ARGV[5] exclusive upper id
-- ('' = from the newest), ARGV[6] wanted matches, ARGV[7] state number ('' = any), ARGV[8]
-- most ids to look at. Returns {cursor, ids...}: the cursor is the last id looked at, or ''
-- when the queue has no older ids.
--
-- With a state, a state whose own structure is small (at most SMALL members: the DLQ, the
-- scheduled or running jobs, most of the time) is read from that structure whole and sorted,
-- so a sparse state costs its own size, not a walk over every id of the queue; a larger one
-- is dense enough among the ids that the walk finds its matches soon (at most about
-- want * ids / SMALL ids looked at).

local q, before, want, state, scan = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local SMALL = 10000
local SETS = { ['0'] = 'sched', ['1'] = 'ready', ['2'] = 'blocked', ['3'] = 'lease',
  ['4'] = 'succeeded', ['5'] = 'dead', ['6'] = 'cancelled', ['7'] = 'skipped' }

if state ~= '' and SETS[state] then
  local sk = qk(q, SETS[state])
  local n
  if state == '2' then n = redis.call('SCARD', sk) else n = redis.call('ZCARD', sk) end
  if n <= SMALL then
    local members
    if state == '2' then members = redis.call('SMEMBERS', sk) else members = redis.call('ZRANGE', sk, 0, -1) end
    local keep = {}
    for _, id in ipairs(members) do
      if before == '' or id < before then keep[#keep + 1] = id end
    end
    table.sort(keep)
    local out = { '' }
    local found = 0
    for x = #keep, 1, -1 do
      local id = keep[x]
      -- The structures follow the state in the same scripts; the check keeps a list exact
      -- even so.
      if redis.call('HGET', jk(q, id), 's') == state then
        out[#out + 1] = id
        found = found + 1
        if found >= want then
          out[1] = id
          return out
        end
      end
    end
    return out
  end
end

local max = '+'
if before ~= '' then max = '(' .. before end
local ids = redis.call('ZREVRANGEBYLEX', qk(q, 'ids'), max, '-', 'LIMIT', 0, scan)
local out = { '' }
local found = 0
for _, id in ipairs(ids) do
  out[1] = id
  if state == '' or redis.call('HGET', jk(q, id), 's') == state then
    out[#out + 1] = id
    found = found + 1
    if found >= want then return out end
  end
end
if #ids < scan then out[1] = '' end
return out
