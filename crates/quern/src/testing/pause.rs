//! `queue_pause` / `queue_resume`: a paused queue keeps its jobs `queued` and is not
//! claimed from.

use super::*;
use crate::Error;
use crate::backend::QueueWeight;
use crate::model::JobState;

/// Pausing stops claims (jobs stay queued, stats say paused); resuming restores them.
pub async fn paused_queue_is_not_claimed(h: Harness) {
    let id = h.enqueue(job("x").queue("q")).await.id;
    h.backend.queue_pause("q".into()).await.unwrap();
    assert!(h.stats("q").await.paused, "{}: stats show paused", h.case);
    h.claim_none("q", "queue is paused").await;
    h.assert_state(id, JobState::Queued, "paused queue keeps jobs queued")
        .await;
    // Pausing twice is harmless.
    h.backend.queue_pause("q".into()).await.unwrap();
    h.backend.queue_resume("q".into()).await.unwrap();
    assert!(!h.stats("q").await.paused, "{}: stats show resumed", h.case);
    h.claim_id("q", id).await;
}

/// Pausing or resuming a queue that was never used is `QueueNotFound`.
pub async fn unknown_queue_cannot_be_paused_or_resumed(h: Harness) {
    expect_err!(h, h.backend.queue_pause("nope".into()).await, Error::QueueNotFound(ref q) if q == "nope", "pause");
    expect_err!(h, h.backend.queue_resume("nope".into()).await, Error::QueueNotFound(ref q) if q == "nope", "resume");
    let list = h.backend.queue_list().await.unwrap();
    assert!(
        list.iter().all(|q| q.name != "nope"),
        "{}: refused pause created no queue",
        h.case
    );
}

/// In a claim over several queues, a paused one is skipped and the others get every claim.
pub async fn paused_queue_is_skipped_in_multi_queue_claims(h: Harness) {
    let paused = h.enqueue_many("a", 3).await;
    h.enqueue_many("b", 3).await;
    h.backend.queue_pause("a".into()).await.unwrap();
    let got = h
        .claim_from(vec![QueueWeight::new("a", 10), QueueWeight::new("b", 1)], 6)
        .await;
    assert_eq!(got.len(), 3, "{}: only b's three jobs", h.case);
    assert!(got.iter().all(|c| c.job.queue == "b"), "{}", h.case);
    for id in paused {
        h.assert_state(id, JobState::Queued, "paused queue's jobs")
            .await;
    }
}

/// Enqueuing into a paused queue works; the job waits, queued, until resume.
pub async fn enqueue_into_paused_queue_stays_queued(h: Harness) {
    h.enqueue(job("first").queue("q")).await;
    h.claim_one("q").await;
    h.backend.queue_pause("q".into()).await.unwrap();
    let out = h.enqueue(job("second").queue("q")).await;
    assert_eq!(out.state, JobState::Queued, "{}", h.case);
    h.claim_none("q", "paused").await;
    assert_eq!(h.stats("q").await.counts.queued, 1, "{}", h.case);
    h.backend.queue_resume("q".into()).await.unwrap();
    h.claim_id("q", out.id).await;
}
