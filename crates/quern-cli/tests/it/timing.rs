//! When jobs run: `--delay` counts from the store, a worker starts the jobs it holds in
//! priority order, and `started_at` is when the handler started. Runs on SQLite and Redis.

use std::time::Duration;

use serde_json::Value;

use crate::support::Env;

on_every_store!(
    delay_counts_from_the_store,
    one_worker_starts_its_jobs_in_priority_order,
    a_critical_job_starts_when_a_slot_frees
);

fn ms(job: &Value, field: &str) -> i64 {
    job[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {job}"))
}

/// `--delay 250ms` is stored as `run_at = created_at + 250 ms` exactly, however long the
/// command took to open the store (it was 212-236 ms when the CLI added the delay to its own
/// clock before opening the store).
fn delay_counts_from_the_store(env: Env) {
    for d in ["250ms", "2s"] {
        let id = env.enqueue(&["quern.noop", "--delay", d]);
        let job = env.job(&id);
        let want = if d == "2s" { 2_000 } else { 250 };
        assert_eq!(
            ms(&job, "run_at") - ms(&job, "created_at"),
            want,
            "--delay {d}: {job}"
        );
        assert_eq!(job["state"], "scheduled", "{job}");
    }
}

/// Jobs as `jobs list --json` prints them, finished ones sorted by when their handler started.
fn by_start(env: &Env) -> Vec<Value> {
    let mut jobs = env.jobs(&[]);
    jobs.sort_by_key(|j| (ms(j, "started_at"), ms(j, "claimed_at")));
    jobs
}

/// The case: 20 jobs of priorities 9 to 0 (two each, 30 ms each) on one slot. They
/// start in priority order (0, 0, 1, 1, …; they ran 0, 1, 0, 1, 2, 2, … when prefetched jobs
/// raced for the slot), and `started_at` is when each handler started: with one slot, each
/// starts after the previous one's 30 ms (it was the claim time, before the previous one
/// ended, and a 30 ms job showed 60 ms of run time).
fn one_worker_starts_its_jobs_in_priority_order(env: Env) {
    let mut lines = String::new();
    for p in (0..10).rev() {
        for _ in 0..2 {
            lines.push_str(&format!(
                "{{\"kind\": \"quern.sleep\", \"payload\": {{\"ms\": 30}}, \"priority\": {p}}}\n"
            ));
        }
    }
    std::fs::write(env.path("jobs.jsonl"), lines).unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    env.drain(&["--concurrency", "1"]);
    let jobs = by_start(&env);
    assert_eq!(jobs.len(), 20);
    let order: Vec<i64> = jobs.iter().map(|j| ms(j, "priority")).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "start order by priority");
    for w in jobs.windows(2) {
        let gap = ms(&w[1], "started_at") - ms(&w[0], "started_at");
        assert!(
            gap >= 29,
            "one slot, 30 ms jobs: a handler started {gap} ms after the previous one\n{}\n{}",
            w[0],
            w[1]
        );
    }
    for j in &jobs {
        assert_eq!(j["state"], "succeeded", "{j}");
        assert!(ms(j, "started_at") >= ms(j, "claimed_at"), "{j}");
        let run = ms(j, "finished_at") - ms(j, "started_at");
        assert!(run >= 29, "run time {run} ms of a 30 ms job: {j}");
    }
}

/// A critical job enqueued while the one slot is busy and short low-priority jobs wait in
/// the worker's prefetch takes the next free slot: once it is claimed, at most the job that
/// was already given the slot starts before it (without the fix it queued behind the
/// prefetched ones).
fn a_critical_job_starts_when_a_slot_frees(mut env: Env) {
    let lines = "{\"kind\": \"quern.sleep\", \"payload\": {\"ms\": 5}, \"priority\": \"batch\"}\n"
        .repeat(400);
    std::fs::write(env.path("jobs.jsonl"), lines).unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    let pid = env.spawn(&["worker", "--concurrency", "1"]);
    // Let the worker get going (and its prefetch fill), then enqueue a critical job.
    crate::support::eventually(Duration::from_secs(20), "jobs to finish", || {
        env.jobs(&["--state", "succeeded"]).len() >= 30
    });
    let id = env.enqueue(&[
        "quern.sleep",
        "--payload",
        "{\"ms\": 5}",
        "--priority",
        "critical",
    ]);
    crate::support::eventually(Duration::from_secs(20), "the critical job", || {
        env.job(&id)["state"] == "succeeded"
    });
    crate::support::signal(pid, libc::SIGTERM);
    let _ = crate::support::wait_output(env.take_child(pid), Duration::from_secs(20), &["worker"]);
    let critical = env.job(&id);
    let claimed = ms(&critical, "claimed_at");
    let started = ms(&critical, "started_at");
    let jumped: Vec<Value> = env
        .jobs(&["--state", "succeeded"])
        .into_iter()
        .filter(|j| j["id"] != id.as_str())
        .filter(|j| {
            let s = ms(j, "started_at");
            s > claimed && s < started
        })
        .collect();
    assert!(
        jumped.len() <= 1,
        "{} jobs started between the critical job's claim ({claimed}) and its start \
         ({started}): {jumped:?}",
        jumped.len()
    );
    let wait = started - ms(&critical, "created_at");
    // About 5-30 ms here when the machine is quiet; the bound leaves room for a loaded one.
    assert!(wait < 1000, "the critical job waited {wait} ms");
}
