//! `quern bench` end to end, with small numbers (performance itself is measured by running
//! the release binary, never by tests).

use crate::support::Env;

#[test]
fn bench_reports_every_figure_and_loses_nothing() {
    let env = Env::new();
    let r = env.json(&[
        "--store",
        "sqlite://bench.db",
        "bench",
        "--jobs",
        "300",
        "--batch-size",
        "100",
        "--concurrency",
        "4",
        "--latency-jobs",
        "100",
        "--rate",
        "500",
        "--payload-bytes",
        "200",
    ]);
    for key in [
        "enqueue_single_per_s",
        "enqueue_batch_per_s",
        "drain_c1_per_s",
        "drain_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_p999_ms",
    ] {
        let v = r[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {r}"));
        assert!(v > 0.0 && v.is_finite(), "{key} = {v}");
    }
    assert!(r["latency_p50_ms"].as_f64() <= r["latency_p99_ms"].as_f64());
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["setup"]["backend"], "sqlite");
    // Memory per queued job is measured on Redis only (tests/it/redis.rs).
    assert!(r["bytes_per_queued_job"].is_null(), "{r}");
    assert_eq!(r["setup"]["jobs"], 300);
    assert_eq!(r["setup"]["worker_in_process"], true);
    // It ran against the store it was given, in queues of its own, and left every job done.
    let queues = env.json(&["--store", "sqlite://bench.db", "queues", "list"]);
    let queues = queues["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 3, "{queues:?}");
    let done: u64 = queues
        .iter()
        .map(|q| q["counts"]["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(done, 300 + 300 + 100);

    // The human report is a table naming each measurement.
    let text = env.ok(&[
        "bench",
        "--jobs",
        "100",
        "--latency-jobs",
        "50",
        "--rate",
        "500",
    ]);
    for want in [
        "enqueue, one by one",
        "drain, concurrency 16",
        "latency p50",
        "lost / duplicated",
    ] {
        assert!(text.contains(want), "{want:?} missing in\n{text}");
    }
    // Without --store it used a throwaway file, not ./quern.db.
    assert!(!env.path("quern.db").exists());
}
