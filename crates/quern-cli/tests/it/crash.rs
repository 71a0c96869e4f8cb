//! A worker killed with SIGKILL loses no job: once its leases expire, another worker
//! process runs them.

use std::time::Duration;

use crate::support::{Env, eventually, signal, state, wait_output};

#[test]
fn sigkilled_worker_loses_no_job() {
    let mut env = Env::new();
    let ids: Vec<String> = (0..4)
        .map(|_| env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 3000}"#]))
        .collect();
    let done = env.enqueue(&["quern.noop", "--queue", "other"]);
    let a = env.spawn(&["worker", "--concurrency", "4", "--lease", "1s"]);
    eventually(Duration::from_secs(20), "worker A to run all four", || {
        env.jobs(&["--state", "running"]).len() == 4
    });
    signal(a, libc::SIGKILL);
    let _ = wait_output(env.take_child(a), Duration::from_secs(10), &["worker A"]);
    // A is gone but its jobs still look running: its leases have not expired yet.
    assert_eq!(env.jobs(&["--state", "running"]).len(), 4);

    let b = env.spawn(&[
        "worker",
        "--queues",
        "default,other",
        "--concurrency",
        "4",
        "--lease",
        "1s",
        "--exit-when-idle",
    ]);
    let out = wait_output(env.take_child(b), Duration::from_secs(60), &["worker B"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &ids {
        let job = env.job(id);
        assert_eq!(state(&job), "succeeded", "{job}");
        assert_eq!(job["attempt"], 2, "the killed attempt counts: {job}");
        assert_eq!(job["errors"][0]["kind"], "lease_expired", "{job}");
    }
    assert_eq!(state(&env.job(&done)), "succeeded");
}
