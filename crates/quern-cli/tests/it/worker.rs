use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Env, eventually, signal, state, wait_output};

on_every_store!(
    sigterm_and_sigint_let_running_jobs_finish,
    shell_is_refused_unless_allowed,
    exit_when_idle_waits_for_retries,
    a_closed_stderr_does_not_stop_a_graceful_shutdown,
    stderr_on_a_full_device_does_not_stop_a_graceful_shutdown,
    a_signal_delivered_twice_at_once_is_one_request,
    log_format_json_writes_one_object_per_line,
);

fn sigterm_and_sigint_let_running_jobs_finish(mut env: Env) {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let (id, pid) = running_sleep_job(&mut env, 1500);
        let t0 = Instant::now();
        signal(pid, sig);
        let child = env.take_child(pid);
        let out = wait_output(child, Duration::from_secs(20), &["worker"]);
        assert_eq!(out.status.code(), Some(0), "graceful exit on signal {sig}");
        // It waited for the job rather than abandoning it.
        assert_eq!(state(&env.job(&id)), "succeeded", "signal {sig}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_deregistered(&env);
    }
}

fn shell_is_refused_unless_allowed(env: Env) {
    let id = env.enqueue(&["shell", "--payload", r#"{"argv": ["echo", "hi"]}"#]);
    env.drain(&[]);
    let job = env.job(&id);
    assert_eq!(state(&job), "dead", "refusal is fatal, not retried");
    let msg = job["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("refused") && msg.contains("--allow-shell"),
        "{msg}"
    );

    // Allow-listed in quern.toml: runs without --allow-shell; other programs still refused.
    std::fs::write(env.path("quern.toml"), "[shell]\nallow = [\"echo\"]\n").unwrap();
    let ok = env.enqueue(&["shell", "--payload", r#"{"argv": ["echo", "hi"]}"#]);
    let no = env.enqueue(&["shell", "--payload", r#"{"argv": ["printf", "hi"]}"#]);
    env.drain(&[]);
    assert_eq!(env.job(&ok)["result"], "hi\n");
    assert_eq!(state(&env.job(&no)), "dead");
}

fn exit_when_idle_waits_for_retries(env: Env) {
    // Fails once (exit 1 while the marker file is absent), then succeeds: the idle worker
    // must wait out the retry backoff instead of leaving.
    let script = r#"{"argv": ["sh", "-c", "if [ -e marker ]; then echo done; else touch marker; exit 1; fi"]}"#;
    let id = env.enqueue(&["shell", "--payload", script]);
    env.drain(&["--allow-shell"]);
    let job = env.job(&id);
    assert_eq!(state(&job), "succeeded");
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["result"], "done\n");
}

/// `quern worker 2>&1 | head -2`: once `head` leaves, every log line fails with EPIPE (the
/// one on SIGTERM, written by the signal task, used to panic it, so shutdown never began).
/// The worker must still finish its job, stop on SIGTERM and exit 0.
fn a_closed_stderr_does_not_stop_a_graceful_shutdown(mut env: Env) {
    // Info level: the worker logs at start, per signal and at exit.
    env.var("QUERN_LOG", "info");
    let id = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 1500}"#]);
    let pid = env.spawn_with_stderr(&["worker"], Stdio::piped());
    env.close_stderr_after(pid, "worker started");
    stops_gracefully_with_its_job_done(&mut env, pid, &id);
}

/// `quern worker 2>/dev/full`: every write to stderr fails with ENOSPC.
fn stderr_on_a_full_device_does_not_stop_a_graceful_shutdown(mut env: Env) {
    env.var("QUERN_LOG", "info");
    let id = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 1500}"#]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let pid = env.spawn_with_stderr(&["worker"], Stdio::from(full));
    stops_gracefully_with_its_job_done(&mut env, pid, &id);
}

/// Waits for job `id` to run on worker `pid`, sends SIGTERM, and checks that the worker
/// finished the job, deregistered and exited 0 well within its grace period.
fn stops_gracefully_with_its_job_done(env: &mut Env, pid: u32, id: &str) {
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(id)) == "running"
    });
    signal(pid, libc::SIGTERM);
    let child = env.take_child(pid);
    let out = wait_output(child, Duration::from_secs(20), &["worker"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "graceful exit: {:?}",
        out.status
    );
    assert_eq!(state(&env.job(id)), "succeeded");
    assert_deregistered(env);
}

/// Asserts that `quern workers list` is empty: a worker that shuts down gracefully removes
/// its own registry record.
fn assert_deregistered(env: &Env) {
    let listed = env.json(&["workers", "list"]);
    assert!(
        listed["workers"].as_array().unwrap().is_empty(),
        "deregistered"
    );
}

/// `timeout 2 quern worker` signals the worker and its process group: the same SIGTERM can
/// arrive twice within moments. That is one graceful shutdown, not "stop at once"; a signal
/// sent well after the first still is.
fn a_signal_delivered_twice_at_once_is_one_request(mut env: Env) {
    let (id, pid) = running_sleep_job(&mut env, 1500);
    // Far enough apart that the kernel does not merge them, close enough to be one request.
    let out = sigterm_twice(&mut env, pid, Duration::from_millis(30));
    assert_eq!(out.status.code(), Some(0), "graceful: {:?}", out.status);
    assert_eq!(state(&env.job(&id)), "succeeded");

    // A second signal a second later stops the worker at once (exit 130).
    let (_, pid) = running_sleep_job(&mut env, 5000);
    let out = sigterm_twice(&mut env, pid, Duration::from_secs(1));
    assert_eq!(
        out.status.code(),
        Some(130),
        "stopped at once: {:?}",
        out.status
    );
}

/// Enqueues a `quern.sleep` job of `ms`, starts `quern worker` and waits until the job runs:
/// where every signal case begins. Returns the job's id and the worker's pid.
fn running_sleep_job(env: &mut Env, ms: u64) -> (String, u32) {
    let payload = format!(r#"{{"ms": {ms}}}"#);
    let id = env.enqueue(&["quern.sleep", "--payload", &payload]);
    let pid = env.spawn(&["worker"]);
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(&id)) == "running"
    });
    (id, pid)
}

/// Sends worker `pid` SIGTERM twice, `gap` apart, and returns its output once it exits: the
/// gap decides whether the second signal is the same request or "stop at once".
fn sigterm_twice(env: &mut Env, pid: u32, gap: Duration) -> std::process::Output {
    signal(pid, libc::SIGTERM);
    std::thread::sleep(gap);
    signal(pid, libc::SIGTERM);
    wait_output(env.take_child(pid), Duration::from_secs(20), &["worker"])
}

/// `--log-format json`: every stderr line of a worker is one JSON object with a timestamp, a
/// level and its fields (the message among them), so a log shipper can read it; the text
/// format (the default) is not JSON.
fn log_format_json_writes_one_object_per_line(mut env: Env) {
    env.enqueue(&["quern.noop"]);
    env.var("QUERN_LOG", "info");
    for (format, json) in [("json", true), ("text", false)] {
        let out = env.run(&["worker", "--exit-when-idle", "--log-format", format]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 2, "{format}: {stderr}");
        let parsed: Vec<Option<serde_json::Value>> = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect();
        if json {
            for (l, v) in lines.iter().zip(&parsed) {
                let v = v.as_ref().unwrap_or_else(|| panic!("not JSON: {l}"));
                assert!(v["timestamp"].is_string(), "{l}");
                assert!(v["level"].is_string(), "{l}");
                assert!(v["fields"]["message"].is_string(), "{l}");
            }
            assert!(
                parsed
                    .iter()
                    .flatten()
                    .any(|v| v["fields"]["message"] == "worker stopped"),
                "{stderr}"
            );
        } else {
            assert!(parsed.iter().all(Option::is_none), "text lines: {stderr}");
        }
    }
}
