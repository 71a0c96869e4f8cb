//! Two worker processes drain a store; one is killed with SIGKILL while it runs jobs. No job
//! is lost: once its leases (1 s) expire, the other worker runs them, and every job ends
//! `succeeded`. Runs on SQLite and on Redis.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Env, eventually, signal, state, wait_output};

on_every_store!(sigkilled_worker_loses_no_job);

/// Ids of the jobs running under worker `worker_id`.
fn running_on(env: &Env, worker_id: &str) -> HashSet<String> {
    env.jobs(&["--state", "running"])
        .iter()
        .filter(|j| j["lease"]["worker_id"] == worker_id)
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

/// The registry id of the worker process `pid`, once it has registered.
fn worker_id(env: &Env, pid: u32) -> String {
    let mut id = String::new();
    eventually(Duration::from_secs(20), "the worker to register", || {
        let ws = env.json(&["workers", "list"]);
        let w = ws["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["pid"] == pid);
        if let Some(w) = w {
            id = w["id"].as_str().unwrap().to_string();
        }
        w.is_some()
    });
    id
}

fn sigkilled_worker_loses_no_job(mut env: Env) {
    // About 2.5 s of work for two workers of four: A is still busy when it is killed.
    const N: usize = 40;
    let lines = "{\"kind\": \"quern.sleep\", \"payload\": {\"ms\": 500}}\n".repeat(N);
    std::fs::write(env.path("jobs.jsonl"), lines).unwrap();
    let out = env.json(&["enqueue", "--batch", "jobs.jsonl"]);
    let ids: Vec<String> = out["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), N);
    let other = env.enqueue(&["quern.noop", "--queue", "other"]);
    let worker = [
        "worker",
        "--queues",
        "default,other",
        "--concurrency",
        "4",
        "--lease",
        "1s",
    ];

    let a = env.spawn(&worker);
    let a_id = worker_id(&env, a);
    eventually(Duration::from_secs(20), "worker A to run four jobs", || {
        running_on(&env, &a_id).len() >= 4
    });
    let mut b_args = worker.to_vec();
    b_args.push("--exit-when-idle");
    let b = env.spawn(&b_args);
    let b_id = worker_id(&env, b);
    assert_ne!(a_id, b_id);

    signal(a, libc::SIGKILL);
    let _ = wait_output(env.take_child(a), Duration::from_secs(10), &["worker A"]);
    // What A held when it died: these leases are stale and must be re-delivered to B. (Read
    // after the kill, so A cannot have finished any of them since.)
    let orphans = running_on(&env, &a_id);

    let out = wait_output(env.take_child(b), Duration::from_secs(60), &["worker B"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<Value> = env.jobs(&[]);
    assert_eq!(jobs.len(), N + 1, "no job lost or added");
    let mut rescued = 0;
    for id in ids.iter().chain([&other]) {
        let job = env.job(id);
        assert_eq!(state(&job), "succeeded", "{job}");
        let attempt = job["attempt"].as_u64().unwrap();
        if job["errors"][0]["kind"] == "lease_expired" {
            rescued += 1;
            assert_eq!(attempt, 2, "the killed attempt counts: {job}");
        } else {
            assert_eq!(attempt, 1, "{job}");
            assert!(
                !orphans.contains(id),
                "an orphaned job was not rescued: {job}"
            );
        }
    }
    assert!(rescued >= 1, "A died holding jobs; some were re-delivered");
    let queues = env.json(&["queues", "list"]);
    let succeeded: u64 = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["counts"]["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(succeeded, N as u64 + 1, "{queues}");
}
