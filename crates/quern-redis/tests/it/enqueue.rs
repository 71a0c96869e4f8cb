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

    // A default job to run now holds only its state, run_at and blob chunks: no timeline
    // field (its creation is derived from `r` when its events are read).
    let p = b.prefix();
    let key = |id: &quern::JobId| format!("{p}:{{default}}:j:{id}");
    let mut fields = cli(&["HKEYS", &key(&jobs[0].id)]);
    fields.sort();
    assert_eq!(fields, ["d0", "d1", "r", "s"]);
    let mut fields = cli(&["HKEYS", &key(&jobs[5].id)]);
    fields.sort();
    assert_eq!(fields, ["d0", "d1", "m", "p", "r", "s"]);
    let mut fields = cli(&["HKEYS", &key(&jobs[7].id)]);
    fields.sort();
    assert_eq!(fields, ["c", "d0", "d1", "r", "s"]);
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

/// The hot path of the job events: enqueue, claim, a failure with a retry, the promotion,
/// a second claim and the completion store no timeline field in the job's hash (`v…`,
/// `vn`; the timeline is derived when read) and append one stream entry per call.
#[tokio::test]
async fn hot_path_stores_no_timeline_fields_and_one_stream_entry_per_call() {
    use quern::Clock;
    use quern::backend::*;
    use std::time::Duration;
    let clock = ManualClock::new(1_795_000_000_000);
    let Some(b) = common::connect(clock.clone()).await else {
        return;
    };
    let _cleanup = common::Cleanup(b.clone());
    let jobs: Vec<NewJob> = (0..3).map(|n| job(n).queue("hot")).collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    b.job_enqueue(EnqueueParams {
        jobs,
        mode: BatchMode::Atomic,
    })
    .await
    .unwrap();
    let claim = || ClaimParams {
        worker_id: "w".into(),
        queues: vec![QueueWeight::new("hot", 1)],
        limit: 3,
        lease: Duration::from_secs(30),
        more_urgent_than: None,
    };
    let c = b.job_claim(claim()).await.unwrap();
    assert_eq!(c.len(), 3);
    let now = clock.now_ms();
    b.job_fail(FailParams {
        items: vec![Failure {
            token: c[0].token.clone(),
            action: FailAction::Retry {
                retry_at: Some(now + 10),
            },
            error_kind: quern::model::ErrorKind::Retryable,
            message: "again".into(),
            started_at: None,
        }],
    })
    .await
    .unwrap();
    let done = |t: &quern::backend::LeaseToken| Completion {
        token: t.clone(),
        result: None,
        result_ttl: None,
        started_at: None,
    };
    b.job_complete(CompleteParams {
        items: vec![done(&c[1].token), done(&c[2].token)],
    })
    .await
    .unwrap();
    clock.advance(Duration::from_millis(20));
    let again = b.job_claim(claim()).await.unwrap();
    assert_eq!(again.len(), 1);
    b.job_complete(CompleteParams {
        items: vec![done(&again[0].token)],
    })
    .await
    .unwrap();
    let p = b.prefix();
    for id in &ids {
        let fields = cli(&["HKEYS", &format!("{p}:{{hot}}:j:{id}")]);
        assert!(
            !fields.iter().any(|f| f == "vn" || f == "v1" || f == "kd"),
            "{id}: {fields:?}"
        );
    }
    // enqueue, claim, fail, complete, claim (with the promotion), complete.
    let n = cli(&["XLEN", &format!("{p}:{{hot}}:events")]);
    assert_eq!(n, ["6"]);
    // The timeline is whole all the same.
    let t = b.event_list(EventListParams { job: ids[0] }).await.unwrap();
    assert_eq!(t.len(), 6, "{t:?}");
}
