-- queue_get and queue_update. ARGV[4] queue, ARGV[5] 'get' or 'set'; for 'set' then the
-- concurrency cap and the rate limit's count, period (ms) and burst, then the weight, the
-- order ('' priority, 'f' fifo, 'l' lifo, 'r' weighted-random) and the aging's after (ms),
-- step, every (ms, '' = after) and bound, each '-' to keep the stored value or '' to clear
-- it (the caller checked each given value; the four aging values go together), then the
-- retention of succeeded, dead, cancelled and skipped jobs (ms, or 'f' for forever) and the
-- default retry policy (JSON), each '-', '' or the value. Changing
-- the rate limit starts it with a full bucket (`rt` dropped). Returns cc, rc, rp, rb, rt as
-- stored ('' when absent), the queue's running jobs (its lease set), then w, o, aa, as, ae,
-- ab, ks, kd, kc, kk, dr, gc ('' when absent). ARGV[21] is the group cap (same '-' / ''
-- convention); a cap set where there was none starts counting the groups' running jobs
-- from the lease set. ARGV[22] changes the kind patterns ('-' none, else a JSON object
-- pattern -> limits, or null to remove it; a pattern whose limits change starts with a full
-- bucket); ARGV[23..25] the group rate's count, period (ms) and burst ('-' keep, '' clear;
-- a change starts every group with a full bucket). After gc the reply has kr, xc, xp, xb.

local q = ARGV[4]
local mk = qk(q, 'meta')
local function put(f, v)
  if v == nil or v == '-' then return end
  if v == '' then redis.call('HDEL', mk, f) else redis.call('HSET', mk, f, v) end
end
if ARGV[5] == 'set' then
  if not CLUSTER then redis.call('SADD', QUEUES, q) end
  put('cc', ARGV[6])
  if ARGV[7] ~= '-' then
    local old = redis.call('HMGET', mk, 'rc', 'rp', 'rb')
    if ARGV[7] == '' then
      redis.call('HDEL', mk, 'rc', 'rp', 'rb', 'rt')
    elseif old[1] ~= ARGV[7] or old[2] ~= ARGV[8] or old[3] ~= ARGV[9] then
      redis.call('HSET', mk, 'rc', ARGV[7], 'rp', ARGV[8], 'rb', ARGV[9])
      redis.call('HDEL', mk, 'rt')
    end
  end
  put('w', ARGV[10])
  put('o', ARGV[11])
  if ARGV[12] ~= nil and ARGV[12] ~= '-' then
    if ARGV[12] == '' then
      redis.call('HDEL', mk, 'aa', 'as', 'ae', 'ab')
    else
      redis.call('HSET', mk, 'aa', ARGV[12], 'as', ARGV[13], 'ab', ARGV[15])
      put('ae', ARGV[14])
    end
  end
  put('ks', ARGV[16])
  put('kd', ARGV[17])
  put('kc', ARGV[18])
  put('kk', ARGV[19])
  put('dr', ARGV[20])
  if ARGV[21] ~= nil and ARGV[21] ~= '-' then
    local had = redis.call('HEXISTS', mk, 'gc') == 1
    put('gc', ARGV[21])
    if ARGV[21] ~= '' and not had and is_grouped(q) then
      local lease = redis.call('ZRANGE', qk(q, 'lease'), '0', '-1', 'WITHSCORES')
      for x = 1, #lease, 2 do
        local g = redis.call('HGET', jk(q, lease[x]), 'g') or ''
        redis.call('ZADD', qk(q, 'gl:' .. g), lease[x + 1], lease[x])
      end
    end
  end
  if ARGV[22] ~= nil and ARGV[22] ~= '-' then
    local cur = {}
    local old = redis.call('HGET', mk, 'kr')
    if old then cur = cjson.decode(old) end
    local function same(x, y)
      return x and y and x.rate.count == y.rate.count and x.rate.per == y.rate.per
        and x.rate.burst == y.rate.burst
    end
    for p, l in pairs(cjson.decode(ARGV[22])) do
      if l == cjson.null then l = nil end
      if not same(cur[p], l) then redis.call('HDEL', qk(q, 'kt'), p) end
      cur[p] = l
    end
    local n = 0
    for _, _ in pairs(cur) do n = n + 1 end
    if n == 0 then redis.call('HDEL', mk, 'kr') else redis.call('HSET', mk, 'kr', cjson.encode(cur)) end
  end
  if ARGV[23] ~= nil and ARGV[23] ~= '-' then
    local old = redis.call('HMGET', mk, 'xc', 'xp', 'xb')
    if ARGV[23] == '' then
      redis.call('HDEL', mk, 'xc', 'xp', 'xb')
      redis.call('DEL', qk(q, 'gt'))
    elseif old[1] ~= ARGV[23] or old[2] ~= ARGV[24] or old[3] ~= ARGV[25] then
      redis.call('HSET', mk, 'xc', ARGV[23], 'xp', ARGV[24], 'xb', ARGV[25])
      redis.call('DEL', qk(q, 'gt'))
    end
  end
  -- A raised cap or a new rate may admit waiting jobs at once.
  mark_wake(q)
  flush_wake()
end
local m = redis.call('HMGET', mk, 'cc', 'rc', 'rp', 'rb', 'rt', 'w', 'o', 'aa', 'as', 'ae', 'ab',
  'ks', 'kd', 'kc', 'kk', 'dr', 'gc', 'kr', 'xc', 'xp', 'xb')
local out = {}
for x = 1, 5 do out[x] = m[x] or '' end
out[6] = redis.call('ZCARD', qk(q, 'lease'))
for x = 6, 21 do out[x + 1] = m[x] or '' end
return out
