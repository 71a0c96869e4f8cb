-- job_enqueue for plain jobs, the common case: no unique key, no dependencies, no workflow,
-- and no id twice in the batch (the caller checks; any other batch goes through
-- enqueue.lua). The same per-job codes and reply as enqueue.lua, with less work per job:
-- six arguments instead of ten, no per-job Lua tables, and every check done by one lookup
-- of the batch's ids before anything is written.
-- ARGV[4] 'a' (atomic) or 'b' (best effort), ARGV[5] job count, then per job: id, queue,
-- priority, max_attempts, run_at, static blob.
-- Codes: 0 stored, 2 same id already stored with the same content (an idempotent resend),
-- 3 error (the id belongs to another job). Returns {codes, details…}: two digits per job
-- (code, state; 9 for errors), then (1-based index, message) per error.

-- Globals the per-job loop uses, as locals (a global is a table lookup per use).
local A, call, sub, fmt, tonum, ceil, unp = ARGV, redis.call, string.sub, string.format, tonumber, math.ceil, unpack

local atomic = ARGV[4] == 'a'
local n = tonumber(ARGV[5])
local W = 6
local function at(j) return 6 + W * (j - 1) end

-- Where each id is already stored, if anywhere (false: nowhere).
local known = {}
if CLUSTER then
  -- The id index is in another slot; the job hash itself says whether this queue has it.
  for j = 1, n do
    local b = at(j)
    known[j] = redis.call('EXISTS', jk(ARGV[b + 1], ARGV[b])) == 1 and ARGV[b + 1]
  end
else
  for s = 1, n, 4000 do
    local e = math.min(s + 3999, n)
    local ids = {}
    for j = s, e do ids[#ids + 1] = ARGV[at(j)] end
    local qs = redis.call('HMGET', IDX, unpack(ids))
    for j = s, e do known[j] = qs[j - s + 1] end
  end
end

local codes, details = {}, {}
local stored = {}
local failed = false
for j = 1, n do
  local eq = known[j]
  if eq then
    local b = at(j)
    local k = jk(eq, ARGV[b])
    local ed = hget_static(k)
    -- An index entry without a job hash is stale (an enqueue that failed after indexing on
    -- Cluster, or a pruned job): the id is free.
    if ed then
      stored[j] = true
      if ed == ARGV[b + 5] and eq == ARGV[b + 1] then
        codes[j] = '2' .. redis.call('HGET', k, 's')
      else
        codes[j] = '39'
        details[#details + 1] = j
        details[#details + 1] = 'job id ' .. ARGV[b] .. ' is already used by another job'
        failed = true
      end
    end
  end
end

local function reply()
  local r = { table.concat(codes) }
  for _, d in ipairs(details) do r[#r + 1] = d end
  return r
end

local write = not (failed and atomic)
-- Field/value pairs of the job hash, rebuilt in place for every job: s, then p and m only
-- when they differ from the defaults (DEF_P, DEF_M in lib.lua; job_hmget fills them in), r,
-- then `c` (created_at) only when it differs from run_at (a job to run now: see
-- `decode_job`, which reads a missing `c` as `r`, and fail.lua, which keeps it before moving
-- `r`), then the blob's 64-byte chunks d0… (see hset_static in lib.lua). Every field costs
-- Redis a listpack search and append, so a default job to run now has only s, r and its
-- chunks.
-- Every value is text: Redis turns a Lua number back into text with printf, which showed in
-- profiles (see NOWS in lib.lua).
local f = { 's', '' }
local DN = {}
for x = 0, 16 do DN[x] = 'd' .. x end
local CODE0 = { [S_SCHED] = '00', [S_QUEUED] = '01' }
-- Per queue: ready-set, id-list and scheduled-set entries with their lengths (one
-- multi-member ZADD each at the end).
local ready, ids, sched, lens = {}, {}, {}, {}
local idx, nidx = {}, 0
for j = 1, n do
  if not stored[j] then
    local b = at(j)
    local id, q, run_at = A[b], A[b + 1], tonum(A[b + 4])
    local st = S_QUEUED
    if run_at > NOW then st = S_SCHED end
    codes[j] = CODE0[st]
    if write then
      f[2] = STS[st]
      local m = 2
      if A[b + 2] ~= DEF_P then
        f[3], f[4] = 'p', A[b + 2]
        m = 4
      end
      if A[b + 3] ~= DEF_M then
        f[m + 1], f[m + 2] = 'm', A[b + 3]
        m = m + 2
      end
      f[m + 1], f[m + 2] = 'r', A[b + 4]
      m = m + 2
      if A[b + 4] ~= NOWS then
        f[m + 1], f[m + 2] = 'c', NOWS
        m = m + 2
      end
      local d = A[b + 5]
      if #d > 1024 then
        f[m + 1], f[m + 2] = 'd0', d
        m = m + 2
      else
        local c = ceil(#d / 64)
        if c == 0 then c = 1 end
        for x = 0, c - 1 do
          f[m + 1] = DN[x]
          f[m + 2] = sub(d, x * 64 + 1, x * 64 + 64)
          m = m + 2
        end
      end
      call('HSET', jk(q, id), unp(f, 1, m))
      local ln = lens[q]
      if not ln then
        ids[q], ready[q], sched[q] = {}, {}, {}
        ln = { 0, 0, 0 }
        lens[q] = ln
        if not CLUSTER then redis.call('SADD', QUEUES, q) end
      end
      local iq, ni = ids[q], ln[1]
      iq[ni + 1], iq[ni + 2] = '0', id
      ln[1] = ni + 2
      if st == S_SCHED then
        local t, nt = sched[q], ln[3]
        t[nt + 1], t[nt + 2] = A[b + 4], id
        ln[3] = nt + 2
      else
        -- '%d' is a cheap integer format; the score is an exact integer below 2^53.
        local t, nt = ready[q], ln[2]
        t[nt + 1], t[nt + 2] = fmt('%d', score(tonum(A[b + 2]), run_at)), id
        ln[2] = nt + 2
      end
      if not CLUSTER then
        idx[nidx + 1], idx[nidx + 2] = id, q
        nidx = nidx + 2
      end
    end
  end
end
for q, iq in pairs(ids) do
  if #ready[q] > 0 then slices('ZADD', qk(q, 'ready'), ready[q]) end
  if #sched[q] > 0 then slices('ZADD', qk(q, 'sched'), sched[q]) end
  slices('ZADD', qk(q, 'ids'), iq)
  mark_wake(q)
end
if nidx > 0 then slices('HSET', IDX, idx) end
flush_wake()
return reply()
