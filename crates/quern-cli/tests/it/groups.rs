//! Job groups through the built binary, on both stores: `--group` and batch lines, the
//! group shown by `quern jobs show`, `quern queues set --group-concurrency`, and round-robin
//! fairness across three worker processes.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Env, eventually};

on_every_store!(
    group_flags_are_stored_shown_and_checked,
    small_groups_finish_early_across_three_worker_processes,
);

fn ms(job: &Value, field: &str) -> i64 {
    job[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {job}"))
}

fn group_flags_are_stored_shown_and_checked(env: Env) {
    let id = env.enqueue(&["quern.noop", "--queue", "t", "--group", "acme"]);
    assert_eq!(env.job(&id)["group"], "acme");
    assert!(env.ok(&["jobs", "show", &id]).contains("acme"));
    let err = env.fails(
        2,
        &["enqueue", "quern.noop", "--queue", "t", "--group", "a b"],
    );
    assert!(err.contains("group"), "{err}");
    std::fs::write(
        env.path("b.jsonl"),
        "{\"kind\":\"quern.noop\",\"queue\":\"t\",\"group\":\"globex\"}\n",
    )
    .unwrap();
    env.ok(&["enqueue", "--batch", "b.jsonl"]);
    let groups: Vec<String> = env
        .jobs(&["--queue", "t"])
        .iter()
        .map(|j| j["group"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(groups.len(), 2, "the bad one stored nothing: {groups:?}");
    assert!(groups.contains(&"globex".to_string()), "{groups:?}");
    let v = env.json(&["queues", "set", "t", "--group-concurrency", "3"]);
    assert_eq!(v["settings"]["group_concurrency"], 3, "{v}");
    assert!(env.ok(&["queues", "show", "t"]).contains("group cap:    3"));
    let err = env.fails(2, &["queues", "set", "t", "--group-concurrency", "0"]);
    assert!(err.contains("at least 1"), "{err}");
    let v = env.json(&["queues", "set", "t", "--group-concurrency", "none"]);
    assert_eq!(v["settings"]["group_concurrency"], Value::Null, "{v}");
}

/// Three workers of 8 slots; 1,000 jobs of group `big` enqueued ahead of 10 of `small-a`
/// and 10 of `small-b`, each job a 50 ms sleep. Round-robin between groups finishes all 20
/// small jobs within the first 5% of the run (in FIFO order they would be the last 20).
fn small_groups_finish_early_across_three_worker_processes(mut env: Env) {
    let mut lines = String::new();
    for (group, n) in [("big", 1000), ("small-a", 10), ("small-b", 10)] {
        for _ in 0..n {
            lines.push_str(&format!(
                "{{\"kind\":\"quern.sleep\",\"payload\":{{\"ms\":50}},\"queue\":\"fair\",\"group\":\"{group}\"}}\n"
            ));
        }
    }
    std::fs::write(env.path("jobs.jsonl"), lines).unwrap();
    // Workers first, so the whole batch meets all 24 slots at once.
    env.ok(&["queues", "set", "fair", "--weight", "1"]);
    for _ in 0..3 {
        env.spawn(&["worker", "--queues", "fair", "--concurrency", "8"]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    env.ok(&["enqueue", "--batch", "jobs.jsonl", "--atomic"]);
    eventually(Duration::from_secs(120), "all 1,020 jobs succeed", || {
        env.json(&["queues", "show", "fair"])["counts"]["succeeded"] == 1020
    });
    // `jobs list` shows at most 1,000 (newest first): all small jobs and 980 of big, whose
    // 20 oldest ran first of big's (a group's jobs go in order), so the run's end is here.
    let jobs = env.jobs(&["--queue", "fair"]);
    assert_eq!(jobs.len(), 1000, "jobs list shows the newest 1,000");
    let mut done: Vec<(i64, String)> = jobs
        .iter()
        .map(|j| {
            (
                ms(j, "finished_at"),
                j["group"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    done.sort();
    // The run is timed from the first job to finish (the listing lacks the 20 oldest big
    // ones, which ran first of big's: a group's jobs go in order) to the last.
    let begin = done[0].0;
    let end = done.last().unwrap().0;
    let last_small = done
        .iter()
        .rposition(|(_, g)| g != "big")
        .expect("small jobs listed");
    let share = (done[last_small].0 - begin) as f64 / (end - begin) as f64;
    eprintln!(
        "groups: the last small job finished as number {} of the 1,000 listed, {} ms into a {} ms run ({:.1}%)",
        last_small + 1,
        done[last_small].0 - begin,
        end - begin,
        share * 100.0
    );
    assert!(
        share < 0.05,
        "small groups done at {:.1}% of the run",
        share * 100.0
    );
}
