-- job_log_append. ARGV[4] max lines, ARGV[5] max bytes, then per job: queue, id, line count
-- n, then n times: at, level, attempt, message. Appends each job's lines to `{q}:log:<id>`
-- (entries `seq at level attempt message`), then drops the oldest while the job keeps more
-- than the caps allow; `{q}:logh:<id>` holds `n` next seq, `l` lines and `b` message bytes
-- kept, `d` lines dropped. Lines of a job that does not exist are dropped. Returns 1.

local maxl = tonumber(ARGV[4])
local maxb = tonumber(ARGV[5])
local i = 6
while i <= #ARGV do
  local q, id, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if redis.call('EXISTS', jk(q, id)) == 1 then
    local lk, hk = qk(q, 'log:' .. id), qk(q, 'logh:' .. id)
    local h = redis.call('HMGET', hk, 'n', 'l', 'b', 'd')
    local seq = tonumber(h[1] or '1')
    local lines, bytes, dropped = tonumber(h[2] or '0'), tonumber(h[3] or '0'), tonumber(h[4] or '0')
    local entries = {}
    for k = 0, n - 1 do
      local j = i + 4 * k
      local msg = ARGV[j + 3]
      entries[#entries + 1] = string.format('%d', seq) .. ' ' .. ARGV[j] .. ' ' .. ARGV[j + 1] .. ' ' .. ARGV[j + 2] .. ' ' .. msg
      seq = seq + 1
      lines = lines + 1
      bytes = bytes + #msg
      -- RPUSH in slices: unpack has a limit on how many values it returns.
      if #entries == 1000 then
        redis.call('RPUSH', lk, unpack(entries))
        entries = {}
      end
    end
    if #entries > 0 then redis.call('RPUSH', lk, unpack(entries)) end
    while lines > maxl or bytes > maxb do
      local e = redis.call('LPOP', lk)
      if not e then break end
      local hdr = string.match(e, '^%d+ %-?%d+ %d+ %d+ ')
      bytes = bytes - (#e - #hdr)
      lines = lines - 1
      dropped = dropped + 1
    end
    redis.call('HSET', hk, 'n', string.format('%d', seq), 'l', string.format('%d', lines),
      'b', string.format('%d', bytes), 'd', string.format('%d', dropped))
  end
  i = i + 4 * n
end
return 1
