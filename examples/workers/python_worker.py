#!/usr/bin/env python3
"""A Quern worker in Python with only the standard library, over the HTTP worker protocol.

    python3 examples/workers/python_worker.py --server http://127.0.0.1:8080 --queues py

It registers, long-polls for jobs, heartbeats each one, and reports how it ended. The kinds
it knows are examples (docs/worker-protocol.md describes the protocol):

- ``py.echo``: succeeds with its payload as the result;
- ``py.flaky``: fails (retryable) on its first attempt, succeeds on the next;
- ``py.fatal``: fails for good (straight to the dead-letter queue);
- ``py.slow``: on its first attempt sleeps ``payload["sleep_ms"]`` without heartbeating, so
  its lease may run out and another worker take the job; then it still tries to complete.

Unknown kinds are failed as retryable. Every outcome is printed as one line on stdout
(``<job id> <call> <status> [<error code>]``), so a test can read what happened. With a
token configured, pass it with --token or QUERN_TOKEN.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


class Server:
    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def post(self, path, body, timeout=60):
        """POSTs JSON; returns (status, decoded body)."""
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def handle(job):
    """Runs one job: ("complete", result), ("fail", error, retryable) or
    ("rate_limited", retry_after_ms) when an upstream asked to slow down."""
    kind, payload, attempt = job["kind"], job["payload"], job["attempt"]
    if kind == "py.echo":
        return ("complete", payload)
    if kind == "py.flaky":
        if attempt == 1:
            return ("fail", "flaky: first attempt fails", True)
        return ("complete", {"attempt": attempt})
    if kind == "py.fatal":
        return ("fail", "fatal: cannot be done", False)
    if kind == "py.upstream":
        # An upstream that answers 429 until `limited_until_ms` (Unix ms): the job is snoozed
        # without counting the attempt, and its group (or kind) is held for that long.
        wait = payload.get("limited_until_ms", 0) - int(time.time() * 1000)
        if wait > 0:
            return ("rate_limited", wait)
        return ("complete", {"attempt": attempt})
    if kind == "py.slow":
        if attempt == 1:
            time.sleep(payload.get("sleep_ms", 0) / 1000)
        return ("complete", {"attempt": attempt})
    return ("fail", "python worker does not know kind " + kind, True)


def report(job, call, status, body):
    code = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
    print(job["id"], call, status, code, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--queues", default="default")
    ap.add_argument("--token", default=os.environ.get("QUERN_TOKEN"))
    ap.add_argument("--lease-ms", type=int, default=30000)
    ap.add_argument("--wait-ms", type=int, default=1000)
    ap.add_argument("--exit-when-idle", type=float, default=0,
                    help="exit after this many seconds without a job (0: never)")
    args = ap.parse_args()
    server = Server(args.server, args.token)
    queues = [q for q in args.queues.split(",") if q]

    status, reg = server.post("/v1/workers", {
        "queues": queues, "concurrency": 1, "hostname": "python",
        "pid": os.getpid(), "heartbeat_interval_ms": 5000,
    })
    if status != 201:
        sys.exit("register failed: %s %s" % (status, reg))
    worker_id = reg["worker_id"]
    idle_since = time.monotonic()
    while True:
        status, body = server.post("/v1/lease", {
            "worker_id": worker_id, "queues": queues, "max": 1,
            "wait_ms": args.wait_ms, "lease_ms": args.lease_ms,
        })
        if status != 200:
            sys.exit("lease failed: %s %s" % (status, body))
        if not body["jobs"]:
            if args.exit_when_idle and time.monotonic() - idle_since > args.exit_when_idle:
                return
            continue
        for job in body["jobs"]:
            path = "/v1/jobs/%s/" % job["id"]
            if job["kind"] != "py.slow":
                status, hb = server.post(path + "heartbeat", {
                    "token": job["token"], "progress": {"percent": 10, "message": "started"},
                    "running": 1,
                })
                if status != 200:
                    report(job, "heartbeat", status, hb)
                    continue
            outcome = handle(job)
            if outcome[0] == "complete":
                status, r = server.post(path + "complete", {"token": job["token"], "result": outcome[1]})
                report(job, "complete", status, r)
            elif outcome[0] == "rate_limited":
                status, r = server.post(path + "fail", {
                    "token": job["token"], "error": "upstream rate limit",
                    "rate_limited": True, "retry_after_ms": outcome[1],
                })
                report(job, "fail", status, r)
            else:
                _, error, retryable = outcome
                fail = {"token": job["token"], "error": error, "retryable": retryable}
                if retryable:
                    fail["retry_after_ms"] = 100
                status, r = server.post(path + "fail", fail)
                report(job, "fail", status, r)
        idle_since = time.monotonic()


if __name__ == "__main__":
    main()
