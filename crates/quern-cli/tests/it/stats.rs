//! `quern stats`: figures from the stored timestamps of jobs of known durations.

use serde_json::Value;

use crate::support::Env;

on_every_store!(
    stats_report_outcomes_and_run_times_per_queue_and_kind,
    minutes_are_kept_in_the_store_across_restarts_and_deletes,
);

fn group<'a>(report: &'a Value, queue: &str, kind: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["queue"] == queue && g["kind"] == kind)
        .unwrap_or_else(|| panic!("no group {queue}/{kind} in {report}"))
}

fn stats_report_outcomes_and_run_times_per_queue_and_kind(env: Env) {
    for _ in 0..3 {
        env.enqueue(&["quern.sleep", "--payload", r#"{"ms":300}"#, "--queue", "s"]);
    }
    env.enqueue(&["quern.noop", "--queue", "n"]);
    env.enqueue(&["quern.noop", "--queue", "n"]);
    env.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"message":"no"}"#,
        "--max-attempts",
        "1",
    ]);
    env.drain(&["--queues", "default,s,n", "--concurrency", "4"]);

    let r = env.json(&["stats"]);
    assert_eq!(r["total"]["finished"], 6, "{r}");
    assert_eq!(r["groups"].as_array().unwrap().len(), 3, "{r}");
    let sleep = group(&r, "s", "quern.sleep");
    assert_eq!(sleep["succeeded"], 3);
    assert_eq!(sleep["success_rate"], 1.0);
    let run = &sleep["run_ms"];
    assert_eq!(run["count"], 3);
    let p50 = run["p50"].as_i64().unwrap();
    assert!((300..5_000).contains(&p50), "a 300 ms sleep ran {p50} ms");
    assert!(run["p99"].as_i64().unwrap() >= p50);
    assert!(sleep["wait_ms"]["p50"].as_i64().unwrap() >= 0);
    let noop = group(&r, "n", "quern.noop");
    assert!(noop["run_ms"]["p99"].as_i64().unwrap() < 300, "{noop}");
    let fail = group(&r, "default", "quern.fail");
    assert_eq!(
        (fail["dead"].as_u64(), fail["failure_rate"].as_f64()),
        (Some(1), Some(1.0))
    );
    assert!(r["total"]["throughput_per_s"].as_f64().unwrap() > 0.0);

    let only = env.json(&["stats", "--queue", "s"]);
    assert_eq!(only["total"]["finished"], 3, "{only}");
    let kind = env.json(&["stats", "--kind", "quern.noop"]);
    assert_eq!(kind["total"]["finished"], 2, "{kind}");

    let text = env.ok(&["stats", "--since", "10m"]);
    assert!(
        text.contains("quern.sleep") && text.contains("(all)"),
        "{text}"
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    let none = env.ok(&["stats", "--since", "20ms"]);
    assert!(none.contains("no finished jobs"), "{none}");
}

/// `(succeeded, failed, dead)` summed over the minutes of a `GET /v1/stats/minutes` answer
/// (or of the overview's `minutes`).
fn sums(minutes: &Value) -> (u64, u64, u64) {
    let m = minutes
        .as_array()
        .unwrap_or_else(|| panic!("no minutes: {minutes}"));
    let sum = |f: &str| m.iter().map(|r| r[f].as_u64().unwrap()).sum::<u64>();
    (sum("succeeded"), sum("failed"), sum("dead"))
}

/// The per-minute rollups behind `GET /v1/stats/minutes` and the dashboard's charts are
/// counted by the store when the worker reports: a server started afterwards sees them, a
/// deleted job still counts, and a restarted server loses nothing. Bad windows are 422.
fn minutes_are_kept_in_the_store_across_restarts_and_deletes(mut env: Env) {
    env.enqueue(&["quern.noop", "--queue", "n"]);
    env.enqueue(&["quern.noop", "--queue", "n"]);
    env.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"message":"no"}"#,
        "--max-attempts",
        "1",
    ]);
    env.drain(&["--queues", "default,n"]);

    let first = env.serve(&[]);
    let http = first.http();
    let r = http.get("/v1/stats/minutes?minutes=10");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let minutes = body["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 10, "{body}");
    let now = body["now"].as_i64().unwrap();
    let last = minutes[9]["at"].as_i64().unwrap();
    assert!(
        last <= now && now - last < 60_000,
        "the current minute is last: {body}"
    );
    assert_eq!(sums(&body["minutes"]), (2, 1, 1), "{body}");
    let n = http.get("/v1/stats/minutes?minutes=10&queue=n").json();
    assert_eq!(sums(&n["minutes"]), (2, 0, 0), "{n}");
    for bad in ["minutes=0", "minutes=11521", "minutes=x", "nope=1"] {
        let r = http.get(&format!("/v1/stats/minutes?{bad}"));
        assert!(
            r.status == 422 || r.status == 400,
            "{bad}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let overview = http.get("/ui/api/overview").json();
    assert_eq!(overview["minutes"].as_array().unwrap().len(), 1440);
    assert_eq!(sums(&overview["minutes"]), (2, 1, 1), "overview");

    // Deleting the dead job keeps what it counted; so does a restart.
    let del = http.post("/v1/dlq/delete", &serde_json::json!({}));
    assert_eq!(del.status, 200, "{}", String::from_utf8_lossy(&del.body));
    assert_eq!(del.json()["count"], 1);
    crate::support::signal(first.pid, libc::SIGKILL);
    let second = env.serve(&[]);
    let again = second.http().get("/v1/stats/minutes?minutes=10").json();
    assert_eq!(
        sums(&again["minutes"]),
        (2, 1, 1),
        "after a delete and a restart: {again}"
    );
}
