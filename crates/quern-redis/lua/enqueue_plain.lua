-- job_enqueue for plain jobs, the common case: no unique key, no dependencies, no workflow,
-- and no id twice in the batch (the caller checks; any other batch goes through
-- enqueue.lua). The same per-job codes and reply as enqueue.lua, with less work per job.
--
-- The jobs come in groups of consecutive jobs that share everything but their id and
-- static blob, so what they share is sent (and converted, and checked) once per group
-- instead of once per job; a batch from one producer is usually a single group.
-- ARGV[4] 'a' (atomic) or 'b' (best effort), ARGV[5] job count, then per group:
--   queue, ready score ('' when the jobs are scheduled: run_at is ahead of now), run_at,
--   priority, max_attempts, chunks per job k, job count, kind,
-- then per job of the group: id and its static blob in k chunks (see hset_static in lib.lua:
-- 64-byte chunks d0…, or the whole blob in d0 above 1,024 bytes). The client computes the
-- score (`score` in lib.lua; src/jobs.rs `ready_score`) and the chunks, which cost the
-- script more than sending them does.
-- Codes: 0 stored, 2 same id already stored with the same content (an idempotent resend),
-- 3 error (the id belongs to another job). Returns {codes, details…}: two digits per job
-- (code, state; 9 for errors), then (1-based index, message) per error.

-- Globals the per-job loop uses, as locals (a global is a table lookup per use).
local A, call, unp, tonum = ARGV, redis.call, unpack, tonumber

local atomic = A[4] == 'a'
local n = tonum(A[5])
local HEAD = 8

-- The groups: {first argument, first job index, job count, chunks per job}.
local groups = {}
do
  local b, j = 6, 1
  while j <= n do
    local k, cnt = tonum(A[b + 5]), tonum(A[b + 6])
    groups[#groups + 1] = { b, j, cnt, k }
    b = b + HEAD + cnt * (1 + k)
    j = j + cnt
  end
end

-- Where each id is already stored, if anywhere (no entry: nowhere, so `next(known)` is nil
-- for a batch of new ids and the check below is skipped).
local known = {}
if CLUSTER then
  -- The id index is in another slot; the job hash itself says whether this queue has it.
  for _, g in ipairs(groups) do
    local b, j0, cnt, k = g[1], g[2], g[3], g[4]
    local q = A[b]
    b = b + HEAD
    for j = j0, j0 + cnt - 1 do
      if call('EXISTS', jk(q, A[b])) == 1 then known[j] = q end
      b = b + 1 + k
    end
  end
else
  local ids = {}
  for _, g in ipairs(groups) do
    local b, j0, cnt, k = g[1], g[2], g[3], g[4]
    b = b + HEAD
    for j = j0, j0 + cnt - 1 do
      ids[j] = A[b]
      b = b + 1 + k
    end
  end
  for s = 1, n, 4000 do
    local e = math.min(s + 3999, n)
    local qs = call('HMGET', IDX, unp(ids, s, e))
    for j = s, e do
      local v = qs[j - s + 1]
      if v then known[j] = v end
    end
  end
end

local codes, details = {}, {}
-- Jobs already stored (idempotent resends and refusals): not written again.
local stored = {}
local failed = false
if next(known) then
  for _, g in ipairs(groups) do
    local b, j0, cnt, k = g[1], g[2], g[3], g[4]
    local q = A[b]
    b = b + HEAD
    for j = j0, j0 + cnt - 1 do
      local eq = known[j]
      if eq then
        local key = jk(eq, A[b])
        local ed = hget_static(key)
        -- An index entry without a job hash is stale (an enqueue that failed after indexing
        -- on Cluster, or a pruned job): the id is free.
        if ed then
          stored[j] = true
          if eq == q and ed == table.concat(A, '', b + 1, b + k) then
            codes[j] = '2' .. call('HGET', key, 's')
          else
            codes[j] = '39'
            details[#details + 1] = j
            details[#details + 1] = 'job id ' .. A[b] .. ' is already used by another job'
            failed = true
          end
        end
      end
      b = b + 1 + k
    end
  end
end

local write = not (failed and atomic)
local CHUNK = { [0] = 'd0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'd10', 'd11',
  'd12', 'd13', 'd14', 'd15' }
-- Per queue: ready-set, id-list and scheduled-set entries (one multi-member ZADD each at the
-- end), and the id index entries.
local ready, ids, sched = {}, {}, {}
local idx, nidx = {}, 0
for _, g in ipairs(groups) do
  local b, j0, cnt, k = g[1], g[2], g[3], g[4]
  local q, sc, r, p, m = A[b], A[b + 1], A[b + 2], A[b + 3], A[b + 4]
  local code = '01'
  if sc == '' then code = '00' end
  -- The job hash's field/value pairs, shared by the group; each job fills in its chunks.
  -- `s`, then `p` and `m` only when they differ from the defaults (DEF_P, DEF_M in lib.lua;
  -- job_hmget fills them in), `r`, `c` (created_at) only when it differs from run_at (a
  -- job to run now: `decode_job` reads a missing `c` as `r`, and fail.lua keeps it before
  -- moving `r`), then the chunks. Every field costs Redis a listpack search and append, so
  -- a default job to run now has only s, r and its chunks.
  local f = { 's', STS[S_QUEUED] }
  if sc == '' then f[2] = STS[S_SCHED] end
  if p ~= DEF_P then f[#f + 1], f[#f + 2] = 'p', p end
  if m ~= DEF_M then f[#f + 1], f[#f + 2] = 'm', m end
  f[#f + 1], f[#f + 2] = 'r', r
  if r ~= NOWS then f[#f + 1], f[#f + 2] = 'c', NOWS end
  -- The job events (lib.lua): one stream record per job, written by flush_wake in one
  -- entry per queue. The timeline derives the creation from `c` and `r`; only an actor's
  -- enqueue stores its line.
  local kind = A[b + 7]
  local to = S_QUEUED
  if sc == '' then to = S_SCHED end
  if ACTOR then
    f[#f + 1], f[#f + 2] = 'v1', ev_line(nil, to, '0')
    f[#f + 1], f[#f + 2] = 'vn', '1'
  end
  local evt = EVQ[q]
  if not evt then
    evt = {}
    EVQ[q] = evt
  end
  local nev = #evt
  local evtail = ',,' .. STS[to] .. ',0,' .. kind
  local c0 = #f
  for x = 0, k - 1 do f[c0 + 1 + 2 * x] = CHUNK[x] end
  local nf = c0 + 2 * k
  local kp = jk(q, '')
  local rq, iq, sq = ready[q], ids[q], sched[q]
  if not iq then
    rq, iq, sq = {}, {}, {}
    ready[q], ids[q], sched[q] = rq, iq, sq
  end
  local dst, nd = rq, #rq
  if sc == '' then dst, nd, sc = sq, #sq, r end
  local ni = #iq
  b = b + HEAD
  for j = j0, j0 + cnt - 1 do
    if not stored[j] then
      codes[j] = code
      if write then
        local id = A[b]
        for x = 1, k do f[c0 + 2 * x] = A[b + x] end
        call('HSET', kp .. id, unp(f, 1, nf))
        nev = nev + 1
        evt[nev] = id .. evtail
        iq[ni + 1], iq[ni + 2] = '0', id
        ni = ni + 2
        dst[nd + 1], dst[nd + 2] = sc, id
        nd = nd + 2
        if not CLUSTER then
          idx[nidx + 1], idx[nidx + 2] = id, q
          nidx = nidx + 2
        end
      end
    end
    b = b + 1 + k
  end
end
for q, iq in pairs(ids) do
  if #iq > 0 then
    if #ready[q] > 0 then
      slices('ZADD', qk(q, 'ready'), ready[q])
      -- Plain jobs have no group: in a grouped queue they are the "" group.
      if is_grouped(q) then
        local rq = ready[q]
        for x = 1, #rq, 2 do group_ready(q, '', rq[x], rq[x + 1]) end
      end
    end
    if #sched[q] > 0 then slices('ZADD', qk(q, 'sched'), sched[q]) end
    slices('ZADD', qk(q, 'ids'), iq)
    if not CLUSTER then call('SADD', QUEUES, q) end
    mark_wake(q)
  end
end
if nidx > 0 then slices('HSET', IDX, idx) end
flush_wake()
local r = { table.concat(codes) }
for _, d in ipairs(details) do r[#r + 1] = d end
return r
