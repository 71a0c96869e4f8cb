-- Cluster only: claims job ids in the global id index before their queue's enqueue script
-- runs (the index lives in another slot). ARGV[4] count, then per job: id, queue.
-- Returns per job: 1 newly indexed, 0 already indexed to this queue, or the other queue's
-- name when the id belongs to a job elsewhere (that enqueue must be refused).

local n = tonumber(ARGV[4])
local out = {}
for x = 0, n - 1 do
  local id, q = ARGV[5 + 2 * x], ARGV[6 + 2 * x]
  local cur = redis.call('HGET', IDX, id)
  if not cur then
    redis.call('HSET', IDX, id, q)
    out[x + 1] = 1
  elseif cur == q then
    out[x + 1] = 0
  else
    out[x + 1] = cur
  end
end
return out
