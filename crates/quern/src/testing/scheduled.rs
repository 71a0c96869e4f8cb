//! Delayed jobs: `scheduled` until `run_at`, claimable exactly at `run_at`.

use std::time::Duration;

use super::*;
use crate::backend::FailAction;
use crate::model::{JobState, Priority};

/// A job due at T is not claimable at T-1 ms and is claimable at T.
pub async fn claimable_exactly_at_run_at(h: Harness) {
    let t = h.now() + 10_000;
    let id = h.enqueue(job("later").run_at(t)).await.id;
    h.claim_none("default", "not due yet").await;
    h.advance_to(t - 1);
    h.claim_none("default", "1 ms before run_at").await;
    h.assert_state(id, JobState::Scheduled, "before run_at")
        .await;
    h.advance_to(t);
    let c = h.claim_id("default", id).await;
    assert_eq!(c.job.state, JobState::Running, "{}", h.case);
    assert_eq!(c.job.attempt, 1, "{}", h.case);
}

/// Once due, a scheduled job takes its place by priority among queued jobs.
pub async fn due_job_takes_its_priority_place(h: Harness) {
    let t = h.now() + 5_000;
    let urgent = h
        .enqueue(job("urgent").priority(Priority::CRITICAL).run_at(t))
        .await
        .id;
    h.enqueue_many("default", 2).await;
    h.advance_to(t);
    h.claim_id("default", urgent).await;
}

/// A retry scheduled for T is not claimable before T and is at T.
pub async fn retry_backoff_is_respected(h: Harness) {
    let c = h.enqueue_and_claim(job("flaky")).await;
    let t = h.now() + 5_000;
    h.fail(&c.token, FailAction::Retry { retry_at: Some(t) })
        .await;
    h.assert_state(c.job.id, JobState::Scheduled, "backing off")
        .await;
    h.advance(Duration::from_millis(4_999));
    h.claim_none("default", "1 ms before the retry").await;
    h.advance(Duration::from_millis(1));
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(again.job.attempt, 2, "{}: second attempt", h.case);
}
