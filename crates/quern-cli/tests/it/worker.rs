use std::time::{Duration, Instant};

use crate::support::{Env, eventually, signal, state, wait_output};

on_every_store!(
    sigterm_and_sigint_let_running_jobs_finish,
    shell_is_refused_unless_allowed,
    exit_when_idle_waits_for_retries,
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
