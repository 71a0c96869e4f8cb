//! `quern jobs logs ID [--follow]`: a shell job's stderr lines are its log.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{Env, state, wait_output};

on_every_store!(
    shell_stderr_lines_are_the_jobs_log,
    follow_prints_lines_as_they_are_stored_until_the_job_finishes,
);

fn shell_stderr_lines_are_the_jobs_log(mut env: Env) {
    let id = env.enqueue(&[
        "shell",
        "--payload",
        r#"{"argv": ["sh", "-c", "echo 'one two' >&2; echo out; printf 'no newline' >&2"]}"#,
    ]);
    let quiet = env.enqueue(&["quern.noop"]);
    env.drain(&["--allow-shell"]);
    assert_eq!(state(&env.job(&id)), "succeeded");

    let log = env.json(&["jobs", "logs", &id]);
    let lines = log["lines"].as_array().unwrap();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["one two", "no newline"],
        "stdout is the result, not the log"
    );
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["level"], "info");
    assert_eq!(lines[0]["attempt"], 1);
    assert_eq!(log["dropped"], 0);

    let text = env.ok(&["jobs", "logs", &id]);
    assert!(text.contains("info  #1 one two"), "{text}");
    assert_eq!(
        env.json(&["jobs", "logs", &quiet])["lines"],
        serde_json::json!([])
    );
    let err = env.fails(1, &["jobs", "logs", "0190d5d0-0000-7000-8000-000000000000"]);
    assert!(err.contains("not found"), "{err}");

    // The same log over REST (`GET /v1/jobs/{id}/logs`, which the dashboard's job page reads).
    let srv = env.serve(&[]);
    let h = srv.http();
    let r = h.get(&format!("/v1/jobs/{id}/logs"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["lines"], log["lines"], "the CLI and the API agree");
    assert_eq!(
        (&v["dropped"], &v["next_after"]),
        (&serde_json::json!(0), &serde_json::json!(2))
    );
    let v = h.get(&format!("/v1/jobs/{id}/logs?after=1&limit=5")).json();
    assert_eq!(v["lines"][0]["message"], "no newline");
    assert_eq!(v["lines"].as_array().unwrap().len(), 1);
    let v = h.get(&format!("/v1/jobs/{id}/logs?after=2")).json();
    assert_eq!(
        (&v["lines"], &v["next_after"]),
        (&serde_json::json!([]), &serde_json::json!(2))
    );
    let r = h.get("/v1/jobs/0190d5d0-0000-7000-8000-000000000000/logs");
    assert_eq!((r.status, r.code().as_str()), (404, "job_not_found"));
    assert_eq!(h.get(&format!("/v1/jobs/{id}/logs?limit=0")).status, 400);
    assert_eq!(h.get(&format!("/v1/jobs/{id}/logs?after=x")).status, 400);
    assert_eq!(h.get(&format!("/v1/jobs/{id}/logs?tail=1")).status, 400);
}

fn follow_prints_lines_as_they_are_stored_until_the_job_finishes(mut env: Env) {
    let id = env.enqueue(&[
        "shell",
        "--payload",
        r#"{"argv": ["sh", "-c", "echo first >&2; sleep 2; echo second >&2"]}"#,
    ]);
    let mut follow = env
        .command(&["jobs", "logs", &id, "--follow", "--interval", "50ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quern jobs logs --follow");
    env.spawn(&["worker", "--allow-shell"]);
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("#1 first"), "{first:?}");
    // The line arrived while the program still runs: --follow prints lines as they are
    // stored, not only at the end.
    assert_eq!(state(&env.job(&id)), "running");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = wait_output(
        follow,
        Duration::from_secs(30),
        &["jobs", "logs", "--follow"],
    );
    assert!(status.status.success(), "{status:?}");
    assert!(rest.contains("#1 second"), "{rest:?}");
    assert_eq!(state(&env.job(&id)), "succeeded");
}
