//! Finished jobs by time (`job_finished`, the input of `quern stats`): every terminal job
//! that finished at or after the cutoff, with its stored timestamps, filtered by queue and
//! kind; nothing older, nothing live.

use std::time::Duration;

use super::*;
use crate::backend::{Completion, FailAction, FinishedJob, FinishedParams, LeaseToken};
use crate::model::{JobId, JobState};

async fn finished(
    h: &Harness,
    since: crate::Millis,
    queue: Option<&str>,
    kind: Option<&str>,
) -> Vec<FinishedJob> {
    let mut v = h
        .backend
        .job_finished(FinishedParams {
            since,
            queue: queue.map(str::to_string),
            kind: kind.map(str::to_string),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: job_finished: {e}", h.case));
    v.sort_by_key(|j| j.id);
    v
}

fn ids(v: &[FinishedJob]) -> Vec<JobId> {
    v.iter().map(|j| j.id).collect()
}

/// Completes reporting the handler's start time.
async fn complete_started(h: &Harness, token: &LeaseToken, started_at: crate::Millis) {
    h.try_complete(Completion {
        token: token.clone(),
        result: None,
        result_ttl: None,
        started_at: Some(started_at),
    })
    .await
    .unwrap_or_else(|e| panic!("{}: complete: {e}", h.case));
}

/// A job that waited 100 ms and ran 250 ms reads back with exactly those timestamps; an
/// earlier finished job, a live one and the filters leave the others out.
pub async fn finished_jobs_since_the_cutoff_with_their_times(h: Harness) {
    if h.lacks("stats", h.caps().stats) {
        return;
    }
    // Finished before the cutoff: left out.
    let old = h.enqueue_and_claim(job("x")).await;
    h.complete(&old.token).await;
    h.advance(Duration::from_secs(60));
    let cutoff = h.now();

    let t0 = h.now();
    let a = h.enqueue(job("x").queue("qa")).await.id;
    let b = h.enqueue(job("y").queue("qa")).await.id;
    let c = h.enqueue(job("x").queue("qb")).await.id;
    let live = h.enqueue(job("x").queue("qa")).await.id;
    h.advance(Duration::from_millis(100));
    let ca = h.claim_id("qa", a).await;
    let started = h.now();
    h.advance(Duration::from_millis(250));
    complete_started(&h, &ca.token, started).await;
    h.claim_and_fail("qa", b, FailAction::Dead).await;
    h.cancel(c).await.unwrap();

    let all = finished(&h, cutoff, None, None).await;
    let mut want = vec![a, b, c];
    want.sort();
    assert_eq!(ids(&all), want, "{}: finished since the cutoff", h.case);
    let ja = all.iter().find(|j| j.id == a).unwrap();
    assert_eq!(
        (ja.queue.as_str(), ja.kind.as_str(), ja.state, ja.attempt),
        ("qa", "x", JobState::Succeeded, 1),
        "{}",
        h.case
    );
    assert_eq!(
        (ja.created_at, ja.run_at, ja.started_at, ja.finished_at),
        (t0, t0, Some(t0 + 100), t0 + 350),
        "{}: stored timestamps",
        h.case
    );
    let jb = all.iter().find(|j| j.id == b).unwrap();
    assert_eq!((jb.state, jb.attempt), (JobState::Dead, 1), "{}", h.case);
    let jc = all.iter().find(|j| j.id == c).unwrap();
    assert_eq!(
        (jc.state, jc.started_at),
        (JobState::Cancelled, None),
        "{}",
        h.case
    );

    assert_eq!(
        ids(&finished(&h, cutoff, Some("qb"), None).await),
        [c],
        "{}: queue",
        h.case
    );
    let mut want = vec![a, c];
    want.sort();
    assert_eq!(
        ids(&finished(&h, cutoff, None, Some("x")).await),
        want,
        "{}: kind",
        h.case
    );
    assert_eq!(
        ids(&finished(&h, cutoff, Some("qa"), Some("y")).await),
        [b],
        "{}: both",
        h.case
    );
    assert!(
        finished(&h, h.now() + 1, None, None).await.is_empty(),
        "{}: nothing finished after now",
        h.case
    );
    assert!(
        !ids(&finished(&h, 0, None, None).await).contains(&live),
        "{}: a live job is not finished",
        h.case
    );
    assert_eq!(
        finished(&h, 0, None, None).await.len(),
        4,
        "{}: since 0 has the old one too",
        h.case
    );
}

/// A job retried and then succeeded reports all its attempts; a retried (operator) job
/// leaves the finished set until it finishes again.
pub async fn retries_count_and_a_retried_job_leaves_the_window(h: Harness) {
    if h.lacks("stats", h.caps().stats) {
        return;
    }
    let id = h.enqueue(job("flaky")).await.id;
    let c = h.claim_one("default").await;
    h.fail(
        &c.token,
        FailAction::Retry {
            retry_at: Some(h.now()),
        },
    )
    .await;
    let c = h.claim_id("default", id).await;
    h.complete(&c.token).await;
    let v = finished(&h, 0, None, None).await;
    assert_eq!((v.len(), v[0].attempt), (1, 2), "{}: two attempts", h.case);

    let dead = h.enqueue(job("dead")).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    assert_eq!(
        finished(&h, 0, None, Some("dead")).await.len(),
        1,
        "{}",
        h.case
    );
    h.retry_ids(vec![dead]).await.unwrap();
    assert!(
        finished(&h, 0, None, Some("dead")).await.is_empty(),
        "{}: queued again, so not finished",
        h.case
    );
}
