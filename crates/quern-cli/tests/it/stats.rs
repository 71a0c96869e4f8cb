//! `quern stats`: figures from the stored timestamps of jobs of known durations.

use serde_json::Value;

use crate::support::Env;

on_every_store!(stats_report_outcomes_and_run_times_per_queue_and_kind);

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
