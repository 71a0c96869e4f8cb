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
);

fn sigterm_and_sigint_let_running_jobs_finish(mut env: Env) {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let id = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 1500}"#]);
        let pid = env.spawn(&["worker"]);
        eventually(Duration::from_secs(15), "the job to start", || {
            state(&env.job(&id)) == "running"
        });
        let t0 = Instant::now();
        signal(pid, sig);
        let child = env.take_child(pid);
        let out = wait_output(child, Duration::from_secs(20), &["worker"]);
        assert_eq!(out.status.code(), Some(0), "graceful exit on signal {sig}");
        // It waited for the job rather than abandoning it.
        assert_eq!(state(&env.job(&id)), "succeeded", "signal {sig}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(
            env.json(&["workers", "list"])["workers"]
                .as_array()
                .unwrap()
                .is_empty(),
            "deregistered"
        );
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
    assert!(
        env.json(&["workers", "list"])["workers"]
            .as_array()
            .unwrap()
            .is_empty(),
        "deregistered"
    );
}

/// `timeout 2 quern worker` signals the worker and its process group: the same SIGTERM can
/// arrive twice within moments. That is one graceful shutdown, not "stop at once"; a signal
/// sent well after the first still is.
fn a_signal_delivered_twice_at_once_is_one_request(mut env: Env) {
    let id = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 1500}"#]);
    let pid = env.spawn(&["worker"]);
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(&id)) == "running"
    });
    signal(pid, libc::SIGTERM);
    // Far enough apart that the kernel does not merge them, close enough to be one request.
    std::thread::sleep(Duration::from_millis(30));
    signal(pid, libc::SIGTERM);
    let out = wait_output(env.take_child(pid), Duration::from_secs(20), &["worker"]);
    assert_eq!(out.status.code(), Some(0), "graceful: {:?}", out.status);
    assert_eq!(state(&env.job(&id)), "succeeded");

    // A second signal a second later stops the worker at once (exit 130).
    let id = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 5000}"#]);
    let pid = env.spawn(&["worker"]);
    eventually(Duration::from_secs(15), "the job to start", || {
        state(&env.job(&id)) == "running"
    });
    signal(pid, libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(1));
    signal(pid, libc::SIGTERM);
    let out = wait_output(env.take_child(pid), Duration::from_secs(20), &["worker"]);
    assert_eq!(
        out.status.code(),
        Some(130),
        "stopped at once: {:?}",
        out.status
    );
}
