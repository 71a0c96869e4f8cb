-- job_reprioritize. ARGV[4] queue, ARGV[5] id, ARGV[6] new priority (0-9).
-- A job waiting to run (scheduled, queued, blocked: JobState::is_waiting) gets priority `p`
-- and nothing else changes. A queued job is re-scored in the ready set at once (the score
-- keeps its run_at, see `score`), and waiters are woken since it may now pass their
-- `more_urgent_than` bound; a scheduled or blocked job keeps its set, and `promote` /
-- `make_ready` score it from the new `p` when it becomes ready. The default priority is
-- left out of the hash, as enqueue_plain.lua does (`job_hmget` fills it in).
-- Returns {0, HGETALL} on success, {1, state} when the job is not waiting, {2} when missing.

local q, id, p = ARGV[4], ARGV[5], ARGV[6]
local k = jk(q, id)
local f = redis.call('HMGET', k, 's', 'r')
if not f[1] then return { 2 } end
local st = tonumber(f[1])
if st ~= S_SCHED and st ~= S_QUEUED and st ~= S_BLOCKED then return { 1, st } end
if p == DEF_P then
  redis.call('HDEL', k, 'p')
else
  redis.call('HSET', k, 'p', p)
end
if st == S_QUEUED then
  ready_add(q, id, string.format('%d', score(tonumber(p), tonumber(f[2]))))
  mark_wake(q)
end
-- Audited (an actor asked): a timeline line and a stream record with `from` = `to`.
if ACTOR then event(q, id, st, st) end
flush_wake()
return { 0, redis.call('HGETALL', k) }
