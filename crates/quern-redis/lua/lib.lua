-- Shared prelude of every Quern script (prepended at build time, see src/scripts.rs).
--
-- ARGV[1] key prefix, ARGV[2] '1' on Redis Cluster, ARGV[3] now (ms, from the injected clock;
-- Redis TIME is never used so tests can drive time). Script arguments start at ARGV[4].
-- KEYS[1] is any key in the slot the script works on; on a single node scripts may touch
-- several queues (every key they build shares its queue's hash tag, so on Cluster a script
-- given one queue stays in one slot).

local P = ARGV[1]
local CLUSTER = ARGV[2] == '1'
-- `now` as given, for writing: Redis turns a Lua number argument back into text with
-- printf, which shows up in profiles of the hot scripts, so they pass strings. ACTOR: the
-- actor of the job events this call appends (quern::model::with_actor), which src/eval.rs
-- sends after the time, as `now|actor`, so every script has it without an argument of its
-- own; false when none. (One definition, so a script that uses NOWS always splits it.)
-- A plain find first: this runs at the start of every call, most of them without an actor.
local NOWS, ACTOR = ARGV[3], false
if string.find(NOWS, '|', 1, true) then
  NOWS, ACTOR = string.match(NOWS, '^([^|]*)|(.*)$')
  if ACTOR == '' then ACTOR = false end
end
local NOW = tonumber(NOWS)

-- Stores the time a worker reported its handler started ('' = none) as `t`, between the
-- claim time `claimed` (field `k`, if known) and now: the worker's clock may differ from
-- the store's.
local function set_started(k, st, claimed)
  if st ~= '' then
    local t = tonumber(st)
    if t > NOW then
      st = NOWS
    elseif claimed and t < tonumber(claimed) then
      st = claimed
    end
    redis.call('HSET', k, 't', st)
  end
end

-- Key of queue `q`: <prefix>:{<queue>}:<suffix>. The braces are the Cluster hash tag.
local function qk(q, s) return P .. ':{' .. q .. '}:' .. s end
local function jk(q, id) return P .. ':{' .. q .. '}:j:' .. id end
-- Global keys share the tag `{#}`, which no queue name can produce.
local IDX = P .. ':{#}:idx'
local QUEUES = P .. ':{#}:queues'

-- Job states, as stored in field `s` (JobState::as_i64).
local S_SCHED, S_QUEUED, S_BLOCKED, S_RUNNING = 0, 1, 2, 3
local S_OK, S_DEAD, S_CANCELLED, S_SKIPPED = 4, 5, 6, 7
local TERM = { [4] = 'succeeded', [5] = 'dead', [6] = 'cancelled', [7] = 'skipped' }
-- Each state as the text stored in field `s`.
local STS = { [0] = '0', '1', '2', '3', '4', '5', '6', '7' }

-- Priority and max attempts of a job whose hash has no `p` / `m` field: the defaults
-- (`Priority::NORMAL`, `NewJob::DEFAULT_MAX_ATTEMPTS`; a unit test in src/codec.rs checks they
-- match), which enqueue_plain.lua leaves out. Scripts read job fields with `job_hmget`,
-- which fills them in.
local DEF_P, DEF_M = '5', '25'
local JOB_DEFAULTS = { p = DEF_P, m = DEF_M }

-- HMGET of job hash `k`, with `p` and `m` at their defaults where the hash leaves them out.
local function job_hmget(k, ...)
  local names = { ... }
  local f = redis.call('HMGET', k, ...)
  for i = 1, #names do
    if not f[i] then
      local d = JOB_DEFAULTS[names[i]]
      if d then f[i] = d end
    end
  end
  return f
end

-- Ready-set score: priority in the high bits, run_at (ms) below. 10 * 2^48 < 2^53, so the
-- score is an exact double and orders by (priority, run_at); ties fall to the member (the id).
local PRIO_UNIT = 281474976710656
local function score(prio, run_at)
  if run_at < 0 then run_at = 0 end
  return prio * PRIO_UNIT + run_at
end

-- Groups (quern::NewJob::group), only in a queue that has had a grouped job (meta `gr`
-- = '1'; other queues pay one HGET where a job becomes ready). Such a queue keeps, next to
-- its ready set (which still holds every ready job), a ready set per group `g:<name>`
-- (jobs without a group: `g:`, the "" group) and the rotation `gq`: the groups with ready
-- jobs, scored by when the claim last served them (the counter `gs` in meta; a group that
-- comes back gets 0, so it goes first). A job leaves its group's set lazily: the claim
-- drops members that are no longer in the ready set, so cancel, delete and the rest need
-- not know about groups. With a group cap (`gc`) each group's running jobs are counted
-- in `gl:<name>`, checked against the lease set the same lazy way.
local function is_grouped(q) return redis.call('HGET', qk(q, 'meta'), 'gr') == '1' end

-- Puts ready job `id` (score `sc`) of grouped queue q in group `g`'s ready set and the
-- group in the rotation.
local function group_ready(q, g, sc, id)
  redis.call('ZADD', qk(q, 'g:' .. g), sc, id)
  redis.call('ZADD', qk(q, 'gq'), 'NX', '0', g)
end

-- The first grouped job of q: from now on its claim goes by group. The ready jobs already
-- there have no group; they become the "" group.
local function mark_grouped(q)
  local mk = qk(q, 'meta')
  if redis.call('HGET', mk, 'gr') == '1' then return end
  redis.call('HSET', mk, 'gr', '1')
  local rk = qk(q, 'ready')
  if redis.call('EXISTS', rk) == 1 then
    redis.call('ZUNIONSTORE', qk(q, 'g:'), '1', rk)
    redis.call('ZADD', qk(q, 'gq'), 'NX', '0', '')
  end
end

-- Adds job `id` of q to the ready set with score `sc`, and in a grouped queue to its
-- group's set (`grouped` when the caller already knows whether q is grouped).
local function ready_add(q, id, sc, grouped)
  redis.call('ZADD', qk(q, 'ready'), sc, id)
  if grouped == nil then grouped = is_grouped(q) end
  if grouped then
    group_ready(q, redis.call('HGET', jk(q, id), 'g') or '', sc, id)
  end
end

-- Job events (quern::model::JobEvent), written per script call rather than per job:
-- - the job's timeline is derived at read time from the fields the job keeps anyway
--   (`c`, `r`, `k`, `f` and the error history `er`, whose lines the fail path extends with
--   the attempt's claim, due and retry times): the hot moves (enqueue, claim, complete, fail,
--   promotion) store nothing in the hash. The cold moves (cancel, retry, replay, rescue,
--   release, snooze, dependency settlement) and any move made under an actor store a line
--   in the hash: one field per line, `v1`, `v2`, … (`at,from,to,attempt,actor`; states are
--   the numbers of field `s`, '' for none), the count in `vn` (absent: none). One field per
--   line keeps every value short, so the hash stays a listpack; it goes with the job.
-- - the stream: each move adds a record `id,from,to,attempt,kind` to EVQ[queue] (the kind
--   where the script has it, else '' and resolved when the stream is read); at the end of
--   the script ONE entry per queue is appended to `{q}:events` (fields `at` now, `x` the
--   actor when set, `r` the records, newline-separated), trimmed approximately to EV_CAP
--   entries. The queue's hash tag keeps it in the queue's slot on Cluster.
local EV_CAP = '100000'
local EVQ = {}
-- A timeline line; `at` defaults to now, and `bare` leaves the actor out (the line of a
-- claim being given back, which the actor did not make).
local function ev_line(from, to, attempt, at, bare)
  local actor = ACTOR or ''
  if bare then actor = '' end
  return (at or NOWS) .. ',' .. (STS[from] or '') .. ',' .. (STS[to] or '') .. ',' .. (attempt or '0') .. ',' .. actor
end
local function ev_rec(q, id, from, to, attempt, kind)
  local t = EVQ[q]
  if not t then
    t = {}
    EVQ[q] = t
  end
  t[#t + 1] = id .. ',' .. (STS[from] or '') .. ',' .. (STS[to] or '') .. ',' .. (attempt or '0') .. ',' .. (kind or '')
end
-- Appends timeline line `line` to job hash `k`.
local function ev_keep(k, line)
  local ns = string.format('%d', (tonumber(redis.call('HGET', k, 'vn')) or 0) + 1)
  redis.call('HSET', k, 'v' .. ns, line, 'vn', ns)
end
-- A hot move of job `id` (its attempt after the move known to the caller): a stream record,
-- and a timeline line only under an actor.
local function ev_hot(q, id, from, to, attempt, kind)
  ev_rec(q, id, from, to, attempt, kind)
  if ACTOR then ev_keep(jk(q, id), ev_line(from, to, attempt)) end
end
-- A cold move of job `id` from `from` to `to`, after the move was written: reads the
-- attempt, records it for the stream and stores its timeline line.
local function event(q, id, from, to)
  local k = jk(q, id)
  local a = redis.call('HGET', k, 'a') or '0'
  ev_rec(q, id, from, to, a, '')
  ev_keep(k, ev_line(from, to, a))
end
local function flush_events()
  for q, t in pairs(EVQ) do
    if #t == 0 then
      -- nothing moved in this queue (an atomic batch that stored nothing)
    elseif ACTOR then
      redis.call('XADD', qk(q, 'events'), 'MAXLEN', '~', EV_CAP, '*', 'at', NOWS, 'x', ACTOR, 'r', table.concat(t, '\n'))
    else
      redis.call('XADD', qk(q, 'events'), 'MAXLEN', '~', EV_CAP, '*', 'at', NOWS, 'r', table.concat(t, '\n'))
    end
  end
  EVQ = {}
end

-- Queues that got claimable (or newly scheduled) work during this call; each gets one entry
-- in its wake stream at the end, which wakes every `work_wait` blocked on it. The stream is
-- trimmed approximately (whole listpack nodes, so it keeps up to about 100 entries): exact
-- `MAXLEN 1` walked the node's deleted entries on every append, a fifth of a one-job
-- enqueue's Redis instructions.
local WAKE = {}
local function mark_wake(q) WAKE[q] = true end
local function flush_wake()
  for q, _ in pairs(WAKE) do
    redis.call('XADD', qk(q, 'wake'), 'MAXLEN', '~', '1', '*', 'w', '1')
  end
  flush_events()
end

-- Outcomes per queue and minute (Backend::stats_minutes, src/ops/rollup.rs): the scripts
-- that end attempts tally them here and write the tally at their end with `flush_roll`, one
-- HINCRBY per queue and field, into the hash `roll:<day>` of the queue (fields
-- `<minute><s|f|d>`: succeeded, failed, dead; day and minute count from the epoch in the
-- store's clock). The hash expires eight days after its last write (a relative TTL, so a
-- test clock far from the server's time cannot expire it at once).
local ROLL = {}
local ROLL_TTL = '691200000'
local function roll(q, field, n)
  local t = ROLL[q]
  if not t then t = {}; ROLL[q] = t end
  t[field] = (t[field] or 0) + n
end
local function flush_roll()
  local minute = string.format('%d', math.floor(NOW / 60000))
  local k
  for q, t in pairs(ROLL) do
    k = qk(q, 'roll:' .. string.format('%d', math.floor(NOW / 86400000)))
    for field, n in pairs(t) do
      redis.call('HINCRBY', k, minute .. field, n)
    end
    redis.call('PEXPIRE', k, ROLL_TTL)
  end
end

-- A queue's limits (quern::model::QueueSettings) in its meta hash: concurrency cap `cc`
-- (counted against the lease set, the queue's running jobs), rate limit `rc` per `rp` ms
-- with burst `rb`, and the GCRA state `rt` (theoretical arrival time, ms; absent = a full
-- bucket). How many of `want` jobs may be leased now: the same rule as
-- quern::model::RateLimit::admit and the SQLite backend's `limits::admit`, which the
-- conformance cases hold all of them to. Returns take, whether the cap held, the next
-- token's time when the rate held (else nil), and for a rate limit its interval and base
-- (the state after leasing n jobs is base + n * interval; see `took`).
local function admit(q, want)
  local m = redis.call('HMGET', qk(q, 'meta'), 'cc', 'rc', 'rp', 'rb', 'rt')
  local take, capped = want, false
  if m[1] then
    local room = tonumber(m[1]) - redis.call('ZCARD', qk(q, 'lease'))
    if room < 0 then room = 0 end
    if room < take then take, capped = room, true end
  end
  if not m[2] then return take, capped, nil, nil, nil end
  local i = tonumber(m[3]) / tonumber(m[2])
  local burst = tonumber(m[4])
  local base = tonumber(m[5] or '0')
  if base < NOW then base = NOW end
  local avail = math.floor((burst * i - (base - NOW) + 1e-6) / i)
  if avail < 0 then avail = 0 end
  local t = take
  if avail < t then t = avail end
  local next_at = nil
  if t < take and not capped then
    next_at = math.ceil(base + t * i + i - burst * i)
    if next_at < NOW + 1 then next_at = NOW + 1 end
  end
  return t, capped, next_at, i, base
end

-- After a claim leased `got` jobs of `q` that `admit` allowed: stores the rate limiter's
-- state for exactly `got` (nothing without a rate limit).
local function took(q, got, i, base)
  if i and got > 0 then
    redis.call('HSET', qk(q, 'meta'), 'rt', string.format('%.17g', base + got * i))
  end
end

-- The queue a job id lives in: single node looks it up in the id index; on Cluster the
-- caller always passes the queue (scripts never leave their slot).
local function queue_of(id)
  return redis.call('HGET', IDX, id)
end

-- Moves a job whose trigger is met to `queued` (or `scheduled` while its run_at is ahead).
-- `from` is the state it leaves (nil: blocked), for its event.
local function make_ready(q, id, prio, run_at, from)
  local k = jk(q, id)
  local to = S_QUEUED
  if run_at > NOW then
    to = S_SCHED
    redis.call('HSET', k, 's', S_SCHED)
    redis.call('ZADD', qk(q, 'sched'), run_at, id)
  else
    redis.call('HSET', k, 's', S_QUEUED)
    ready_add(q, id, score(prio, run_at))
  end
  event(q, id, from or S_BLOCKED, to)
  mark_wake(q)
end

-- Trigger::resolve over counts: trigger 0 all_success, 1 all_done, 2 any_success. Returns
-- S_QUEUED, S_SKIPPED or nil (keep waiting). `n` counts distinct dependencies.
local function resolve(trigger, n, ok, bad)
  local done = ok + bad
  if trigger == 0 then
    if bad > 0 then return S_SKIPPED elseif ok == n then return S_QUEUED end
    return nil
  elseif trigger == 1 then
    if done == n then return S_QUEUED end
    return nil
  else
    if ok > 0 or n == 0 then return S_QUEUED elseif done == n then return S_SKIPPED end
    return nil
  end
end

local function split_member(m)
  local sep = string.find(m, '/', 1, true)
  return string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
end

-- Counts a job's dependency list (`dl`, `queue/id` members) by the dependencies' current
-- states, for a retry deciding whether the job can still run. `assumed` maps ids to the
-- state to count instead of the stored one (jobs retried or cancelled earlier in the same
-- call). A pruned dependency finished long ago: it counts as done without success.
-- Returns ok, bad, n (successes, failed-terminal, distinct dependencies).
local function count_deps(list, assumed)
  local ok, bad, nd = 0, 0, 0
  for m in string.gmatch(list, '%S+') do
    nd = nd + 1
    local dq, did = split_member(m)
    local dst = assumed[did]
    if not dst then
      dst = S_DEAD
      local ds = redis.call('HGET', jk(dq, did), 's')
      if ds then dst = tonumber(ds) end
    end
    if dst == S_OK then ok = ok + 1 elseif TERM[dst] then bad = bad + 1 end
  end
  return ok, bad, nd
end

-- Retention by bytes (`job_prune_bytes`): what a finished job counts against the budget, its
-- static blob (payload and fixed fields), result and checkpoint as stored. A blob of at most
-- 1 KiB is in 64-byte chunks d0, d1, … (the layout written below), and only a full chunk can be
-- followed by another.
local function fin_bytes(k)
  local n = redis.call('HSTRLEN', k, 'd0')
  local m, x = n, 1
  while m == 64 and x < 17 do
    m = redis.call('HSTRLEN', k, 'd' .. x)
    n = n + m
    x = x + 1
  end
  return n + redis.call('HSTRLEN', k, 'res') + redis.call('HSTRLEN', k, 'cp')
end

-- Each queue keeps the bytes of its finished jobs in `meta` field `fb`: added when a job
-- becomes terminal (set_terminal, a terminal enqueue or import), taken off when it leaves
-- (retry, prune, delete) or its result expires. A store's total is the sum over its queues.
local function fin_add(q, n)
  if n ~= 0 then redis.call('HINCRBY', qk(q, 'meta'), 'fb', n) end
end

-- Finished bytes gathered per queue by a batch caller of set_terminal (complete.lua), written
-- with one HINCRBY per queue by flush_fin.
local FIN = {}
local function flush_fin()
  for q, n in pairs(FIN) do fin_add(q, n) end
  FIN = {}
end

-- Records the terminal state `st` (the caller already removed the job from the structure of
-- its previous state).
-- The last lease's fields stay (they are shown only while running): one call less.
-- `batch`, when given, collects ids for one multi-member ZADD by the caller, and the job's
-- finished bytes in FIN (the caller calls flush_fin). `from` is the state it leaves and
-- `attempt` the job's attempt when the caller read it, for the job's event: an attempt's end
-- (from running, attempt given) is a hot move, derived from `f` and the error history when
-- the timeline is read; any other (a cancel, a skip) is a cold one with a stored line.
local function set_terminal(q, id, st, batch, from, attempt)
  local k = jk(q, id)
  redis.call('HSET', k, 's', STS[st], 'f', NOWS)
  if from == S_RUNNING and attempt then
    ev_hot(q, id, from, st, attempt, '')
  else
    event(q, id, from, st)
  end
  if batch then
    batch[#batch + 1] = NOWS
    batch[#batch + 1] = id
    FIN[q] = (FIN[q] or 0) + fin_bytes(k)
  else
    redis.call('ZADD', qk(q, TERM[st]), NOW, id)
    fin_add(q, fin_bytes(k))
  end
end

-- Writes the static blob `d` as 64-byte fields d0, d1, …: Redis keeps a hash whose values
-- are all at most 64 bytes (hash-max-listpack-value) in the compact listpack encoding, about
-- half the memory of a hash with one long value. Past 1 KiB the listpack is lost anyway
-- (and large values are stored better in one piece), so the blob is one field then.
-- Readers take d0, d1, … up to the first missing one (every chunk but the last is full).
-- Hashes written before this layout also have the chunk count `dc`; readers ignore it.
-- `args` holds other field/value pairs to write in the same HSET.
local function hset_static(k, d, args)
  if #d > 1024 then
    args[#args + 1] = 'd0'
    args[#args + 1] = d
    redis.call('HSET', k, unpack(args))
    return
  end
  local n = math.ceil(#d / 64)
  if n == 0 then n = 1 end
  for x = 0, n - 1 do
    args[#args + 1] = 'd' .. x
    args[#args + 1] = string.sub(d, x * 64 + 1, x * 64 + 64)
  end
  redis.call('HSET', k, unpack(args))
end

-- The static blob of job hash `k` (nil when the hash has none).
local CHUNKS = { 'd0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'd10', 'd11', 'd12',
  'd13', 'd14', 'd15', 'd16' }
local function hget_static(k)
  local parts = redis.call('HMGET', k, unpack(CHUNKS))
  if not parts[1] then return nil end
  local n = 1
  while parts[n + 1] do n = n + 1 end
  return table.concat(parts, '', 1, n)
end

-- The kind in static blob `d` (codec.rs `encode_static`: a version byte, the payload's tag
-- byte, its length as 4 bytes little-endian, the payload, then the JSON of the other static
-- fields). serde writes that JSON in field order, the kind `k` first, so a kind without
-- escapes is read with one anchored match instead of decoding the JSON.
local function static_kind(d)
  if not d or #d < 6 then return '' end
  local b3, b4, b5, b6 = string.byte(d, 3, 6)
  local n = b3 + b4 * 256 + b5 * 65536 + b6 * 16777216
  local k = string.match(d, '^{"k":"([^"\\]*)"', 7 + n)
  if k then return k end
  local ok, rest = pcall(cjson.decode, string.sub(d, 7 + n))
  if ok and type(rest) == 'table' and type(rest.k) == 'string' then return rest.k end
  return ''
end

-- The kind of job `id` of q, from its static blob.
local function job_kind(q, id)
  return static_kind(hget_static(jk(q, id)))
end

-- The static blob and the group ('' = none) in `all`, a job hash as HGETALL returns it
-- (the blob's chunks d0, d1, … up to the first missing one, as hget_static reads them).
local function image_static_group(all)
  local parts, grp = {}, ''
  for z = 1, #all, 2 do
    local f = all[z]
    if f == 'g' then
      grp = all[z + 1]
    elseif string.byte(f, 1) == 100 then
      local x = tonumber(string.sub(f, 2))
      if x then parts[x + 1] = all[z + 1] end
    end
  end
  local n = 0
  while parts[n + 1] do n = n + 1 end
  if n == 0 then return nil, grp end
  return table.concat(parts, '', 1, n), grp
end

-- Kind and group rates and the holds of a `RateLimited` outcome (QueueSettings::kinds and
-- ::group_rate; FailAction::RateLimited), all in the queue's slot: meta `kr` (the JSON of
-- the kind patterns, {pattern: {rate: {count, per, burst}}}), `xc`, `xp`, `xb` (the group
-- rate's count, period in ms and burst) and `hu` (the latest hold of any group or kind);
-- the hashes `kt` (pattern -> GCRA state), `gt` (group -> GCRA state), `kh` (kind -> hold
-- until) and `gh` (group -> hold until). The same rules as the SQLite backend's
-- ops/gate.rs, which the conformance cases hold both to. `gate_new` is one HMGET and
-- returns nil when nothing applies, so other queues claim as before. A gate keeps the job
-- hashes it read (`img`, HGETALL images by id), so the claim reads each leased job once.
local function gate_new(q)
  local m = redis.call('HMGET', qk(q, 'meta'), 'kr', 'xc', 'xp', 'xb', 'hu')
  local holds = m[5] ~= false and m[5] ~= nil and tonumber(m[5]) > NOW
  if not m[1] and not m[2] and not holds then return nil end
  local g = { q = q, holds = holds, tat = {}, hold = {}, dirty = {}, next_at = nil, img = {}, kinds = {} }
  if m[1] then
    g.rules = cjson.decode(m[1])
    g.pats = {}
    for p, _ in pairs(g.rules) do g.pats[#g.pats + 1] = p end
    table.sort(g.pats)
  end
  if m[2] then g.gr = { tonumber(m[3]) / tonumber(m[2]), tonumber(m[4]) } end
  return g
end

-- `*` and `?` globbing (quern::routing's glob): the pattern as an anchored Lua pattern.
local GLOBS = {}
local function glob(p, s)
  local lp = GLOBS[p]
  if not lp then
    lp = '^' .. string.gsub(p, '.', function(c)
      if c == '*' then return '.*' elseif c == '?' then return '.' end
      if string.find(c, '^%w$') then return c end
      return '%' .. c
    end) .. '$'
    GLOBS[p] = lp
  end
  return string.find(s, lp) ~= nil
end

-- The pattern governing `kind` (quern::model::kind_rule): an equal pattern first, else the
-- longest matching one, ties to the first in byte order.
local function kind_rule(g, kind)
  if not g.rules then return nil end
  if g.rules[kind] then return kind end
  local best = nil
  for _, p in ipairs(g.pats) do
    if glob(p, kind) and (not best or #p > #best) then best = p end
  end
  return best
end

-- A bucket's GCRA state (hash `h`: 'kt' or 'gt'), read once per script.
local function gate_tat(g, h, name)
  local key = h .. '\0' .. name
  local t = g.tat[key]
  if not t then
    t = tonumber(redis.call('HGET', qk(g.q, h), name) or '0')
    g.tat[key] = t
  end
  return t, key
end

-- One token of a bucket with interval `i` and burst `b` at state `tat` (RateLimit::admit
-- for one job): whether it is there, and the new state or, when not, the time it is.
local function gcra1(tat, i, b)
  local base = tat
  if base < NOW then base = NOW end
  if math.floor((b * i - (base - NOW) + 1e-6) / i) >= 1 then return true, base + i end
  local t = math.ceil(base + i - b * i)
  if t < NOW + 1 then t = NOW + 1 end
  return false, t
end

-- Job `id`'s hash as HGETALL returns it, read once per gate.
local function gate_image(g, id)
  local all = g.img[id]
  if not all then
    all = redis.call('HGETALL', jk(g.q, id))
    g.img[id] = all
  end
  return all
end

-- Job `id`'s kind, from its image.
local function gate_kind(g, id)
  local k = g.kinds[id]
  if not k then
    k = static_kind((image_static_group(gate_image(g, id))))
    g.kinds[id] = k
  end
  return k
end

-- Whether job `id` in group `grp` ('' = none) may be leased now; when not, the time it
-- may is folded into g.next_at. `take` also counts it (one token of its kind pattern's
-- bucket and of its group's). The kind is read only when a kind rule or a kind hold may
-- apply.
local function gate_pass(g, id, grp, take)
  local at = NOW
  if g.holds then
    local h, name = 'gh', grp
    if grp == '' then h, name = 'kh', gate_kind(g, id) end
    local key = h .. '\0' .. name
    local u = g.hold[key]
    if not u then
      u = tonumber(redis.call('HGET', qk(g.q, h), name) or '0')
      g.hold[key] = u
    end
    if u > at then at = u end
  end
  local p = nil
  if g.rules then p = kind_rule(g, gate_kind(g, id)) end
  local kr, kkey, knew = nil, nil, nil
  if p then
    local r = g.rules[p].rate
    local tat
    tat, kkey = gate_tat(g, 'kt', p)
    local ok, v = gcra1(tat, r.per / r.count, r.burst)
    if ok then knew = v elseif v > at then at = v end
    kr = true
  end
  local gkey, gnew = nil, nil
  if g.gr then
    local tat
    tat, gkey = gate_tat(g, 'gt', grp)
    local ok, v = gcra1(tat, g.gr[1], g.gr[2])
    if ok then gnew = v elseif v > at then at = v end
  end
  if at > NOW then
    if not g.next_at or at < g.next_at then g.next_at = at end
    return false
  end
  if take then
    if kr then g.tat[kkey] = knew; g.dirty[kkey] = true end
    if gkey then g.tat[gkey] = gnew; g.dirty[gkey] = true end
  end
  return true
end

-- Writes the buckets this claim moved.
local function gate_store(g)
  for key, _ in pairs(g.dirty) do
    local h, name = string.match(key, '^(%a+)%z(.*)$')
    redis.call('HSET', qk(g.q, h), name, string.format('%.17g', g.tat[key]))
  end
end

-- A `RateLimited` outcome: holds the group of job `id` of q (its kind's, without a group)
-- until `till`, never earlier than a hold already there.
local function gate_hold(q, id, till)
  local grp = redis.call('HGET', jk(q, id), 'g') or ''
  local h, name = 'gh', grp
  if grp == '' then h, name = 'kh', job_kind(q, id) end
  local u = tonumber(till)
  local old = tonumber(redis.call('HGET', qk(q, h), name) or '0')
  if u > old then redis.call('HSET', qk(q, h), name, till) end
  local mk = qk(q, 'meta')
  if u > tonumber(redis.call('HGET', mk, 'hu') or '0') then redis.call('HSET', mk, 'hu', till) end
end

-- Ends a job in terminal state `st` and settles its dependents in the same script:
-- each blocked dependent counts this outcome, then is queued, skipped or left waiting.
-- Skips cascade transitively (an explicit stack, not recursion).
-- `has_dependents` false skips the lookup (the caller read the job's `hd` flag); `batch`
-- collects the terminal-set entry of the job itself for the caller's multi-member ZADD.
-- `from` is the state the job leaves (nil: running) and `attempt` its attempt if the caller
-- read it, for its event.
local function finish(q, id, st, has_dependents, batch, from, attempt)
  set_terminal(q, id, st, batch, from or S_RUNNING, attempt)
  if has_dependents == false then return end
  local stack = { { q, id, st } }
  while #stack > 0 do
    local top = table.remove(stack)
    local dq, did, dst = top[1], top[2], top[3]
    local members = redis.call('SMEMBERS', qk(dq, 'dn:' .. did))
    for _, m in ipairs(members) do
      local jq, jid = split_member(m)
      local key = jk(jq, jid)
      local f = job_hmget(key, 's', 'dt', 'dn', 'dk', 'db', 'p', 'r')
      if f[1] == '2' then
        local ok, bad = tonumber(f[4]), tonumber(f[5])
        if dst == S_OK then
          ok = ok + 1
          redis.call('HSET', key, 'dk', ok)
        else
          bad = bad + 1
          redis.call('HSET', key, 'db', bad)
        end
        local r = resolve(tonumber(f[2]), tonumber(f[3]), ok, bad)
        if r then
          redis.call('SREM', qk(jq, 'blocked'), jid)
          if r == S_QUEUED then
            make_ready(jq, jid, tonumber(f[6]), tonumber(f[7]))
          else
            set_terminal(jq, jid, S_SKIPPED, nil, S_BLOCKED)
            table.insert(stack, { jq, jid, S_SKIPPED })
          end
        end
      end
    end
  end
end

-- Undoes what a terminal job counted in its still-blocked dependents, when an operator moves
-- it out of its terminal state (retry), so that its next outcome is counted once.
local function uncount(q, id, prev_st)
  local members = redis.call('SMEMBERS', qk(q, 'dn:' .. id))
  local field = 'db'
  if prev_st == S_OK then field = 'dk' end
  for _, m in ipairs(members) do
    local jq, jid = split_member(m)
    local key = jk(jq, jid)
    if redis.call('HGET', key, 's') == '2' then
      redis.call('HINCRBY', key, field, -1)
    end
  end
end

-- Appends one JSON line to the job's error history.
local function add_error(k, line)
  local cur = redis.call('HGET', k, 'er')
  if cur then
    redis.call('HSET', k, 'er', cur .. '\n' .. line)
  else
    redis.call('HSET', k, 'er', line)
  end
end

-- An error-history line (a JSON object) with the failed attempt's claim and due times and
-- the retry time added (each nil to leave out): the timeline derives the attempt's moves
-- from them (quern::model::job_timeline), so the fail path stores no timeline line.
local function err_times(line, claimed, due, retry)
  local x = ''
  if claimed then x = x .. ',"claimed_at":' .. claimed end
  if due then x = x .. ',"due_at":' .. due end
  if retry then x = x .. ',"retry_at":' .. retry end
  if x == '' then return line end
  return string.sub(line, 1, -2) .. x .. '}'
end

-- Removes a job from the structure of its current (non-terminal) state.
local function unlink_live(q, id, st)
  if st == S_SCHED then
    redis.call('ZREM', qk(q, 'sched'), id)
  elseif st == S_QUEUED then
    redis.call('ZREM', qk(q, 'ready'), id)
  elseif st == S_BLOCKED then
    redis.call('SREM', qk(q, 'blocked'), id)
  elseif st == S_RUNNING then
    redis.call('ZREM', qk(q, 'lease'), id)
  end
end

-- Moves due scheduled jobs of queue q to ready, oldest first, at most `max` of them.
local function promote(q, max)
  local due = redis.call('ZRANGEBYSCORE', qk(q, 'sched'), '-inf', NOWS, 'LIMIT', '0', string.format('%d', max))
  local grouped = #due > 0 and is_grouped(q)
  for _, id in ipairs(due) do
    local k = jk(q, id)
    local f = job_hmget(k, 'p', 'r', 'a')
    redis.call('HSET', k, 's', STS[S_QUEUED])
    -- Derived from the due time when the timeline is read: a stream record only.
    ev_rec(q, id, S_SCHED, S_QUEUED, f[3], '')
    ready_add(q, id, string.format('%d', score(tonumber(f[1]), tonumber(f[2]))), grouped)
  end
  if #due > 0 then
    redis.call('ZREM', qk(q, 'sched'), unpack(due))
  end
  return #due
end

-- Runs `cmd key <list…>` in slices: unpack() is limited by the Lua stack.
local function slices(cmd, key, list)
  for i = 1, #list, 4000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
  end
end

-- A queue's claim order and aging (quern::model::ClaimOrder and Aging) in its meta hash:
-- `o` ('f' fifo, 'l' lifo, 'r' weighted-random; absent = priority) and aging `aa` (after,
-- ms), `as` (step), `ae` (every, ms; absent = aa), `ab` (bound). Returns the order letter
-- (nil for priority) and the aging as {after, step, every, bound} (nil when off); both nil
-- means the default one-range claim.
local function queue_order(q)
  local m = redis.call('HMGET', qk(q, 'meta'), 'o', 'aa', 'as', 'ae', 'ab')
  local a = nil
  if m[2] then
    local after = tonumber(m[2])
    a = { after, tonumber(m[3] or '1'), tonumber(m[4] or m[2]), tonumber(m[5] or '0') }
    if a[3] < 1 then a[3] = 1 end
  end
  return m[1], a
end

-- A job's effective priority under aging `a` (Aging::effective in model/order.rs).
local function aged(a, p, due)
  if not a then return p end
  local waited = NOW - due
  if waited < a[1] or p <= a[4] then return p end
  local e = p - (1 + math.floor((waited - a[1]) / a[3])) * a[2]
  if e < a[4] then e = a[4] end
  return e
end

-- The first `want` ready jobs of q in order `o` with aging `a`, among those whose effective
-- priority is below level `below` (10 = any), as ids: the heads of each priority level of
-- the ready set (its score is priority * PRIO_UNIT + run_at), merged by the rule of
-- quern::model::pick (the first `want` of the queue are among the first `want` of each
-- level). `rnd()` yields numbers in [0, 1) for weighted-random. Costs 10 range reads of at
-- most `want` members (and 10 ZCOUNTs for weighted-random) instead of one.
local function pick_ordered(q, o, a, want, below, rnd)
  local rk = qk(q, 'ready')
  local levels, all = {}, {}
  local n = string.format('%d', want)
  for p = 0, 9 do
    local l = {}
    if a or p < below then
      local lo = string.format('%d', p * PRIO_UNIT)
      local hi = string.format('%d', (p + 1) * PRIO_UNIT - 1)
      local r
      if o == 'l' then
        r = redis.call('ZREVRANGEBYSCORE', rk, hi, lo, 'WITHSCORES', 'LIMIT', '0', n)
      else
        r = redis.call('ZRANGEBYSCORE', rk, lo, hi, 'WITHSCORES', 'LIMIT', '0', n)
      end
      for i = 1, #r, 2 do
        local due = tonumber(r[i + 1]) - p * PRIO_UNIT
        local e = aged(a, p, due)
        if e < below then
          local c = { r[i], due, e, p }
          l[#l + 1] = c
          all[#all + 1] = c
        end
      end
    end
    levels[p] = l
  end
  local out = {}
  if o == 'r' then
    local left, pos = {}, {}
    for p = 0, 9 do
      pos[p] = 1
      left[p] = 0
      if #levels[p] > 0 then
        local lo = string.format('%d', p * PRIO_UNIT)
        local hi = string.format('%d', (p + 1) * PRIO_UNIT - 1)
        left[p] = redis.call('ZCOUNT', rk, lo, hi)
        if left[p] < #levels[p] then left[p] = #levels[p] end
      end
    end
    while #out < want do
      local total = 0
      for p = 0, 9 do total = total + left[p] * (10 - p) end
      if total == 0 then break end
      local ticket = math.floor(rnd() * total)
      if ticket > total - 1 then ticket = total - 1 end
      local level = 0
      for p = 0, 9 do
        local w = left[p] * (10 - p)
        if ticket < w then level = p break end
        ticket = ticket - w
      end
      local c = levels[level][pos[level]]
      if c then
        out[#out + 1] = c[1]
        pos[level] = pos[level] + 1
        left[level] = left[level] - 1
        if pos[level] > #levels[level] then left[level] = 0 end
      else
        left[level] = 0
      end
    end
    return out
  end
  if o == 'f' then
    table.sort(all, function(x, y)
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[1] < y[1]
    end)
  elseif o == 'l' then
    table.sort(all, function(x, y)
      if x[2] ~= y[2] then return x[2] > y[2] end
      return x[1] > y[1]
    end)
  else
    table.sort(all, function(x, y)
      if x[3] ~= y[3] then return x[3] < y[3] end
      if x[2] ~= y[2] then return x[2] < y[2] end
      return x[1] < y[1]
    end)
  end
  for i = 1, math.min(want, #all) do out[i] = all[i][1] end
  return out
end

-- Whether q has a ready job below priority level `below` (0-10) that its order admits: one
-- read, or with aging the head of each level (aged jobs may be promoted below the bound).
local function ready_below(q, below)
  local o, a = queue_order(q)
  if a and below < 10 then
    return #pick_ordered(q, 'f', a, 1, below, nil) > 0
  end
  if below >= 10 then return redis.call('ZCARD', qk(q, 'ready')) > 0 end
  local bound = string.format('(%d', below * PRIO_UNIT)
  return #redis.call('ZRANGEBYSCORE', qk(q, 'ready'), '-inf', bound, 'LIMIT', '0', '1') > 0
end

-- Running jobs of group g of q (its `gl:` set, each member checked against the lease set;
-- those that left it are dropped).
local function group_running(q, g)
  local gl = qk(q, 'gl:' .. g)
  local ids = redis.call('ZRANGE', gl, '0', '-1')
  local lk, n = qk(q, 'lease'), 0
  for _, id in ipairs(ids) do
    if redis.call('ZSCORE', lk, id) then n = n + 1 else redis.call('ZREM', gl, id) end
  end
  return n
end

-- The first ready job of group g of q scoring below `bound` (nil = any), or nil. Members
-- that left the ready set are dropped on the way; an empty group leaves the rotation.
local function group_head(q, g, bound)
  local gk, rk = qk(q, 'g:' .. g), qk(q, 'ready')
  while true do
    local h = redis.call('ZRANGE', gk, '0', '0', 'WITHSCORES')
    if #h == 0 then
      redis.call('ZREM', qk(q, 'gq'), g)
      return nil
    end
    local id, sc = h[1], tonumber(h[2])
    local cur = redis.call('ZSCORE', rk, id)
    if not cur then
      redis.call('ZREM', gk, id)
    elseif tonumber(cur) ~= sc then
      redis.call('ZADD', gk, cur, id)
    elseif bound and sc >= bound then
      return nil
    else
      return id
    end
  end
end

-- Most ready jobs a claim looks at past the ones it takes when a gate turns some away
-- (ops/gate.rs KIND_PROBE in the SQLite backend).
local KIND_PROBE = 256

-- Up to `want` ready jobs of non-grouped queue q in its order (`o`, `a` as for
-- pick_ordered; below level `below`, 10 = any) that gate `g` admits, among its first
-- `want + KIND_PROBE`; each one picked is counted in the gate. The claim leases them;
-- peek.lua asks with want = 1. It reads the first `want` and, only while the gate turns
-- some away, four times as many (up to the probe), so a gate that does not bind costs no
-- longer reads than no gate.
local function gate_pick(q, o, a, want, below, rnd, g)
  local out, seen = {}, {}
  local n = want
  local hi = '+inf'
  if below < 10 then hi = string.format('(%d', below * PRIO_UNIT) end
  while true do
    local ids
    if o or a then
      ids = pick_ordered(q, o, a, n, below, rnd)
    else
      ids = redis.call('ZRANGEBYSCORE', qk(q, 'ready'), '-inf', hi, 'LIMIT', '0', string.format('%d', n))
    end
    for _, id in ipairs(ids) do
      if #out >= want then break end
      if not seen[id] then
        seen[id] = true
        local _, grp = image_static_group(gate_image(g, id))
        if gate_pass(g, id, grp, true) then out[#out + 1] = id end
      end
    end
    if #out >= want or #ids < n or n >= want + KIND_PROBE then break end
    n = math.min(want + KIND_PROBE, n * 4)
  end
  return out
end

-- Most groups one claim considers (those in the rotation, least recently served first).
local GROUP_PROBE = '255'

-- Up to `want` ready jobs of grouped queue q below priority level `below` (10 = any),
-- round-robin over its groups: least recently served first, one job per group per round,
-- each group's jobs in its ready set's order (priority, run_at, id), skipping groups at the
-- group cap `gc`. Each job taken leaves its group's set and moves its group to the back of
-- the rotation; `dry` (work_wait's question) stops at the first job and changes nothing
-- but the lazy clean-up. With gate `gate` (kind and group rates, holds), a group whose
-- head job the gate turns away is passed over for this call. Returns the ids and the
-- group of each.
local function pick_groups(q, want, below, dry, gate)
  local mk, gq = qk(q, 'meta'), qk(q, 'gq')
  local m = redis.call('HMGET', mk, 'gc', 'gs')
  local cap = tonumber(m[1] or '')
  local seq = tonumber(m[2] or '0')
  local bound = nil
  if below < 10 then bound = below * PRIO_UNIT end
  local open = {}
  for _, g in ipairs(redis.call('ZRANGE', gq, '0', GROUP_PROBE)) do
    local run = 0
    if cap then run = group_running(q, g) end
    if not cap or run < cap then open[#open + 1] = { g, run } end
  end
  local ids, groups = {}, {}
  while #ids < want and #open > 0 do
    local keep = {}
    for _, e in ipairs(open) do
      if #ids >= want then
        keep[#keep + 1] = e
      else
        local id = group_head(q, e[1], bound)
        if id and gate and not gate_pass(gate, id, e[1], not dry) then id = nil end
        if id then
          ids[#ids + 1], groups[#groups + 1] = id, e[1]
          if dry then return ids, groups end
          redis.call('ZREM', qk(q, 'g:' .. e[1]), id)
          seq = seq + 1
          redis.call('ZADD', gq, 'XX', string.format('%d', seq), e[1])
          e[2] = e[2] + 1
          if not cap or e[2] < cap then keep[#keep + 1] = e end
        end
      end
    end
    open = keep
  end
  if not dry and #ids > 0 then redis.call('HSET', mk, 'gs', string.format('%d', seq)) end
  return ids, groups
end

-- Body of the script follows.

-- Deletes finished job `id` (terminal state `st`) of q with what belongs to it: its hash,
-- its unique key (if it still holds it), its dependents list, its logs and its set
-- memberships; its bytes come off the queue's finished total; its deletion is a job event
-- (with the job's kind: nothing is left to read it from later). Returns those bytes.
local function drop_finished(q, id, st)
  local k = jk(q, id)
  ev_rec(q, id, st, nil, redis.call('HGET', k, 'a'), job_kind(q, id))
  local u = redis.call('HGET', k, 'u')
  if u and redis.call('HGET', qk(q, 'uniq'), u) == id then
    redis.call('HDEL', qk(q, 'uniq'), u)
  end
  local n = fin_bytes(k)
  fin_add(q, -n)
  redis.call('DEL', k, qk(q, 'dn:' .. id), qk(q, 'log:' .. id), qk(q, 'logh:' .. id))
  redis.call('ZREM', qk(q, TERM[st]), id)
  redis.call('ZREM', qk(q, 'ids'), id)
  redis.call('ZREM', qk(q, 'rexp'), id)
  if not CLUSTER then redis.call('HDEL', IDX, id) end
  return n
end
