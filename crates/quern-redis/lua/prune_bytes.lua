-- job_prune_bytes, in two modes. ARGV[4] 'c' (count): ARGV[5] n, then queue names to the
-- end; returns per queue {name, finished bytes (meta `fb`), k, then k × (id, finished_at,
-- bytes)}: the queue's n oldest finished jobs over its four terminal sets, oldest first
-- (none for n = 0). ARGV[4] 'd' (delete): then queue, id pairs; each still finished is
-- deleted as prune.lua deletes. Returns {jobs deleted, bytes freed, deleted ids...}.

if ARGV[4] == 'c' then
  local n = tonumber(ARGV[5])
  local out = {}
  for qi = 6, #ARGV do
    local q = ARGV[qi]
    out[#out + 1] = q
    out[#out + 1] = tonumber(redis.call('HGET', qk(q, 'meta'), 'fb') or '0')
    local cands = {}
    if n > 0 then
      for _, name in pairs(TERM) do
        local r = redis.call('ZRANGE', qk(q, name), 0, n - 1, 'WITHSCORES')
        for x = 1, #r, 2 do cands[#cands + 1] = { tonumber(r[x + 1]), r[x] } end
      end
      table.sort(cands, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
    end
    local k = math.min(n, #cands)
    out[#out + 1] = k
    for x = 1, k do
      local c = cands[x]
      out[#out + 1] = c[2]
      out[#out + 1] = string.format('%d', c[1])
      out[#out + 1] = fin_bytes(jk(q, c[2]))
    end
  end
  return out
end

local deleted, freed = 0, 0
local ids_out = {}
for x = 5, #ARGV, 2 do
  local q, id = ARGV[x], ARGV[x + 1]
  local st = tonumber(redis.call('HGET', jk(q, id), 's'))
  if st and TERM[st] then
    freed = freed + drop_finished(q, id, st)
    deleted = deleted + 1
    ids_out[#ids_out + 1] = id
  end
end
flush_events()
local out = { deleted, freed }
for _, id in ipairs(ids_out) do out[#out + 1] = id end
return out
