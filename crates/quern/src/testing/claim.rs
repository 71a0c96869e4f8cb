//! `job_claim`: leasing ready jobs, the lease fields, limits, and what is never claimed.

use super::*;
use crate::backend::{FailAction, QueueWeight};
use crate::model::JobState;

/// A claim moves the job to `running` with attempt 1, a new epoch, a lease held by the
/// claiming worker until now + lease, `claimed_at` = now and no `started_at` yet (the worker
/// reports that with the outcome); the returned job is the stored one and the token carries
/// its epoch and attempt.
pub async fn claim_leases_the_job(h: Harness) {
    let id = h.enqueue(job("work")).await.id;
    let before = h.get(id).await;
    h.advance(std::time::Duration::from_millis(1234));
    let c = h.claim_id("default", id).await;
    let j = &c.job;
    assert_eq!(j.state, JobState::Running, "{}: state", h.case);
    assert_eq!(j.attempt, 1, "{}: attempt", h.case);
    assert!(
        j.lease_epoch > before.lease_epoch,
        "{}: epoch grows",
        h.case
    );
    assert_eq!(c.token.job_id, id, "{}: token job id", h.case);
    assert_eq!(c.token.epoch, j.lease_epoch, "{}: token epoch", h.case);
    assert_eq!(c.token.attempt, 1, "{}: token attempt", h.case);
    assert_eq!(j.claimed_at, Some(h.now()), "{}: claimed_at", h.case);
    assert_eq!(j.started_at, None, "{}: not started yet", h.case);
    let lease = j.lease.as_ref().expect("a running job has a lease");
    assert_eq!(lease.worker_id, WORKER, "{}: lease holder", h.case);
    assert_eq!(
        lease.expires_at,
        h.now() + ms(LEASE),
        "{}: lease deadline",
        h.case
    );
    assert_eq!(
        &h.get(id).await,
        j,
        "{}: claimed job is the stored job",
        h.case
    );
    assert_eq!(j.payload, before.payload, "{}: payload unchanged", h.case);
}

/// A claim never returns more than `limit` jobs, and each job once.
pub async fn claim_respects_limit(h: Harness) {
    h.enqueue_many("default", 5).await;
    let first = h.claim("default", 3).await;
    assert_eq!(first.len(), 3, "{}: limit 3", h.case);
    let rest = h.claim("default", 10).await;
    assert_eq!(rest.len(), 2, "{}: the remaining two", h.case);
    let mut ids: Vec<_> = first.iter().chain(&rest).map(|c| c.job.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "{}: five distinct jobs", h.case);
}

/// One claim call may take a very large batch (a worker with high concurrency and
/// prefetch): 10,000 jobs come back at once, each leased once.
pub async fn one_claim_takes_ten_thousand_jobs(h: Harness) {
    let ids = h.enqueue_many("big", 10_000).await;
    let got = h.claim("big", 10_000).await;
    assert_eq!(got.len(), 10_000, "{}: every job in one claim", h.case);
    let mut seen: Vec<_> = got.iter().map(|c| c.job.id).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), ids.len(), "{}: each job once", h.case);
    assert_eq!(h.stats("big").await.counts.running, 10_000, "{}", h.case);
    h.claim_none("big", "nothing is left").await;
}

/// A running job whose lease is valid is not handed out again.
pub async fn running_job_is_not_claimed_again(h: Harness) {
    let c = h.enqueue_and_claim(job("once")).await;
    h.advance(LEASE / 2);
    h.claim_none("default", "job is leased").await;
    h.assert_state(c.job.id, JobState::Running, "still running")
        .await;
}

/// Claiming from a queue never used, or from queues not holding the job, returns nothing
/// (and is not an error: workers start before work arrives).
pub async fn unknown_or_unlisted_queue_claims_nothing(h: Harness) {
    h.claim_none("never-used", "unknown queue").await;
    let id = h.enqueue(job("x").queue("q2")).await.id;
    let got = h
        .claim_from(
            vec![QueueWeight::new("q1", 1), QueueWeight::new("q3", 5)],
            10,
        )
        .await;
    assert!(got.is_empty(), "{}: job is in an unlisted queue", h.case);
    h.assert_state(id, JobState::Queued, "untouched").await;
    h.claim_id("q2", id).await;
}

/// Blocked jobs and not-yet-due scheduled jobs are never claimed; finished ones neither.
pub async fn blocked_and_scheduled_jobs_are_not_claimed(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    h.enqueue(job("b").depends_on([a])).await;
    h.enqueue(job("c").run_at(h.now() + 1_000)).await;
    let done = h.enqueue(job("d")).await.id;
    // Claim a and d (the only ready ones), finish d as dead.
    let got = h.claim("default", 10).await;
    let mut ids: Vec<_> = got.iter().map(|c| c.job.id).collect();
    ids.sort();
    let mut want = vec![a, done];
    want.sort();
    assert_eq!(ids, want, "{}: only the ready jobs", h.case);
    let d = got.iter().find(|c| c.job.id == done).unwrap();
    h.fail(&d.token, FailAction::Dead).await;
    h.claim_none("default", "blocked, scheduled and dead jobs")
        .await;
}

/// Every claim of the same job gets a strictly larger epoch.
pub async fn every_claim_gets_a_new_epoch(h: Harness) {
    let id = h.enqueue(job("x")).await.id;
    let mut last = h.get(id).await.lease_epoch;
    for round in 0..3 {
        let c = h.claim_id("default", id).await;
        assert!(
            c.token.epoch > last,
            "{}: round {round}: epoch {} not above {last}",
            h.case,
            c.token.epoch
        );
        last = c.token.epoch;
        h.try_release(&c.token).await.unwrap();
    }
}

/// Completes a job reporting that its handler started at `started_at`.
async fn complete_started(
    h: &Harness,
    token: &crate::backend::LeaseToken,
    started_at: crate::Millis,
) {
    let done = crate::backend::Completion {
        token: token.clone(),
        result: None,
        result_ttl: None,
        started_at: Some(started_at),
    };
    h.try_complete(done)
        .await
        .unwrap_or_else(|e| panic!("{}: complete: {e}", h.case));
}

/// `started_at` is what the worker reports with the attempt's outcome (complete or fail),
/// kept between the claim time and the store's now; a new claim clears it (the new attempt
/// has not started), while `claimed_at` moves to the new claim. Wait and run times follow.
pub async fn started_at_is_reported_with_the_outcome(h: Harness) {
    use crate::backend::{FailParams, Failure};
    use crate::model::ErrorKind;
    let id = h.enqueue(job("work")).await.id;
    h.advance(std::time::Duration::from_millis(10));
    let c = h.claim_id("default", id).await;
    let claimed = h.now();
    h.advance(std::time::Duration::from_millis(40));
    let handler_start = h.now();
    h.advance(std::time::Duration::from_millis(25));
    let fail = Failure {
        token: c.token.clone(),
        action: FailAction::Retry {
            retry_at: Some(h.now() + 100),
        },
        error_kind: ErrorKind::Retryable,
        message: "first attempt".into(),
        started_at: Some(handler_start),
    };
    let r = h.backend.job_fail(FailParams { items: vec![fail] }).await;
    assert!(
        matches!(r.as_deref(), Ok([Ok(())])),
        "{}: fail: {r:?}",
        h.case
    );
    let j = h.get(id).await;
    assert_eq!(j.claimed_at, Some(claimed), "{}: claimed_at", h.case);
    assert_eq!(j.started_at, Some(handler_start), "{}: started_at", h.case);

    h.advance(std::time::Duration::from_millis(100));
    let c = h.claim_id("default", id).await;
    let j = h.get(id).await;
    assert_eq!(j.claimed_at, Some(h.now()), "{}: claimed again", h.case);
    assert_eq!(
        j.started_at, None,
        "{}: the new attempt has not started",
        h.case
    );
    let claimed = h.now();
    h.advance(std::time::Duration::from_millis(5));
    let handler_start = h.now();
    h.advance(std::time::Duration::from_millis(20));
    complete_started(&h, &c.token, handler_start).await;
    let j = h.get(id).await;
    assert_eq!(j.started_at, Some(handler_start), "{}: started_at", h.case);
    assert_eq!(j.run_ms(), Some(20), "{}: run time", h.case);
    assert_eq!(
        j.wait_ms(),
        Some(handler_start - j.run_at),
        "{}: wait time",
        h.case
    );
    assert!(claimed <= handler_start, "{}", h.case);

    // A reported start outside [claimed_at, now] (another machine's clock) is kept inside.
    for (skew, want) in [(-60_000i64, "claimed_at"), (60_000, "now")] {
        let id = h.enqueue(job("skewed")).await.id;
        let c = h.claim_id("default", id).await;
        let claimed = h.now();
        h.advance(std::time::Duration::from_millis(30));
        complete_started(&h, &c.token, h.now() + skew).await;
        let j = h.get(id).await;
        let expect = if skew < 0 { claimed } else { h.now() };
        assert_eq!(j.started_at, Some(expect), "{}: clamped to {want}", h.case);
    }
}
