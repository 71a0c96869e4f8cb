-- wrk script: batch enqueue, POST /v1/jobs/batch with BATCH (env, default 1000) jobs of
-- ~100-byte JSON payloads per request, atomic.
--   BATCH=1000 wrk -t2 -c4 -d10s -s bench/http/batch.lua http://127.0.0.1:8080
-- Jobs/s = requests/s × BATCH (printed by `done`).
local queue = os.getenv("QUEUE") or "http-bench-batch"
local n = tonumber(os.getenv("BATCH") or "1000")
wrk.method = "POST"
wrk.path = "/v1/jobs/batch"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("QUERN_TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end
local job = '{"kind":"bench","queue":"' .. queue .. '","payload":{"user_id":12345,' ..
  '"email":"user12345@example.com","action":"send_welcome_email","ts":1764748800000}}'
local jobs = {}
for i = 1, n do jobs[i] = job end
wrk.body = '{"mode":"atomic","jobs":[' .. table.concat(jobs, ",") .. ']}'

function done(summary, latency, requests)
  local rps = summary.requests / (summary.duration / 1e6)
  io.write(string.format("jobs/s: %.0f  (%d requests of %d jobs, non-2xx %d, p50 %.1f ms, p99 %.1f ms)\n",
    rps * n, summary.requests, n, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
