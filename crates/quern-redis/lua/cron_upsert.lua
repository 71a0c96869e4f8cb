-- schedule_upsert in the slot of the template's queue. ARGV[4] queue, [5] name, [6] spec
-- JSON, [7] run limit ('' = none), [8] '1' when this call created the name's index entry
-- (a copy here still marked as moving is an orphan: start afresh), [9] move token
-- ('' = not a move), [10] field count F, then F field/value pairs, then the history members:
-- a move's snapshot of the schedule in its old queue (see src/ops/schedule.rs), written
-- first unless this slot already holds the live copy that move made (same token).
-- Returns {code, HGETALL}: code 1 created, 2 changed, 0 unchanged (the same spec).

local q, name, spec, lim = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k, hk = qk(q, 'cron:' .. name), qk(q, 'cronh:' .. name)
local token = ARGV[9]
local nf = tonumber(ARGV[10])
local exists = redis.call('EXISTS', k) == 1
if token ~= '' then
  local f = redis.call('HMGET', k, 'mv', 'mk')
  if not (exists and not f[1] and f[2] == token) then
    redis.call('DEL', k, hk)
    local pairs_ = {}
    for x = 11, 10 + 2 * nf do pairs_[#pairs_ + 1] = ARGV[x] end
    redis.call('HSET', k, unpack(pairs_))
    redis.call('HSET', k, 'mk', token)
    local hist = {}
    for x = 11 + 2 * nf, #ARGV do
      hist[#hist + 1] = 0
      hist[#hist + 1] = ARGV[x]
    end
    -- The score is the tick, which each member carries after its sequence number.
    for x = 2, #hist, 2 do hist[x - 1] = string.match(hist[x], '^%d+ (%-?%d+) ') end
    if #hist > 0 then redis.call('ZADD', hk, unpack(hist)) end
    exists = true
  end
elseif ARGV[8] == '1' and exists and redis.call('HGET', k, 'mv') then
  -- Left marked as moving by a move cut short before the name was deleted: an orphan. (A
  -- live copy is kept: a racing upsert that lost the index entry may have just stored it.)
  redis.call('DEL', k, hk)
  exists = false
end
redis.call('SADD', qk(q, 'crons'), name)
if not exists then
  redis.call('HSET', k, 'sp', spec, 'v', '1', 'pa', '0', 'c', NOWS, 'u', NOWS, 'w', NOWS, 'n', '0', 'hs', '0')
  if lim ~= '' then redis.call('HSET', k, 'lim', lim) end
  return { 1, redis.call('HGETALL', k) }
end
local f = redis.call('HMGET', k, 'sp', 'mv', 'w')
if f[1] == spec and not f[2] then return { 0, redis.call('HGETALL', k) } end
if f[2] then
  -- A pending move away from this queue is called off: the spec names this queue again
  -- (the move's last step deletes only a copy still moving with its token).
  redis.call('HDEL', k, 'mv', 'mvs', 'mk')
  if f[1] == spec then return { 0, redis.call('HGETALL', k) } end
end
redis.call('HSET', k, 'sp', spec, 'u', NOWS)
redis.call('HINCRBY', k, 'v', 1)
if tonumber(f[3]) < NOW then redis.call('HSET', k, 'w', NOWS) end
if lim ~= '' then redis.call('HSET', k, 'lim', lim) else redis.call('HDEL', k, 'lim') end
return { 2, redis.call('HGETALL', k) }
