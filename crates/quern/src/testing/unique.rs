//! Unique keys: an enqueue whose key matches a live job (within its window) returns the
//! existing id instead of storing a duplicate. Window semantics per `NewJob::unique_for`:
//! without a window the key holds until the job finishes; with one it also holds after
//! success until the window (from creation) ends, but not after the job ends dead, cancelled
//! or skipped.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::backend::{BatchMode, FailAction, ListParams};
use crate::model::{JobId, JobState, NewJob};

fn keyed(key: &str, window: Option<Duration>) -> NewJob {
    job("unique").unique(key, window)
}

/// Asserts an enqueue was a duplicate of `of`, in state `state`, and stored nothing new.
async fn assert_dup(h: &Harness, new: NewJob, of: JobId, state: JobState, why: &str) {
    let new_id = new.id;
    let out = h.enqueue(new).await;
    assert!(out.duplicate, "{}: {why}: expected a duplicate", h.case);
    assert_eq!(out.id, of, "{}: {why}: returns the existing id", h.case);
    assert_eq!(
        out.state, state,
        "{}: {why}: the existing job's state",
        h.case
    );
    h.assert_absent(&[new_id], why).await;
}

/// Asserts an enqueue stored a new job.
async fn assert_new(h: &Harness, new: NewJob, why: &str) -> JobId {
    let id = new.id;
    let out = h.enqueue(new).await;
    assert!(!out.duplicate, "{}: {why}: expected a new job", h.case);
    assert_eq!(out.id, id, "{}: {why}: the new job's id", h.case);
    id
}

/// 16 concurrent enqueues of one key make exactly one job; all return its id.
pub async fn concurrent_enqueues_make_one_job(h: Harness) {
    const N: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let backend = h.backend.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let j = job_n("default", i).unique("one-key", None);
            barrier.wait().await;
            backend
                .job_enqueue(crate::backend::EnqueueParams {
                    jobs: vec![j],
                    mode: BatchMode::Atomic,
                })
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let mut res = t
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("{}: {e}", h.case));
        outcomes.push(res.remove(0).unwrap_or_else(|e| panic!("{}: {e}", h.case)));
    }
    let first = outcomes[0].id;
    assert!(
        outcomes.iter().all(|o| o.id == first),
        "{}: every enqueue returns the one job's id: {outcomes:?}",
        h.case
    );
    let fresh = outcomes.iter().filter(|o| !o.duplicate).count();
    assert_eq!(fresh, 1, "{}: exactly one enqueue stored a job", h.case);
    let all = h
        .backend
        .job_list(ListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.jobs.len(), 1, "{}: one job stored", h.case);
    assert_eq!(all.jobs[0].id, first, "{}", h.case);
}

/// While the keyed job is queued, running or backing off, enqueues return it (and leave it
/// unchanged).
pub async fn duplicate_of_live_job_returns_it(h: Harness) {
    let id = assert_new(&h, keyed("k", None), "first").await;
    let before = h.get(id).await;
    assert_dup(
        &h,
        keyed("k", None).queue("default"),
        id,
        JobState::Queued,
        "queued",
    )
    .await;
    assert_eq!(h.get(id).await, before, "{}: original unchanged", h.case);
    let c = h.claim_id("default", id).await;
    assert_dup(&h, keyed("k", None), id, JobState::Running, "running").await;
    h.fail(
        &c.token,
        FailAction::Retry {
            retry_at: Some(h.now() + 60_000),
        },
    )
    .await;
    assert_dup(&h, keyed("k", None), id, JobState::Scheduled, "retrying").await;
}

/// Without a window, the key frees once the job finishes (succeeded or dead).
pub async fn key_without_window_frees_when_job_finishes(h: Harness) {
    let a = assert_new(&h, keyed("k", None), "first").await;
    let c = h.claim_id("default", a).await;
    h.complete(&c.token).await;
    let b = assert_new(&h, keyed("k", None), "after success").await;
    assert_ne!(a, b, "{}", h.case);
    h.claim_and_fail("default", b, FailAction::Dead).await;
    assert_new(&h, keyed("k", None), "after dead").await;
}

/// With a window, the key holds after success until created_at + window, then frees.
pub async fn window_holds_after_success_until_it_passes(h: Harness) {
    let window = Duration::from_secs(60);
    let created = h.now();
    let a = assert_new(&h, keyed("k", Some(window)), "first").await;
    h.advance(Duration::from_secs(1));
    let c = h.claim_id("default", a).await;
    h.complete(&c.token).await;
    h.advance(Duration::from_secs(29));
    assert_dup(
        &h,
        keyed("k", Some(window)),
        a,
        JobState::Succeeded,
        "inside the window after success",
    )
    .await;
    h.advance_to(created + ms(window) + 1_000);
    assert_new(&h, keyed("k", Some(window)), "after the window").await;
}

/// With a window, a job that has not finished holds its key however long it waits: the
/// window only extends the hold after success.
pub async fn window_never_frees_an_unfinished_job(h: Harness) {
    let window = Duration::from_secs(60);
    let a = assert_new(&h, keyed("k", Some(window)), "first").await;
    h.advance(Duration::from_secs(120));
    assert_dup(
        &h,
        keyed("k", Some(window)),
        a,
        JobState::Queued,
        "queued past the window",
    )
    .await;
    let c = h.claim_id("default", a).await;
    assert_dup(
        &h,
        keyed("k", Some(window)),
        a,
        JobState::Running,
        "running past the window",
    )
    .await;
    h.complete(&c.token).await;
    assert_new(&h, keyed("k", Some(window)), "succeeded after the window").await;
}

/// With a window, a job that ended cancelled or dead does not hold its key.
pub async fn window_does_not_hold_after_failure(h: Harness) {
    let window = Some(Duration::from_secs(3600));
    let a = assert_new(&h, keyed("k", window), "first").await;
    h.cancel(a).await.unwrap();
    let b = assert_new(&h, keyed("k", window), "after cancel").await;
    h.claim_and_fail("default", b, FailAction::Dead).await;
    assert_new(&h, keyed("k", window), "after dead").await;
}

/// The same key in two queues makes two jobs.
pub async fn keys_are_per_queue(h: Harness) {
    let a = assert_new(&h, keyed("k", None).queue("q1"), "q1").await;
    let b = assert_new(&h, keyed("k", None).queue("q2"), "q2").await;
    assert_ne!(a, b, "{}", h.case);
    assert_dup(
        &h,
        keyed("k", None).queue("q2"),
        b,
        JobState::Queued,
        "q2 again",
    )
    .await;
}

/// Two jobs with one key in the same batch: the second is a duplicate of the first.
pub async fn duplicate_within_one_batch(h: Harness) {
    let first = keyed("k", None);
    let second = keyed("k", None);
    let (a, b) = (first.id, second.id);
    let out = h.enqueue_all(vec![first, second]).await;
    assert!(
        !out[0].duplicate && out[0].id == a,
        "{}: first stored: {out:?}",
        h.case
    );
    assert!(
        out[1].duplicate && out[1].id == a,
        "{}: second is its duplicate: {out:?}",
        h.case
    );
    h.assert_absent(&[b], "in-batch duplicate").await;
}
