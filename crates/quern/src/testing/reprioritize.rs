//! `job_reprioritize`: a job waiting to run (scheduled, queued, blocked) gets a new priority
//! that orders its claim at once, or once it is ready; running and finished jobs and unknown
//! ids are refused without change.

use std::time::Duration;

use super::*;
use crate::Error;
use crate::model::{JobId, JobState, Priority};

/// Enqueues `n` normal jobs into `"default"`, one second apart (so their due times, not
/// their ids, order them), and returns their ids oldest first.
async fn enqueue_spaced(h: &Harness, n: usize) -> Vec<JobId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(h.enqueue(job_n("default", i)).await.id);
        h.advance(Duration::from_secs(1));
    }
    ids
}

/// Reprioritizes `id`, checks the returned job carries `to` in state `state` and is the
/// stored one, and that nothing but the priority changed.
async fn reprioritize_ok(h: &Harness, id: JobId, to: Priority, state: JobState) {
    let before = h.get(id).await;
    let j = h
        .reprioritize(id, to)
        .await
        .unwrap_or_else(|e| panic!("{}: reprioritize a {state} job to {to}: {e}", h.case));
    assert_eq!(j.priority, to, "{}: returned priority", h.case);
    assert_eq!(j.state, state, "{}: state is kept", h.case);
    assert_eq!(
        h.get(id).await,
        j,
        "{}: returned job is the stored one",
        h.case
    );
    let mut want = before;
    want.priority = to;
    assert_eq!(j, want, "{}: only the priority changed", h.case);
}

/// Claims every job of `"default"` one at a time and returns the ids in claim order.
async fn drain(h: &Harness, n: usize) -> Vec<JobId> {
    let mut order = Vec::with_capacity(n);
    for _ in 0..n {
        order.push(h.claim_one("default").await.job.id);
    }
    h.claim_none("default", "all claimed").await;
    order
}

/// The newest of four queued normal jobs, raised to critical, is claimed before the three
/// older ones, which then follow in their own order.
pub async fn raised_queued_job_is_claimed_first(h: Harness) {
    let ids = enqueue_spaced(&h, 4).await;
    reprioritize_ok(&h, ids[3], Priority::CRITICAL, JobState::Queued).await;
    let order = drain(&h, 4).await;
    assert_eq!(order, vec![ids[3], ids[0], ids[1], ids[2]], "{}", h.case);
}

/// The oldest of three queued normal jobs, lowered to batch, is claimed after the others.
pub async fn lowered_queued_job_is_claimed_last(h: Harness) {
    let ids = enqueue_spaced(&h, 3).await;
    reprioritize_ok(&h, ids[0], Priority::BATCH, JobState::Queued).await;
    let order = drain(&h, 3).await;
    assert_eq!(order, vec![ids[1], ids[2], ids[0]], "{}", h.case);
}

/// A scheduled job raised to critical stays scheduled (not claimable early) and, once due,
/// is claimed before normal jobs that were due long before it.
pub async fn scheduled_job_is_ready_with_its_new_priority(h: Harness) {
    let at = h.now() + 60_000;
    let later = h.enqueue(job("later").run_at(at)).await.id;
    let ids = enqueue_spaced(&h, 2).await;
    reprioritize_ok(&h, later, Priority::CRITICAL, JobState::Scheduled).await;
    h.advance_to(at);
    let order = drain(&h, 3).await;
    assert_eq!(order, vec![later, ids[0], ids[1]], "{}", h.case);
}

/// A blocked job lowered to batch stays blocked and, once its dependency succeeds, is
/// claimed after normal jobs enqueued after it.
pub async fn blocked_job_is_ready_with_its_new_priority(h: Harness) {
    let dep = h.enqueue(job("dep")).await.id;
    h.advance(Duration::from_secs(1));
    let waiting = h.enqueue(job("waiting").depends_on([dep])).await.id;
    h.advance(Duration::from_secs(1));
    let ids = enqueue_spaced(&h, 2).await;
    reprioritize_ok(&h, waiting, Priority::BATCH, JobState::Blocked).await;
    let c = h.claim_id("default", dep).await;
    h.complete(&c.token).await;
    h.assert_state(waiting, JobState::Queued, "dependency succeeded")
        .await;
    assert_eq!(h.get(waiting).await.priority, Priority::BATCH, "{}", h.case);
    let order = drain(&h, 3).await;
    assert_eq!(order, vec![ids[0], ids[1], waiting], "{}", h.case);
}

/// Reprioritizing a running job or a finished one (succeeded, dead, cancelled, skipped) is
/// `InvalidTransition` naming its state, and the job is unchanged (the running one still completes under its lease).
pub async fn running_and_finished_jobs_are_refused(h: Harness) {
    let mut refused = h.finished_jobs().await;
    let running = h.enqueue_and_claim(job("running")).await;
    refused.push((running.job.id, JobState::Running));
    for (id, from) in refused {
        let before = h.get(id).await;
        expect_err!(
            h,
            h.reprioritize(id, Priority::CRITICAL).await,
            Error::InvalidTransition { id: got, from: f, .. } if got == id && f == from,
            format!("reprioritize a {from} job")
        );
        assert_eq!(h.get(id).await, before, "{}: {from} job unchanged", h.case);
    }
    h.complete(&running.token).await;
}

/// Reprioritizing an id that does not exist is `JobNotFound` and creates nothing.
pub async fn unknown_id_is_not_found(h: Harness) {
    let ghost = JobId::new();
    expect_err!(
        h,
        h.reprioritize(ghost, Priority::HIGH).await,
        Error::JobNotFound(id) if id == ghost,
        "unknown id"
    );
    assert!(h.find(ghost).await.is_none(), "{}", h.case);
}

/// Reprioritizing to the priority a job already has succeeds and changes nothing; so does
/// going to another priority and back to the default.
pub async fn same_priority_is_fine(h: Harness) {
    let ids = enqueue_spaced(&h, 2).await;
    let before = h.get(ids[0]).await;
    reprioritize_ok(&h, ids[0], Priority::NORMAL, JobState::Queued).await;
    assert_eq!(h.get(ids[0]).await, before, "{}: unchanged", h.case);
    reprioritize_ok(&h, ids[0], Priority::LOW, JobState::Queued).await;
    reprioritize_ok(&h, ids[0], Priority::NORMAL, JobState::Queued).await;
    assert_eq!(h.get(ids[0]).await, before, "{}: back as before", h.case);
    let order = drain(&h, 2).await;
    assert_eq!(order, ids, "{}: original order", h.case);
}
