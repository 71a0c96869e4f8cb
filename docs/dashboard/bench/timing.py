# Server time (Server-Timing app;dur) of each request the dashboard's pages make, 5 runs each.
import json, sys, urllib.request, urllib.parse
base = sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path) as r:
        body = r.read()
        st = r.headers.get("server-timing", "")
        return float(st.split("dur=")[1]) if "dur=" in st else None, body
_, body = get("/v1/jobs?limit=1")
some = json.loads(body)["jobs"][0]["id"]
paths = [
    "/",
    "/ui/api/overview",
    "/v1/queues",
    "/v1/queues/q3/settings",
    "/v1/stats/minutes?minutes=1440",
    "/v1/alerts",
    "/ui/api/jobs?limit=50",
    "/ui/api/jobs?q=" + urllib.parse.quote("queue:q3 state:queued"),
    "/ui/api/jobs?q=kind:k2",
    "/ui/api/jobs?q=id:" + some,
    "/ui/api/jobs?q=" + urllib.parse.quote("customer 999"),
    "/ui/api/jobs?q=" + urllib.parse.quote("error:boom"),
    "/ui/api/jobs?q=" + urllib.parse.quote("group:tenant10"),
    "/ui/api/jobs?q=" + urllib.parse.quote("payload.customer:42"),
    "/ui/api/jobs?q=" + urllib.parse.quote("state:scheduled"),
    "/ui/api/jobs?q=" + urllib.parse.quote("state:dead"),
    "/ui/api/jobs?q=" + urllib.parse.quote("queue:nope"),
    "/v1/jobs/" + some,
    "/v1/dlq?limit=100",
    "/v1/schedules",
    "/v1/workers",
    "/v1/workflows?limit=100",
]
for p in paths:
    runs = []
    for _ in range(5):
        ms, _ = get(p)
        runs.append(ms)
    runs.sort()
    print(f"| `{p}` | {runs[0]:.2f}–{runs[-1]:.2f} (median {runs[2]:.2f}) |")
