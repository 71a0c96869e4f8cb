//! The plain enqueue script (`enqueue_plain.lua`) as stored in Redis: what a plain job's
//! hash and ready-set entry hold, and how a resent batch and a reused id are answered. The
//! shared conformance suite checks the behaviour every backend has; these check what only the
//! Redis layout and its retry-safe resend promise.

use std::process::Command;

use quern::backend::{BatchMode, EnqueueParams};
use quern::{Backend, Error, JobState, ManualClock, NewJob, Priority};

use crate::common;

/// Runs `redis-cli` against the test Redis and returns its output lines.
fn cli(args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli")
        .arg("-u")
        .arg(common::redis_url())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn job(n: usize) -> NewJob {
    NewJob::json(
        "plain",
        serde_json::json!({ "n": n, "pad": "x".repeat(90) }),
    )
    .unwrap()
}

#[tokio::test]
async fn plain_jobs_store_the_lean_layout_and_a_resend_is_idempotent() {
    let clock = ManualClock::new(1_795_000_000_000);
    let Some(b) = common::connect(clock.clone()).await else {
        return;
    };
    let _cleanup = common::Cleanup(b.clone());
    let now = 1_795_000_000_000i64;
    // Three groups for the script: five defaults, two urgent ones with 3 attempts, two
    // scheduled.
    let mut jobs: Vec<NewJob> = (0..5).map(job).collect();
    jobs.extend((5..7).map(|n| job(n).priority(Priority::HIGH).max_attempts(3)));
    jobs.extend((7..9).map(|n| job(n).run_at(now + 60_000)));
    let enqueue = |jobs: Vec<NewJob>, mode| {
        let b = b.clone();
        async move { b.job_enqueue(EnqueueParams { jobs, mode }).await }
    };
    let first = enqueue(jobs.clone(), BatchMode::Atomic).await.unwrap();
    let states: Vec<JobState> = first.iter().map(|r| r.as_ref().unwrap().state).collect();
    assert_eq!(
        states,
        [[JobState::Queued; 7].as_slice(), &[JobState::Scheduled; 2]].concat()
    );

    // A default job to run now holds only its state, run_at, blob chunks, and for its
    // events its kind and first timeline line.
    let p = b.prefix();
    let key = |id: &quern::JobId| format!("{p}:{{default}}:j:{id}");
    let mut fields = cli(&["HKEYS", &key(&jobs[0].id)]);
    fields.sort();
    assert_eq!(fields, ["d0", "d1", "kd", "r", "s", "v1"]);
    let mut fields = cli(&["HKEYS", &key(&jobs[5].id)]);
    fields.sort();
    assert_eq!(fields, ["d0", "d1", "kd", "m", "p", "r", "s", "v1"]);
    let mut fields = cli(&["HKEYS", &key(&jobs[7].id)]);
    fields.sort();
    assert_eq!(fields, ["c", "d0", "d1", "kd", "r", "s", "v1"]);
    // The client computes the ready score: priority << 48 plus run_at, as lib.lua's `score`.
    let ready = format!("{p}:{{default}}:ready");
    for (j, prio) in [(&jobs[0], 5i64), (&jobs[5], 2)] {
        let got = cli(&["ZSCORE", &ready, &j.id.to_string()]);
        let want = (prio << 48) + now;
        assert_eq!(got[0].parse::<f64>().unwrap() as i64, want, "{}", j.id);
    }
    let sched = format!("{p}:{{default}}:sched");
    let got = cli(&["ZSCORE", &sched, &jobs[7].id.to_string()]);
    assert_eq!(got[0], (now + 60_000).to_string());

    // The same batch again (what a retried call after a lost reply sends): every job is
    // recognised, in the state it is in, and nothing is stored twice.
    let before = b.queue_stats("default".into()).await.unwrap().counts;
    let again = enqueue(jobs.clone(), BatchMode::Atomic).await.unwrap();
    for (r, s) in again.iter().zip(&states) {
        assert_eq!(r.as_ref().unwrap().state, *s);
    }
    assert_eq!(
        b.queue_stats("default".into()).await.unwrap().counts,
        before
    );

    // A reused id with other content refuses an atomic batch and stores none of it; best
    // effort stores the others.
    let fresh = job(100);
    let reused = job(101).id(jobs[3].id);
    let err = enqueue(vec![fresh.clone(), reused.clone()], BatchMode::Atomic)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidJob { index: Some(1), .. }),
        "{err:?}"
    );
    assert!(
        b.job_get(fresh.id.into()).await.unwrap().is_none(),
        "nothing stored"
    );
    let res = enqueue(vec![fresh.clone(), reused], BatchMode::BestEffort)
        .await
        .unwrap();
    assert_eq!(res[0].as_ref().unwrap().state, JobState::Queued);
    assert!(matches!(res[1], Err(Error::InvalidJob { .. })), "{res:?}");
    let kept = b.job_get(jobs[3].id.into()).await.unwrap().unwrap();
    assert_eq!(kept.payload, jobs[3].payload, "the first job is unchanged");
}
