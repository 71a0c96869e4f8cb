//! Dead workers are detected and cleared: a SIGKILLed worker is listed as `lost` (with the
//! job it held) within a few heartbeats, and its job runs on another worker long before its
//! 30 s lease would have expired. Runs on SQLite and on Redis.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, eventually, signal, state, wait_output};

on_every_store!(a_killed_worker_is_lost_and_its_job_runs_early);

/// The registry entry of the worker process `pid`, if listed.
fn listed(env: &Env, pid: u32) -> Option<Value> {
    let ws = env.json(&["workers", "list"]);
    ws["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pid"] == pid)
        .cloned()
}

fn a_killed_worker_is_lost_and_its_job_runs_early(mut env: Env) {
    let id = env.enqueue(&["quern.sleep", "--payload", "{\"ms\": 1500}"]);
    let worker = ["worker", "--lease", "30s", "--heartbeat", "200ms"];
    let a = env.spawn(&worker);
    eventually(Duration::from_secs(20), "worker A to run the job", || {
        let job = env.job(&id);
        state(&job) == "running"
    });
    let a_id = listed(&env, a).expect("A registered")["id"].clone();
    let alive = listed(&env, a).unwrap();
    assert_eq!(alive["state"], "alive", "{alive}");
    assert_eq!(alive["heartbeat_interval_ms"], 200, "{alive}");
    assert_eq!(alive["held_jobs"], serde_json::json!([id]), "{alive}");

    signal(a, libc::SIGKILL);
    let _ = wait_output(env.take_child(a), Duration::from_secs(10), &["worker A"]);
    let killed = Instant::now();
    eventually(Duration::from_secs(5), "A to be listed as lost", || {
        listed(&env, a).is_some_and(|w| w["state"] == "lost")
    });
    let lost = listed(&env, a).unwrap();
    assert_eq!(lost["id"], a_id);
    assert_eq!(lost["held_jobs"], serde_json::json!([id]), "{lost}");
    let table = env.ok(&["workers", "list"]);
    assert!(table.contains("lost"), "{table}");

    let mut b = worker.to_vec();
    b.push("--exit-when-idle");
    let b = env.spawn(&b);
    let out = wait_output(env.take_child(b), Duration::from_secs(25), &["worker B"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "re-delivered long before the 30 s lease: {took:?}"
    );
    let job = env.job(&id);
    assert_eq!(state(&job), "succeeded", "{job}");
    assert_eq!(job["attempt"], 2, "the killed attempt counts: {job}");
    assert_eq!(job["errors"][0]["kind"], "worker_lost", "{job}");
    eprintln!("killed worker's job done {took:?} after the kill");
}
