use serde_json::json;

use crate::support::{Env, state};

on_every_store!(
    enqueue_prints_the_id_and_stores_every_option,
    at_schedules_and_payload_file_and_stdin_work,
    batch_best_effort_stores_the_good_lines,
    batch_atomic_stores_all_or_nothing,
    retry_and_result_ttl_are_stored_and_used,
);

fn enqueue_prints_the_id_and_stores_every_option(env: Env) {
    let dep = env.enqueue(&["quern.noop"]);
    let out = env.json(&[
        "enqueue",
        "quern.sleep",
        "--payload",
        r#"{"ms": 5}"#,
        "--queue",
        "emails",
        "--priority",
        "high",
        "--delay",
        "1h",
        "--unique",
        "welcome-7",
        "--unique-for",
        "10m",
        "--max-attempts",
        "3",
        "--timeout",
        "30s",
        "--depends-on",
        &dep,
    ]);
    let id = out["id"].as_str().expect("id in --json output");
    let job = env.job(id);
    assert_eq!(job["kind"], "quern.sleep");
    assert_eq!(job["queue"], "emails");
    assert_eq!(job["priority"], 2);
    assert_eq!(job["payload"], json!({"ms": 5}));
    assert_eq!(job["max_attempts"], 3);
    assert_eq!(job["unique_key"], "welcome-7");
    assert_eq!(job["unique_for"], 600_000);
    assert_eq!(job["timeout"], 30_000);
    assert_eq!(job["depends_on"], json!([dep]));
    // Waiting for its dependency: blocked, whatever its delay.
    assert_eq!(state(&job), "blocked");
    let delay = job["run_at"].as_i64().unwrap() - job["created_at"].as_i64().unwrap();
    assert!(
        (3_590_000..=3_600_000).contains(&delay),
        "run_at is created + 1h: {delay}"
    );

    // The same unique key gives back the same job.
    let again = env.json(&[
        "enqueue",
        "quern.sleep",
        "--payload",
        r#"{"ms": 5}"#,
        "--queue",
        "emails",
        "--unique",
        "welcome-7",
    ]);
    assert_eq!(again["id"], id);
    assert_eq!(again["duplicate"], true);

    // A window that has passed does not free the key of a job that has not run yet.
    let first = env.enqueue(&["quern.noop", "--unique", "w", "--unique-for", "200ms"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let out = env.json(&["enqueue", "quern.noop", "--unique", "w"]);
    assert_eq!(
        (out["id"].as_str(), &out["duplicate"]),
        (Some(first.as_str()), &json!(true))
    );
}

fn at_schedules_and_payload_file_and_stdin_work(env: Env) {
    std::fs::write(env.path("p.json"), r#"{"argv": ["true"]}"#).unwrap();
    let id = env.enqueue(&[
        "shell",
        "--payload-file",
        "p.json",
        "--at",
        "2030-01-01T00:00:00+01:00",
    ]);
    let job = env.job(&id);
    assert_eq!(state(&job), "scheduled");
    assert_eq!(job["run_at"], 1_893_452_400_000i64);
    assert_eq!(job["payload"], json!({"argv": ["true"]}));

    let out = env.run_with_stdin(
        &["enqueue", "quern.sleep", "--payload-file", "-"],
        Some(r#"{"ms":1}"#),
    );
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(env.job(&id)["payload"], json!({"ms": 1}));
}

fn batch_best_effort_stores_the_good_lines(env: Env) {
    let missing = "01a205ab-0000-7000-8000-000000000000";
    std::fs::write(
        env.path("jobs.jsonl"),
        format!(
            "{}\n\n{}\n{}\n",
            r#"{"kind": "quern.noop", "queue": "bulk"}"#,
            format_args!(r#"{{"kind": "quern.noop", "queue": "bulk", "depends_on": ["{missing}"]}}"#),
            r#"{"kind": "quern.sleep", "payload": {"ms": 1}, "queue": "bulk", "priority": "low", "delay": "1h"}"#
        ),
    )
    .unwrap();
    let out = env.run(&["--json", "enqueue", "--batch", "jobs.jsonl"]);
    assert_eq!(out.status.code(), Some(1), "one line failed");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["enqueued"], 2);
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["jobs"][1]["line"], 3);
    let msg = doc["jobs"][1]["error"]["message"].as_str().unwrap();
    assert!(
        // SQLite says "unknown dependency X", Redis "dependency X does not exist".
        msg.starts_with("invalid job: ") && msg.contains("dependency") && msg.contains(missing),
        "{msg}"
    );
    let jobs = env.jobs(&["--queue", "bulk"]);
    assert_eq!(jobs.len(), 2);
    let sleep = jobs.iter().find(|j| j["kind"] == "quern.sleep").unwrap();
    assert_eq!(sleep["priority"], 7);
    assert_eq!(state(sleep), "scheduled");
}

fn batch_atomic_stores_all_or_nothing(env: Env) {
    let missing = "01a205ab-0000-7000-8000-000000000000";
    std::fs::write(
        env.path("bad.jsonl"),
        format!(
            "{}\n{}\n",
            r#"{"kind": "quern.noop", "queue": "bulk"}"#,
            format_args!(
                r#"{{"kind": "quern.noop", "queue": "bulk", "depends_on": ["{missing}"]}}"#
            )
        ),
    )
    .unwrap();
    env.enqueue(&["quern.noop", "--queue", "other"]);
    let err = env.fails(2, &["enqueue", "--batch", "bad.jsonl", "--atomic"]);
    assert!(
        err.starts_with("error: line 2: ") && err.contains(missing),
        "{err}"
    );
    assert!(
        env.jobs(&["--queue", "bulk"]).is_empty(),
        "atomic batch stored nothing"
    );

    std::fs::write(
        env.path("good.jsonl"),
        "{\"kind\": \"quern.noop\", \"queue\": \"bulk\"}\n{\"kind\": \"quern.noop\", \"queue\": \"bulk\"}\n",
    )
    .unwrap();
    let out = env.ok(&["enqueue", "--batch", "good.jsonl", "--atomic"]);
    assert_eq!(out.lines().count(), 2, "one id per line: {out}");
    assert_eq!(env.jobs(&["--queue", "bulk"]).len(), 2);
    // From stdin, with several dependencies on one job.
    let ids: Vec<&str> = out.lines().collect();
    let line = format!(
        "{{\"kind\": \"quern.noop\", \"queue\": \"bulk\", \"depends_on\": [\"{}\", \"{}\"]}}\n",
        ids[0], ids[1]
    );
    let out = env.run_with_stdin(&["--json", "enqueue", "--batch", "-"], Some(&line));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = doc["jobs"][0]["id"].as_str().unwrap();
    let job = env.job(id);
    assert_eq!(job["depends_on"], json!([ids[0], ids[1]]));
    assert_eq!(state(&job), "blocked");
    let two = env.enqueue(&[
        "quern.noop",
        "--queue",
        "bulk",
        "--depends-on",
        ids[0],
        "--depends-on",
        ids[1],
    ]);
    env.drain(&["--queues", "bulk"]);
    assert_eq!(state(&env.job(id)), "succeeded");
    assert_eq!(state(&env.job(&two)), "succeeded");
}

/// `--retry` and `--result-ttl` (and the same fields of a batch line) are stored with the
/// job, and the worker goes by them: `none` ends a failing job after one attempt whatever
/// its max attempts, and the result is kept for the job's own TTL.
fn retry_and_result_ttl_are_stored_and_used(env: Env) {
    let id = env.enqueue(&[
        "quern.noop",
        "--retry",
        "exponential:1s..5m*3~10%",
        "--result-ttl",
        "1h",
    ]);
    let job = env.job(&id);
    assert_eq!(
        job["retry"],
        json!({"type": "exponential", "base": 1000, "multiplier": 3.0, "max": 300_000, "jitter": 0.1})
    );
    assert_eq!(job["result_ttl"], 3_600_000);
    let plain = env.job(&env.enqueue(&["quern.noop"]));
    assert_eq!(
        (&plain["retry"], &plain["result_ttl"]),
        (&json!(null), &json!(null))
    );

    std::fs::write(
        env.path("jobs.jsonl"),
        concat!(
            r#"{"kind": "quern.noop", "queue": "b", "retry": "custom:1s,5s,30s", "result_ttl": "2m"}"#,
            "\n",
            r#"{"kind": "quern.noop", "queue": "b", "retry": "linear:1s..1m", "result_ttl": 1500}"#,
            "\n",
        ),
    )
    .unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    let mut batch = env.jobs(&["--queue", "b"]);
    batch.sort_by_key(|j| j["result_ttl"].as_i64());
    assert_eq!(
        batch[0]["retry"],
        json!({"type": "linear", "base": 1000, "max": 60_000})
    );
    assert_eq!(batch[0]["result_ttl"], 1500);
    assert_eq!(
        batch[1]["retry"],
        json!({"type": "custom", "delays": [1000, 5000, 30_000]})
    );
    assert_eq!(batch[1]["result_ttl"], 120_000);

    // The worker follows them.
    let failing = env.enqueue(&["quern.fail", "--queue", "w", "--retry", "none"]);
    let kept = env.enqueue(&[
        "shell",
        "--queue",
        "w",
        "--payload",
        r#"{"argv": ["echo", "hi"]}"#,
        "--result-ttl",
        "90m",
    ]);
    env.drain(&["--queues", "w", "--allow-shell"]);
    let f = env.job(&failing);
    assert_eq!(
        (state(&f), &f["attempt"]),
        ("dead", &json!(1)),
        "no retry: {f}"
    );
    let k = env.job(&kept);
    assert_eq!(k["result"], "hi\n");
    let kept_for = k["result_expires_at"]
        .as_i64()
        .expect("an expiry from the job's result_ttl")
        - k["finished_at"].as_i64().unwrap();
    assert!(
        (5_400_000..5_401_000).contains(&kept_for),
        "kept 90m after it finished: {kept_for} ms"
    );
}
