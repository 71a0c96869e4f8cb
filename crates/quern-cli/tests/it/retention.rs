//! Retention that runs: `quern prune` deletes finished jobs older than their retention (and
//! `--dry-run` only counts them), and every `quern worker` prunes in the background. Runs on
//! SQLite and on Redis.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, eventually};

on_every_store!(
    prune_deletes_what_dry_run_counted,
    a_worker_prunes_in_the_background
);

/// Runs `n` `quern.noop` jobs to success.
fn succeed(env: &Env, n: usize) -> Vec<String> {
    let ids = (0..n).map(|_| env.enqueue(&["quern.noop"])).collect();
    env.drain(&[]);
    ids
}

fn ids_of(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

fn prune_deletes_what_dry_run_counted(env: Env) {
    let old = succeed(&env, 3);
    std::thread::sleep(Duration::from_millis(3500));
    let fresh = succeed(&env, 1);
    let args = ["prune", "--retain-succeeded", "3s"];

    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let counted = env.json(&dry);
    assert_eq!(counted["dry_run"], true, "{counted}");
    assert_eq!(counted["jobs_deleted"], 3, "{counted}");
    assert_eq!(counted["deleted"]["succeeded"], 3, "{counted}");
    assert_eq!(counted["deleted"]["dead"], 0, "{counted}");
    assert_eq!(counted["retention"]["succeeded"], "3s", "{counted}");
    assert_eq!(counted["retention"]["dead"], "7d", "{counted}");
    assert_eq!(env.jobs(&[]).len(), 4, "a dry run deletes nothing");
    let text = env.ok(&dry);
    assert!(text.contains("would delete 3 finished job(s)"), "{text}");

    let done = env.json(&args);
    assert_eq!(done["dry_run"], false, "{done}");
    assert_eq!(
        done["deleted"], counted["deleted"],
        "the same counts: {done}"
    );
    let left = ids_of(&env.jobs(&[]));
    assert_eq!(
        left, fresh,
        "only the job younger than 3s is kept (old: {old:?})"
    );
    let text = env.ok(&args);
    assert!(text.contains("deleted 0 finished job(s)"), "{text}");
}

fn a_worker_prunes_in_the_background(mut env: Env) {
    std::fs::write(
        env.path("quern.toml"),
        "[retention]\nsucceeded = \"1s\"\ninterval = \"200ms\"\n",
    )
    .unwrap();
    let ids: Vec<String> = (0..3).map(|_| env.enqueue(&["quern.noop"])).collect();
    let start = Instant::now();
    env.spawn(&["worker"]);
    eventually(Duration::from_secs(20), "the jobs to succeed", || {
        let jobs = env.jobs(&["--state", "succeeded"]);
        jobs.len() == 3 || env.jobs(&[]).is_empty()
    });
    eventually(Duration::from_secs(20), "the worker to prune them", || {
        env.jobs(&[]).is_empty()
    });
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "kept for the retention: {took:?}"
    );
    for id in &ids {
        let out = env.run(&["jobs", "show", id]);
        assert!(!out.status.success(), "{id} was pruned");
    }
}
