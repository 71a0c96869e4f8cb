use std::time::Duration;

use crate::support::{Env, eventually, state};

on_every_store!(
    queues_list_shows_depth_by_state_and_pause_holds_jobs,
    dlq_list_and_replay_by_id_queue_kind_and_all,
    workers_list_shows_a_running_worker,
);

fn queues_list_shows_depth_by_state_and_pause_holds_jobs(mut env: Env) {
    env.enqueue(&["quern.noop", "--queue", "mail"]);
    env.enqueue(&["quern.noop", "--queue", "mail", "--delay", "1h"]);
    let id = env.enqueue(&["quern.noop", "--queue", "mail"]);
    let q = env.json(&["queues", "list"]);
    let mail = &q["queues"][0];
    assert_eq!(mail["name"], "mail");
    assert_eq!(mail["paused"], false);
    assert_eq!(mail["counts"]["queued"], 2);
    assert_eq!(mail["counts"]["scheduled"], 1);

    let out = env.json(&["queues", "pause", "mail"]);
    assert_eq!(out["paused"], true);
    assert_eq!(env.json(&["queues", "list"])["queues"][0]["paused"], true);
    let table = env.ok(&["queues", "list"]);
    assert!(table.contains("mail") && table.contains("yes"), "{table}");

    // A worker on a paused queue takes nothing.
    env.spawn(&["worker", "--queues", "mail"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&env.job(&id)), "queued");
    env.ok(&["queues", "resume", "mail"]);
    eventually(
        Duration::from_secs(15),
        "the resumed queue to drain",
        || state(&env.job(&id)) == "succeeded",
    );
}

fn dlq_list_and_replay_by_id_queue_kind_and_all(env: Env) {
    let fatal = r#"{"fatal": true}"#;
    let a = env.enqueue(&["quern.fail", "--payload", fatal, "--queue", "q1"]);
    let b = env.enqueue(&["quern.fail", "--payload", fatal, "--queue", "q2"]);
    let c = env.enqueue(&["quern.fail", "--payload", fatal, "--queue", "q3"]);
    env.enqueue(&["quern.noop", "--queue", "q1"]);
    env.drain(&["--queues", "q1,q2,q3"]);
    let dead = env.json(&["dlq", "list"]);
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 3);
    let q1 = env.json(&["dlq", "list", "--queue", "q1"]);
    assert_eq!(q1["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(q1["jobs"][0]["id"], a.as_str());

    let out = env.json(&["dlq", "replay", &a]);
    assert_eq!(out["replayed"], 1);
    assert_eq!(state(&env.job(&a)), "queued");
    let out = env.json(&["dlq", "replay", "--queue", "q2"]);
    assert_eq!(out["ids"][0], b.as_str());
    assert_eq!(state(&env.job(&b)), "queued");
    // A queued job is not in the DLQ.
    let err = env.fails(1, &["dlq", "replay", &a]);
    assert!(err.contains("queued"), "{err}");
    let out = env.json(&["dlq", "replay", "--kind", "quern.noop"]);
    assert_eq!(out["replayed"], 0);
    let out = env.json(&["dlq", "replay", "--all"]);
    assert_eq!(out["replayed"], 1);
    assert_eq!(state(&env.job(&c)), "queued");
    // A target is required.
    env.fails(2, &["dlq", "replay"]);
    // --limit caps both the listing and a replay.
    let more: Vec<String> = (0..3)
        .map(|_| env.enqueue(&["quern.fail", "--payload", fatal, "--queue", "q4"]))
        .collect();
    env.drain(&["--queues", "q1,q2,q3,q4"]);
    let dead = env.json(&["dlq", "list", "--limit", "2"]);
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 2);
    let out = env.json(&["dlq", "replay", "--queue", "q4", "--limit", "2"]);
    assert_eq!(out["replayed"], 2);
    let left = env.json(&["dlq", "list", "--queue", "q4"]);
    assert_eq!(left["jobs"].as_array().unwrap().len(), 1);
    let states: Vec<String> = more
        .iter()
        .map(|id| state(&env.job(id)).to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "queued").count(),
        2,
        "{states:?}"
    );
}

fn workers_list_shows_a_running_worker(mut env: Env) {
    env.enqueue(&["quern.noop"]);
    let pid = env.spawn(&["worker", "--queues", "default,other", "--concurrency", "3"]);
    let mut seen = serde_json::Value::Null;
    eventually(Duration::from_secs(15), "the worker to register", || {
        seen = env.json(&["workers", "list"]);
        seen["workers"].as_array().is_some_and(|w| !w.is_empty())
    });
    let w = &seen["workers"][0];
    assert_eq!(w["pid"], pid);
    assert_eq!(w["concurrency"], 3);
    assert_eq!(w["queues"], serde_json::json!(["default", "other"]));
    let table = env.ok(&["workers", "list"]);
    assert!(table.contains(&pid.to_string()), "{table}");
}
