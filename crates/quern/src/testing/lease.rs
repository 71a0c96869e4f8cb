//! Leases: heartbeats extend them and store progress and checkpoints; expired ones are
//! rescued (re-delivered with the attempt counted, or dead when it was the last), and the
//! next attempt sees the last checkpoint.

use std::time::Duration;

use super::*;
use crate::backend::{FailAction, HeartbeatItem, RescueParams};
use crate::model::{ErrorKind, JobState, Progress};

/// A heartbeat moves the deadline to now + lease; the rescuer leaves the job alone past the
/// old deadline.
pub async fn heartbeat_extends_the_lease(h: Harness) {
    let c = h.enqueue_and_claim(job("long")).await;
    h.advance(LEASE - Duration::from_secs(5));
    let deadline = h.heartbeat(&c.token).await.unwrap();
    assert_eq!(deadline, h.now() + ms(LEASE), "{}: new deadline", h.case);
    let j = h.get(c.job.id).await;
    assert_eq!(
        j.lease.as_ref().map(|l| l.expires_at),
        Some(deadline),
        "{}: stored deadline",
        h.case
    );
    h.advance(Duration::from_secs(10)); // past the first deadline, within the new one
    let r = h.rescue().await;
    assert!(
        r.requeued.is_empty() && r.dead.is_empty(),
        "{}: nothing to rescue: {r:?}",
        h.case
    );
    h.assert_state(c.job.id, JobState::Running, "still leased")
        .await;
    h.complete(&c.token).await;
}

/// Progress and checkpoints sent with heartbeats are stored; a later heartbeat without them
/// keeps them.
pub async fn heartbeat_stores_progress_and_checkpoint(h: Harness) {
    let c = h.enqueue_and_claim(job("long")).await;
    let progress = Progress {
        percent: 40.0,
        message: Some("4 of 10".into()),
    };
    let cp = json_payload(serde_json::json!({ "offset": 4 }));
    h.try_heartbeat(HeartbeatItem {
        token: c.token.clone(),
        progress: Some(progress.clone()),
        checkpoint: Some(cp.clone()),
    })
    .await
    .unwrap();
    let j = h.get(c.job.id).await;
    assert_eq!(j.progress.as_ref(), Some(&progress), "{}: progress", h.case);
    assert_eq!(j.checkpoint.as_ref(), Some(&cp), "{}: checkpoint", h.case);
    h.heartbeat(&c.token).await.unwrap();
    let j = h.get(c.job.id).await;
    assert_eq!(
        j.progress.as_ref(),
        Some(&progress),
        "{}: progress kept",
        h.case
    );
    assert_eq!(
        j.checkpoint.as_ref(),
        Some(&cp),
        "{}: checkpoint kept",
        h.case
    );
}

/// Not rescued before the deadline; after it, back to `queued` with the attempt counted, the
/// lease gone and a `lease_expired` entry in the error history; the next claim is attempt 2.
pub async fn expired_lease_is_rescued_attempt_counted(h: Harness) {
    let c = h.enqueue_and_claim(job("crashy")).await;
    h.advance(LEASE - Duration::from_secs(1));
    let r = h.rescue().await;
    assert!(
        r.requeued.is_empty() && r.dead.is_empty(),
        "{}: too early: {r:?}",
        h.case
    );
    h.advance(Duration::from_secs(2));
    let r = h.rescue().await;
    assert_eq!(r.requeued, vec![c.job.id], "{}: requeued", h.case);
    assert!(r.dead.is_empty(), "{}", h.case);
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Queued, "{}", h.case);
    assert_eq!(j.attempt, 1, "{}: the lost attempt stays counted", h.case);
    assert!(j.lease.is_none(), "{}: lease cleared", h.case);
    let last = j
        .errors
        .last()
        .expect("an error record for the lost attempt");
    assert_eq!(last.kind, ErrorKind::LeaseExpired, "{}", h.case);
    assert_eq!(last.attempt, 1, "{}", h.case);
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(again.job.attempt, 2, "{}", h.case);
    assert_eq!(again.token.attempt, 2, "{}", h.case);
    // Rescuing again finds nothing.
    let r = h.rescue().await;
    assert!(
        r.requeued.is_empty() && r.dead.is_empty(),
        "{}: {r:?}",
        h.case
    );
}

/// A lease lost on the last attempt ends the job dead, and its dependents are skipped in the
/// same step.
pub async fn rescue_of_last_attempt_is_dead_and_skips_dependents(h: Harness) {
    let a = job("a").max_attempts(1);
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]);
    let ids = (a.id, b.id, c.id);
    h.enqueue_all(vec![a, b, c]).await;
    let (a, b, c) = ids;
    h.claim_id("default", a).await;
    h.advance(LEASE + Duration::from_secs(1));
    let r = h.rescue().await;
    assert_eq!(r.dead, vec![a], "{}: out of attempts: dead", h.case);
    assert!(r.requeued.is_empty(), "{}", h.case);
    let aj = h.get(a).await;
    assert_eq!(aj.state, JobState::Dead, "{}", h.case);
    assert!(aj.finished_at.is_some(), "{}", h.case);
    assert_eq!(
        aj.errors.last().map(|e| e.kind),
        Some(ErrorKind::LeaseExpired),
        "{}",
        h.case
    );
    h.assert_state(b, JobState::Skipped, "dependent").await;
    h.assert_state(c, JobState::Skipped, "transitive dependent")
        .await;
}

/// The rescuer takes at most `limit` jobs per call.
pub async fn rescue_respects_limit(h: Harness) {
    h.enqueue_many("default", 3).await;
    assert_eq!(h.claim("default", 3).await.len(), 3, "{}", h.case);
    h.advance(LEASE + Duration::from_secs(1));
    let first = h
        .backend
        .lease_rescue(RescueParams {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.requeued.len(), 2, "{}: limit 2: {first:?}", h.case);
    let second = h.rescue().await;
    assert_eq!(
        second.requeued.len(),
        1,
        "{}: the last one: {second:?}",
        h.case
    );
    assert!(
        !first.requeued.contains(&second.requeued[0]),
        "{}: each job rescued once",
        h.case
    );
}

/// The checkpoint saved before a crash comes back with the next claim after rescue.
pub async fn checkpoint_returned_after_rescue(h: Harness) {
    let c = h.enqueue_and_claim(job("resumable")).await;
    assert!(c.job.checkpoint.is_none(), "{}: no checkpoint yet", h.case);
    let cp = json_payload(serde_json::json!({ "done": [1, 2, 3] }));
    h.try_heartbeat(HeartbeatItem {
        token: c.token.clone(),
        progress: Some(Progress {
            percent: 30.0,
            message: None,
        }),
        checkpoint: Some(cp.clone()),
    })
    .await
    .unwrap();
    h.advance(LEASE + Duration::from_secs(1));
    assert_eq!(h.rescue().await.requeued, vec![c.job.id], "{}", h.case);
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(
        again.job.checkpoint,
        Some(cp),
        "{}: checkpoint handed to attempt 2",
        h.case
    );
}

/// The checkpoint also survives a retryable failure.
pub async fn checkpoint_returned_after_retry(h: Harness) {
    let c = h.enqueue_and_claim(job("resumable")).await;
    let cp = json_payload(serde_json::json!({ "page": 7 }));
    h.try_heartbeat(HeartbeatItem {
        token: c.token.clone(),
        progress: None,
        checkpoint: Some(cp.clone()),
    })
    .await
    .unwrap();
    h.fail(
        &c.token,
        FailAction::Retry {
            retry_at: Some(h.now() + 1_000),
        },
    )
    .await;
    h.advance(Duration::from_secs(1));
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(
        again.job.checkpoint,
        Some(cp),
        "{}: checkpoint handed to attempt 2",
        h.case
    );
}
