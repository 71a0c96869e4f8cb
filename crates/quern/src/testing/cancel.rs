//! `job_cancel`: any non-terminal job can be cancelled (a running one loses its lease);
//! terminal ones and unknown ids are refused without change.

use super::*;
use crate::Error;
use crate::backend::FailAction;
use crate::model::{JobId, JobState};

/// Cancels `id`, checks the returned and stored job are `cancelled` and finished, and that
/// it is never claimed.
async fn cancel_ok(h: &Harness, id: JobId, from: JobState) {
    let j = h
        .cancel(id)
        .await
        .unwrap_or_else(|e| panic!("{}: cancel a {from} job: {e}", h.case));
    assert_eq!(j.id, id, "{}", h.case);
    assert_eq!(j.state, JobState::Cancelled, "{}: returned job", h.case);
    assert!(j.finished_at.is_some(), "{}: cancelled is finished", h.case);
    assert!(j.lease.is_none(), "{}: no lease", h.case);
    assert_eq!(
        h.get(id).await,
        j,
        "{}: returned job is the stored one",
        h.case
    );
}

/// queued → cancelled.
pub async fn cancel_queued(h: Harness) {
    let id = h.enqueue(job("x")).await.id;
    cancel_ok(&h, id, JobState::Queued).await;
    h.claim_none("default", "cancelled").await;
}

/// scheduled → cancelled; it does not run when due.
pub async fn cancel_scheduled(h: Harness) {
    let at = h.now() + 1_000;
    let id = h.enqueue(job("x").run_at(at)).await.id;
    cancel_ok(&h, id, JobState::Scheduled).await;
    h.advance_to(at + 1);
    h.claim_none("default", "cancelled before due").await;
}

/// blocked → cancelled; it does not run when its dependency completes.
pub async fn cancel_blocked(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h.enqueue(job("b").depends_on([a])).await.id;
    cancel_ok(&h, b, JobState::Blocked).await;
    let c = h.claim_id("default", a).await;
    h.complete(&c.token).await;
    h.assert_state(b, JobState::Cancelled, "stays cancelled")
        .await;
    h.claim_none("default", "cancelled").await;
}

/// running → cancelled: the lease is revoked, so the worker's next heartbeat (and any
/// completion) gets `LeaseLost` and the job stays cancelled.
pub async fn cancel_running_revokes_the_lease(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    cancel_ok(&h, c.job.id, JobState::Running).await;
    expect_err!(h, h.heartbeat(&c.token).await, Error::LeaseLost { job_id } if job_id == c.job.id, "heartbeat after cancel");
    expect_err!(
        h,
        h.try_fail(&c.token, FailAction::Dead).await,
        Error::LeaseLost { .. },
        "fail after cancel"
    );
    let done = crate::backend::Completion {
        token: c.token.clone(),
        result: None,
        result_ttl: None,
        started_at: None,
    };
    expect_err!(
        h,
        h.try_complete(done).await,
        Error::LeaseLost { .. },
        "complete after cancel"
    );
    h.assert_state(c.job.id, JobState::Cancelled, "stays cancelled")
        .await;
    h.advance(LEASE * 2);
    let r = h.rescue().await;
    assert!(
        r.requeued.is_empty() && r.dead.is_empty(),
        "{}: nothing to rescue: {r:?}",
        h.case
    );
}

/// Cancelling a succeeded, dead, cancelled or skipped job is `InvalidTransition` naming the
/// state, and the job is unchanged.
pub async fn cancel_terminal_is_refused(h: Harness) {
    for (id, from) in h.finished_jobs().await {
        let before = h.get(id).await;
        expect_err!(
            h,
            h.cancel(id).await,
            Error::InvalidTransition { id: got, from: f, .. } if got == id && f == from,
            format!("cancel a {from} job")
        );
        assert_eq!(h.get(id).await, before, "{}: {from} job unchanged", h.case);
    }
}

/// Cancelling an id that does not exist is `JobNotFound`.
pub async fn cancel_unknown_is_not_found(h: Harness) {
    let ghost = JobId::new();
    expect_err!(h, h.cancel(ghost).await, Error::JobNotFound(id) if id == ghost, "unknown id");
    assert!(h.find(ghost).await.is_none(), "{}", h.case);
}
