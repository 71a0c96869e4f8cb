# Fills a quern server with N jobs through POST /v1/jobs/batch (atomic batches of 10,000),
# 5 queues, 7 kinds, payloads with a customer field, every 10th job in a group.
import json, sys, time, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
t0 = time.time()
done = 0
b = 0
while done < n:
    jobs = []
    for i in range(min(10000, n - done)):
        k = done + i
        j = {"kind": f"k{k % 7}", "queue": f"q{k % 5}", "payload": {"customer": k % 1000, "n": k}}
        if k % 10 == 0:
            j["group"] = f"tenant{k % 50}"
        jobs.append(j)
    body = json.dumps({"jobs": jobs, "mode": "atomic"}).encode()
    req = urllib.request.Request(base + "/v1/jobs/batch", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        r.read()
    done += len(jobs)
    b += 1
print(f"filled {done} in {time.time() - t0:.1f} s ({b} batches)")
