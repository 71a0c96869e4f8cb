-- wrk script: single-job enqueue, POST /v1/jobs with a ~100-byte JSON payload (the same
-- shape as `quern bench`'s). Each connection is one keep-alive client.
--   wrk -t2 -c16 -d10s -s bench/http/enqueue.lua http://127.0.0.1:8080
-- QUEUE (env) names the queue; QUERN_TOKEN (env) adds a bearer token.
local queue = os.getenv("QUEUE") or "http-bench"
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("QUERN_TOKEN")
if token then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"kind":"bench","queue":"' .. queue .. '","payload":{"user_id":12345,' ..
  '"email":"user12345@example.com","action":"send_welcome_email","ts":1764748800000}}'

function done(summary, latency, requests)
  io.write(string.format("jobs/s: %.0f  (requests %d, non-2xx %d, p50 %.2f ms, p99 %.2f ms)\n",
    summary.requests / (summary.duration / 1e6), summary.requests,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
