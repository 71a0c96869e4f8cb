//! Queue listing and stats: queues exist once used; counts per state are exact.

use super::*;
use crate::Error;
use crate::backend::FailAction;
use crate::model::{Priority, StateCounts};

/// Counts by state follow every move.
pub async fn counts_by_state(h: Harness) {
    let q = "stats";
    h.enqueue_many(q, 3).await;
    // The low-priority job is claimed last, so it is the one left queued.
    let dep = h
        .enqueue(job("dep").queue(q).priority(Priority::LOW))
        .await
        .id;
    h.enqueue(job("later").queue(q).run_at(h.now() + 60_000))
        .await;
    h.enqueue(job("waits").queue(q).depends_on([dep])).await;
    let running = h.claim_one(q).await;
    let done = h.claim_one(q).await;
    h.complete(&done.token).await;
    let doomed = h.claim_one(q).await;
    h.fail(&doomed.token, FailAction::Dead).await;
    let gone = h.enqueue(job("gone").queue(q)).await.id;
    h.cancel(gone).await.unwrap();
    let want = StateCounts {
        scheduled: 1,
        queued: 1,
        blocked: 1,
        running: 1,
        succeeded: 1,
        dead: 1,
        cancelled: 1,
        skipped: 0,
    };
    let s = h.stats(q).await;
    assert_eq!(s.name, q, "{}", h.case);
    assert_eq!(s.counts, want, "{}: counts", h.case);
    assert!(!s.paused, "{}", h.case);
    // The queued job dies, which skips the blocked one.
    h.claim_and_fail(q, dep, FailAction::Dead).await;
    h.complete(&running.token).await;
    let s = h.stats(q).await;
    let want = StateCounts {
        scheduled: 1,
        queued: 0,
        blocked: 0,
        running: 0,
        succeeded: 2,
        dead: 2,
        cancelled: 1,
        skipped: 1,
    };
    assert_eq!(s.counts, want, "{}: counts after more moves", h.case);
}

/// Every used queue is listed with its own counts; unused names are not.
pub async fn list_has_every_queue(h: Harness) {
    assert!(
        h.backend.queue_list().await.unwrap().is_empty(),
        "{}: none at first",
        h.case
    );
    h.enqueue_many("a", 2).await;
    h.enqueue_many("b", 3).await;
    h.claim_none("c", "claiming does not create a queue").await;
    let mut list = h.backend.queue_list().await.unwrap();
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<&str> = list.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "{}", h.case);
    assert_eq!(list[0].counts.queued, 2, "{}", h.case);
    assert_eq!(list[1].counts.queued, 3, "{}", h.case);
    assert_eq!(
        list[1],
        h.stats("b").await,
        "{}: list agrees with stats",
        h.case
    );
}

/// Stats of a never-used queue are `QueueNotFound`.
pub async fn unknown_queue_is_not_found(h: Harness) {
    expect_err!(h, h.backend.queue_stats("nope".into()).await, Error::QueueNotFound(ref q) if q == "nope", "stats");
}

/// `oldest_queued_at` is the `run_at` of the oldest queued job, and `None` with none queued.
pub async fn oldest_queued_at(h: Harness) {
    let t = h.now();
    for (i, off) in [-3_000i64, -9_000, -1_000].into_iter().enumerate() {
        h.enqueue(job_n("q", i).run_at(t + off)).await;
    }
    h.enqueue(job("future").queue("q").run_at(t + 60_000)).await;
    assert_eq!(
        h.stats("q").await.oldest_queued_at,
        Some(t - 9_000),
        "{}",
        h.case
    );
    h.claim_one("q").await; // takes the oldest
    assert_eq!(
        h.stats("q").await.oldest_queued_at,
        Some(t - 3_000),
        "{}",
        h.case
    );
    h.claim("q", 10).await;
    assert_eq!(
        h.stats("q").await.oldest_queued_at,
        None,
        "{}: none queued",
        h.case
    );
}
