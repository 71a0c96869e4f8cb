use serde_json::json;

use std::time::{Duration, Instant};

use crate::support::{Env, eventually, state};

on_every_store!(
    list_filters_by_queue_state_kind_and_limit,
    show_has_state_attempts_result_errors_and_progress,
    cancel_retry_and_wait,
    cancel_a_running_job_and_wait_for_one,
    reprioritize_waiting_jobs_and_refuse_the_others,
    a_closed_stdout_stops_a_listing_quietly,
);

fn list_filters_by_queue_state_kind_and_limit(env: Env) {
    let a = env.enqueue(&["quern.noop", "--queue", "a"]);
    let b = env.enqueue(&["quern.sleep", "--payload", r#"{"ms":1}"#, "--queue", "b"]);
    let c = env.enqueue(&["quern.noop", "--queue", "b", "--delay", "1h"]);
    let ids = |jobs: Vec<serde_json::Value>| -> Vec<String> {
        jobs.iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(env.jobs(&[])),
        vec![c.clone(), b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(ids(env.jobs(&["--queue", "b"])), vec![c.clone(), b.clone()]);
    assert_eq!(ids(env.jobs(&["--state", "scheduled"])), vec![c.clone()]);
    assert_eq!(
        ids(env.jobs(&["--kind", "quern.noop"])),
        vec![c.clone(), a.clone()]
    );
    let one = env.json(&["jobs", "list", "--limit", "1"]);
    assert_eq!(one["jobs"].as_array().unwrap().len(), 1);
    // The human table names every job.
    let table = env.ok(&["jobs", "list"]);
    for id in [&a, &b, &c] {
        assert!(table.contains(id.as_str()), "{table}");
    }
}

fn show_has_state_attempts_result_errors_and_progress(env: Env) {
    let ok = env.enqueue(&[
        "shell",
        "--payload",
        r#"{"argv": ["echo", "{\"rows\": 3}"]}"#,
    ]);
    let bad = env.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"message": "boom"}"#,
        "--max-attempts",
        "1",
    ]);
    env.drain(&["--allow-shell"]);
    let job = env.job(&ok);
    assert_eq!(state(&job), "succeeded");
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["result"], json!({"rows": 3}));
    let job = env.job(&bad);
    assert_eq!(state(&job), "dead");
    assert_eq!(job["errors"][0]["message"], "boom");
    assert_eq!(job["errors"][0]["attempt"], 1);

    let text = env.ok(&["jobs", "show", &ok]);
    for want in [
        "state       succeeded",
        "attempt     1 of 25",
        "result      {\"rows\":3}",
        "progress",
    ] {
        assert!(text.contains(want), "{want:?} missing in\n{text}");
    }
    let text = env.ok(&["jobs", "show", &bad]);
    assert!(text.contains("boom") && text.contains("dead"), "{text}");
}

fn cancel_retry_and_wait(env: Env) {
    let id = env.enqueue(&["quern.noop", "--delay", "1h"]);
    let out = env.json(&["jobs", "cancel", &id]);
    assert_eq!(out["state"], "cancelled");
    assert_eq!(state(&env.job(&id)), "cancelled");
    // Finished jobs cannot be cancelled again: a failed operation.
    let err = env.fails(1, &["jobs", "cancel", &id]);
    assert!(err.contains("cancel"), "{err}");

    let out = env.json(&["jobs", "retry", &id]);
    assert_eq!(out["state"], "queued");
    // Waiting with a timeout on a job nobody runs fails with exit 1.
    let err = env.fails(1, &["jobs", "wait", &id, "--timeout", "300ms"]);
    assert!(err.contains("still queued"), "{err}");

    env.drain(&[]);
    let out = env.json(&["jobs", "wait", &id]);
    assert_eq!(out["state"], "succeeded");

    let dead = env.enqueue(&["quern.fail", "--payload", r#"{"fatal": true}"#]);
    env.drain(&[]);
    let out = env.run(&["jobs", "wait", &dead]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "wait exits 1 when the job did not succeed"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dead"));
    // A succeeded job is not retried, and the refusal changes nothing.
    let err = env.fails(1, &["jobs", "retry", &id]);
    assert!(err.contains("succeeded"), "{err}");
    assert_eq!(state(&env.job(&id)), "succeeded");
}

fn cancel_a_running_job_and_wait_for_one(mut env: Env) {
    // A running job is told to stop: quern.sleep notices and the job ends cancelled.
    let long = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 30000}"#]);
    env.spawn(&["worker"]);
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(&long)) == "running"
    });
    let t0 = Instant::now();
    let out = env.json(&["jobs", "cancel", &long]);
    assert!(
        ["running", "cancelled"].contains(&out["state"].as_str().unwrap()),
        "{out}"
    );
    let out = env.run(&["--json", "jobs", "wait", &long, "--timeout", "20s"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cancelled job did not succeed"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "cancelled", "{doc}");
    assert!(t0.elapsed() < Duration::from_secs(15), "stopped early");

    // `wait` follows a job that is still to run until it finishes, with its result.
    let id = env.enqueue(&[
        "quern.sleep",
        "--payload",
        r#"{"ms": 300}"#,
        "--delay",
        "500ms",
    ]);
    let out = env.json(&["jobs", "wait", &id, "--timeout", "20s"]);
    assert_eq!(out["state"], "succeeded", "{out}");
    assert_eq!(state(&env.job(&id)), "succeeded");
}

/// `jobs reprioritize` takes a number or a name, prints the new priority (the job with
/// `--json`), and refuses a running, finished or unknown job with exit 1, changing nothing.
fn reprioritize_waiting_jobs_and_refuse_the_others(mut env: Env) {
    let queued = env.enqueue(&["quern.noop", "--queue", "r"]);
    let later = env.enqueue(&["quern.noop", "--queue", "s", "--delay", "1h"]);
    let out = env.ok(&["jobs", "reprioritize", &queued, "critical"]);
    assert_eq!(out.trim_end(), format!("{queued} priority critical"));
    assert_eq!(env.job(&queued)["priority"], 0);
    let job = env.json(&["jobs", "reprioritize", &later, "3"]);
    assert_eq!(job["id"], later.as_str(), "{job}");
    assert_eq!(job["priority"], 3, "{job}");
    assert_eq!(job["state"], "scheduled", "{job}");
    assert_eq!(env.job(&later), job, "the printed job is the stored one");
    // Not a priority: a usage error.
    env.fails(2, &["jobs", "reprioritize", &queued, "urgent"]);

    let ghost = "01890a5d-ac96-774b-bcce-b302099a8057";
    let err = env.fails(1, &["jobs", "reprioritize", ghost, "high"]);
    assert!(err.contains("not found"), "{err}");

    env.drain(&["--queues", "r"]);
    let err = env.fails(1, &["jobs", "reprioritize", &queued, "batch"]);
    assert!(err.contains("succeeded"), "{err}");
    assert_eq!(env.job(&queued)["priority"], 0, "unchanged");

    let long = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 30000}"#]);
    env.spawn(&["worker"]);
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(&long)) == "running"
    });
    let err = env.fails(1, &["jobs", "reprioritize", &long, "high"]);
    assert!(err.contains("running"), "{err}");
    assert_eq!(env.job(&long)["priority"], 5, "unchanged");
    env.ok(&["jobs", "cancel", &long]);
}

/// `quern jobs list | head -1`: when the reader closes stdout, the command stops quietly
/// with exit status 141 (128 + SIGPIPE) instead of panicking with a backtrace (`println!`
/// panicked on the broken pipe), in the table and in `--json`.
fn a_closed_stdout_stops_a_listing_quietly(env: Env) {
    use std::io::Read;
    // 1,200 jobs: their listing is larger than a pipe's buffer (so it meets the closed
    // pipe), while the enqueue's own output of ids still fits in one.
    let lines = "{\"kind\": \"quern.noop\"}\n".repeat(1200);
    std::fs::write(env.path("jobs.jsonl"), lines).unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    for json in [false, true] {
        let mut args = vec!["jobs", "list", "--limit", "1200"];
        if json {
            args.push("--json");
        }
        let mut child = env
            .command(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 64];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here: the rest of the listing meets a closed pipe.
        let out = crate::support::wait_output(child, Duration::from_secs(30), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "json={json}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "json={json}: {stderr}");
    }
}
