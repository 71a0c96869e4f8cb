//! Queue limits through the built binary, on both stores: `quern queues set|show|list`,
//! `[queues.NAME]` in `quern.toml`, and the limits holding across two worker processes.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Env, eventually};

on_every_store!(
    set_show_and_list_limits,
    bad_limits_are_refused_and_change_nothing,
    a_cap_holds_across_two_worker_processes,
    a_rate_limit_spaces_leases_across_two_worker_processes,
);

fn ms(job: &Value, field: &str) -> i64 {
    job[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {job}"))
}

fn set_show_and_list_limits(env: Env) {
    env.enqueue(&["quern.noop", "--queue", "mail"]);
    let v = env.json(&[
        "queues",
        "set",
        "mail",
        "--concurrency",
        "3",
        "--rate",
        "20/s",
    ]);
    assert_eq!(v["settings"]["concurrency"], 3, "{v}");
    assert_eq!(v["settings"]["rate"]["count"], 20, "{v}");
    // --burst alone changes the stored rate's burst.
    let v = env.json(&["queues", "set", "mail", "--burst", "5"]);
    assert_eq!(
        (
            v["settings"]["rate"]["burst"].as_u64(),
            v["settings"]["concurrency"].as_u64()
        ),
        (Some(5), Some(3)),
        "{v}"
    );
    let shown = env.json(&["queues", "show", "mail"]);
    assert_eq!(shown["running"], 0, "{shown}");
    assert_eq!(shown["tokens"], 5.0, "{shown}");
    assert_eq!(shown["counts"]["queued"], 1, "{shown}");
    let text = env.ok(&["queues", "show", "mail"]);
    assert!(
        text.contains("0/3") && text.contains("20/s (burst 5)"),
        "{text}"
    );
    let list = env.ok(&["queues", "list"]);
    assert!(list.contains("0/3") && list.contains("RATE"), "{list}");
    // Limits may be set before a queue's first job; `none` clears.
    env.ok(&["queues", "set", "later", "--concurrency", "1"]);
    let v = env.json(&["queues", "set", "later", "--concurrency", "none"]);
    assert_eq!(v["settings"]["concurrency"], Value::Null, "{v}");
    let names: Vec<String> = env.json(&["queues", "list"])["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["later", "mail"]);
}

fn bad_limits_are_refused_and_change_nothing(env: Env) {
    env.ok(&["queues", "set", "q", "--concurrency", "2"]);
    for (args, want) in [
        (
            &["queues", "set", "q", "--concurrency", "0"][..],
            "at least 1",
        ),
        (
            &["queues", "set", "q", "--rate", "20/fortnight"][..],
            "rate",
        ),
        (&["queues", "set", "q", "--rate", "0/s"][..], "rate"),
        (&["queues", "set", "q"][..], "required"),
        (&["queues", "set", "q", "--burst", "3"][..], "no rate limit"),
        (
            &["queues", "set", "q", "--rate", "none", "--burst", "3"][..],
            "--burst",
        ),
    ] {
        let err = env.fails(2, args);
        assert!(err.contains(want), "{args:?}: {want:?} not in {err:?}");
    }
    let shown = env.json(&["queues", "show", "q"]);
    assert_eq!(shown["settings"]["concurrency"], 2, "{shown}");
    assert_eq!(shown["settings"]["rate"], Value::Null, "{shown}");
    env.fails(1, &["queues", "show", "nope"]);
    std::fs::write(
        env.path("bad.toml"),
        "[queues.q]\nconcurrency = 1\nspeed = 3\n",
    )
    .unwrap();
    let err = env.fails(2, &["--config", "bad.toml", "worker", "--exit-when-idle"]);
    assert!(err.contains("speed"), "{err}");
}

/// The largest number of jobs whose [started_at, finished_at) intervals overlap.
fn max_overlap(jobs: &[Value]) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for j in jobs {
        edges.push((ms(j, "started_at"), 1));
        edges.push((ms(j, "finished_at"), -1));
    }
    // An end at the same millisecond as a start comes first.
    edges.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    max as usize
}

/// `[queues.capped] concurrency = 2` in `quern.toml`, two workers with 4 slots each: never
/// more than 2 jobs of the queue run at once (8 would without the cap), and 2 do.
fn a_cap_holds_across_two_worker_processes(mut env: Env) {
    std::fs::write(env.path("quern.toml"), "[queues.capped]\nconcurrency = 2\n").unwrap();
    for _ in 0..8 {
        env.enqueue(&[
            "quern.sleep",
            "--payload",
            r#"{"ms":300}"#,
            "--queue",
            "capped",
        ]);
    }
    for _ in 0..2 {
        env.spawn(&[
            "worker",
            "--queues",
            "capped",
            "--concurrency",
            "4",
            "--lease",
            "5s",
        ]);
    }
    eventually(Duration::from_secs(30), "all 8 jobs succeed", || {
        env.jobs(&["--queue", "capped", "--state", "succeeded"])
            .len()
            == 8
    });
    let jobs = env.jobs(&["--queue", "capped"]);
    let workers: std::collections::BTreeSet<&str> = jobs
        .iter()
        .filter_map(|j| j["lease"]["worker_id"].as_str())
        .collect();
    assert_eq!(
        max_overlap(&jobs),
        2,
        "at most the cap at once, and the cap is used: {jobs:?}"
    );
    assert!(env.json(&["queues", "show", "capped"])["settings"]["concurrency"] == 2);
    let _ = workers;
}

/// `[queues.paced] rate = "4/s", burst = 1`, two workers: consecutive leases of the queue,
/// whichever worker took them, are at least 250 ms apart (the store's claim times).
fn a_rate_limit_spaces_leases_across_two_worker_processes(mut env: Env) {
    std::fs::write(
        env.path("quern.toml"),
        "[queues.paced]\nrate = \"4/s\"\nburst = 1\n",
    )
    .unwrap();
    for _ in 0..6 {
        env.enqueue(&["quern.noop", "--queue", "paced"]);
    }
    for _ in 0..2 {
        env.spawn(&["worker", "--queues", "paced", "--concurrency", "4"]);
    }
    eventually(Duration::from_secs(30), "all 6 jobs succeed", || {
        env.jobs(&["--queue", "paced", "--state", "succeeded"])
            .len()
            == 6
    });
    let mut claimed: Vec<i64> = env
        .jobs(&["--queue", "paced"])
        .iter()
        .map(|j| ms(j, "claimed_at"))
        .collect();
    claimed.sort();
    for w in claimed.windows(2) {
        assert!(
            w[1] - w[0] >= 249,
            "leases {} ms apart: {claimed:?}",
            w[1] - w[0]
        );
    }
}
