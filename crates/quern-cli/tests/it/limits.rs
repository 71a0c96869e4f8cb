//! Queue limits through the built binary, on both stores: `quern queues set|show|list`,
//! `[queues.NAME]` in `quern.toml`, the limits holding across three worker processes, and no hoarding.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Env, eventually};

on_every_store!(
    set_show_and_list_limits,
    bad_limits_are_refused_and_change_nothing,
    a_cap_holds_across_three_worker_processes,
    a_rate_limit_paces_three_worker_processes,
    a_throttled_worker_wakes_for_the_next_token,
    a_busy_worker_holds_no_jobs_back_from_an_idle_one,
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

/// Writes `n` jobs of `kind` with `payload` for `queue` to a batch file and enqueues them.
fn enqueue_many(env: &Env, n: usize, kind: &str, payload: &str, queue: &str) {
    let line = format!("{{\"kind\":\"{kind}\",\"payload\":{payload},\"queue\":\"{queue}\"}}\n");
    std::fs::write(env.path("jobs.jsonl"), line.repeat(n)).unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
}

/// Starts `n` worker processes on `queue`, each with 8 slots.
fn spawn_workers(env: &mut Env, n: usize, queue: &str, extra: &[&str]) {
    for _ in 0..n {
        let mut a = vec!["worker", "--queues", queue, "--concurrency", "8"];
        a.extend_from_slice(extra);
        env.spawn(&a);
    }
}

/// `[queues.capped] concurrency = 2` in `quern.toml`, three workers with 8 slots each: never
/// more than 2 jobs of the queue run at once (24 could without the cap), and 2 do.
fn a_cap_holds_across_three_worker_processes(mut env: Env) {
    std::fs::write(env.path("quern.toml"), "[queues.capped]\nconcurrency = 2\n").unwrap();
    enqueue_many(&env, 12, "quern.sleep", r#"{"ms":250}"#, "capped");
    spawn_workers(&mut env, 3, "capped", &["--lease", "5s"]);
    eventually(Duration::from_secs(30), "all 12 jobs succeed", || {
        env.jobs(&["--queue", "capped", "--state", "succeeded"])
            .len()
            == 12
    });
    let jobs = env.jobs(&["--queue", "capped"]);
    assert_eq!(
        max_overlap(&jobs),
        2,
        "at most the cap at once, and the cap is used: {jobs:?}"
    );
    assert!(env.json(&["queues", "show", "capped"])["settings"]["concurrency"] == 2);
}

/// `[queues.paced] rate = "20/s"`, three workers with 8 slots each: 200 jobs drain in
/// 10 s ± 10%. The bucket starts full (a quiet second's 20 tokens), then admits one every
/// 50 ms, so the k-th lease (from 0), whichever worker took it, comes no sooner than
/// `(k − 19) · 50 ms` after the first, and the 200th at 9 s.
fn a_rate_limit_paces_three_worker_processes(mut env: Env) {
    std::fs::write(env.path("quern.toml"), "[queues.paced]\nrate = \"20/s\"\n").unwrap();
    enqueue_many(&env, 200, "quern.noop", "{}", "paced");
    spawn_workers(&mut env, 3, "paced", &[]);
    eventually(Duration::from_secs(40), "all 200 jobs succeed", || {
        env.jobs(&["--queue", "paced", "--state", "succeeded"])
            .len()
            == 200
    });
    let jobs = env.jobs(&["--queue", "paced"]);
    let mut claimed: Vec<i64> = jobs.iter().map(|j| ms(j, "claimed_at")).collect();
    claimed.sort();
    for (k, t) in claimed.iter().enumerate().skip(20) {
        let earliest = claimed[0] + (k as i64 - 19) * 50;
        assert!(
            *t >= earliest - 1,
            "lease {k} at +{} ms, before +{} ms: {claimed:?}",
            t - claimed[0],
            earliest - claimed[0]
        );
    }
    let last_done = jobs.iter().map(|j| ms(j, "finished_at")).max().unwrap();
    let took = last_done - claimed[0];
    assert!(
        (9_000..=11_000).contains(&took),
        "200 jobs at 20/s drained in {took} ms (10 s ± 10%): {claimed:?}"
    );
}

/// A worker waiting on a throttled queue wakes for the next token, not later: `20/s` with a
/// burst of 1 leases one job every 50 ms, so 40 jobs take 39 intervals of about 50 ms. (On
/// Redis a blocking read's timeout alone would fire up to 100 ms late: an idle server checks
/// them `hz` = 10 times a second.)
fn a_throttled_worker_wakes_for_the_next_token(mut env: Env) {
    std::fs::write(
        env.path("quern.toml"),
        "[queues.paced]\nrate = \"20/s\"\nburst = 1\n",
    )
    .unwrap();
    enqueue_many(&env, 40, "quern.noop", "{}", "paced");
    spawn_workers(&mut env, 1, "paced", &[]);
    eventually(Duration::from_secs(30), "all 40 jobs succeed", || {
        env.jobs(&["--queue", "paced", "--state", "succeeded"])
            .len()
            == 40
    });
    let mut claimed: Vec<i64> = env
        .jobs(&["--queue", "paced"])
        .iter()
        .map(|j| ms(j, "claimed_at"))
        .collect();
    claimed.sort();
    let gaps: Vec<i64> = claimed.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= 49), "{gaps:?}");
    let mean = (claimed[39] - claimed[0]) as f64 / 39.0;
    assert!(mean < 75.0, "mean gap {mean:.1} ms: {gaps:?}");
}

/// No hoarding: a worker whose slots are all taken by slow jobs holds no other job back. One
/// worker (2 slots) takes the two slow jobs; a second worker started after it runs all six
/// quick ones while the slow ones are still running, because the first claimed no more than
/// it had slots for.
fn a_busy_worker_holds_no_jobs_back_from_an_idle_one(mut env: Env) {
    enqueue_many(&env, 2, "quern.sleep", r#"{"ms":8000}"#, "shared");
    env.spawn(&["worker", "--queues", "shared", "--concurrency", "2"]);
    eventually(Duration::from_secs(20), "the slow jobs run", || {
        env.jobs(&["--queue", "shared", "--state", "running"]).len() == 2
    });
    let quick: Vec<String> = (0..6)
        .map(|_| env.enqueue(&["quern.noop", "--queue", "shared"]))
        .collect();
    // Let the busy worker poll a few times: a hoarding one would take the quick jobs now.
    std::thread::sleep(Duration::from_millis(600));
    env.spawn(&["worker", "--queues", "shared", "--concurrency", "2"]);
    eventually(
        Duration::from_secs(6),
        "the idle worker runs the quick jobs",
        || {
            env.jobs(&["--queue", "shared", "--state", "succeeded"])
                .len()
                == 6
        },
    );
    let running = env.jobs(&["--queue", "shared", "--state", "running"]);
    assert_eq!(running.len(), 2, "the slow jobs still run: {running:?}");
    let slow_started = running.iter().map(|j| ms(j, "claimed_at")).max().unwrap();
    for id in &quick {
        let j = env.json(&["jobs", "show", id]);
        assert_eq!(j["state"], "succeeded", "{j}");
        // Done well inside the slow jobs' 8 s: nothing waited for the busy worker's slots.
        assert!(ms(&j, "finished_at") - slow_started < 8_000, "{j}");
    }
}
