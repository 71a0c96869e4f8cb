//! Claim orders (`priority`, `fifo`, `lifo`, `weighted-random`), priority aging, the stored
//! queue weight, and a throttled claim's next admission time: queue settings applied inside
//! the atomic claim.

use std::time::Duration;

use super::*;
use crate::backend::{ClaimOutcome, ClaimParams, QueueUpdateParams, QueueWeight};
use crate::model::{Aging, ClaimOrder, Priority};
use crate::{Error, JobId};

fn lacks_limits(h: &Harness) -> bool {
    h.lacks("queue_limits", h.caps().queue_limits)
}

async fn set(h: &Harness, p: QueueUpdateParams) {
    h.backend
        .queue_update(p)
        .await
        .unwrap_or_else(|e| panic!("{}: queue_update: {e}", h.case));
}

fn order(queue: &str, o: ClaimOrder) -> QueueUpdateParams {
    QueueUpdateParams {
        queue: queue.into(),
        order: Some(o),
        ..Default::default()
    }
}

fn aging(queue: &str, a: Aging) -> QueueUpdateParams {
    QueueUpdateParams {
        queue: queue.into(),
        aging: Some(Some(a)),
        ..Default::default()
    }
}

/// Enqueues one job of each priority into `queue`, 1 s apart: batch first, critical last.
async fn three_ages(h: &Harness, queue: &str) -> [JobId; 3] {
    let mut ids = Vec::new();
    for p in [Priority::BATCH, Priority::NORMAL, Priority::CRITICAL] {
        ids.push(h.enqueue(job_n(queue, 0).priority(p)).await.id);
        h.advance(Duration::from_secs(1));
    }
    [ids[0], ids[1], ids[2]]
}

async fn claim_ids(h: &Harness, queue: &str, n: usize) -> Vec<JobId> {
    h.claim(queue, n).await.iter().map(|c| c.job.id).collect()
}

/// `priority` (the default) takes the most urgent first; `fifo` the earliest due whatever
/// the priority; `lifo` the latest due first. A claim of one at a time agrees with a claim
/// of several.
pub async fn each_order_claims_in_its_order(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let [batch, normal, critical] = three_ages(&h, "by-priority").await;
    assert_eq!(
        claim_ids(&h, "by-priority", 3).await,
        [critical, normal, batch],
        "{}: priority",
        h.case
    );
    set(&h, order("by-fifo", ClaimOrder::Fifo)).await;
    let [batch, normal, critical] = three_ages(&h, "by-fifo").await;
    assert_eq!(
        claim_ids(&h, "by-fifo", 3).await,
        [batch, normal, critical],
        "{}: fifo",
        h.case
    );
    set(&h, order("by-lifo", ClaimOrder::Lifo)).await;
    let [batch, normal, critical] = three_ages(&h, "by-lifo").await;
    let mut one_by_one = Vec::new();
    for _ in 0..3 {
        one_by_one.push(h.claim_one("by-lifo").await.job.id);
    }
    assert_eq!(one_by_one, [critical, normal, batch], "{}: lifo", h.case);
    // Within one level too, and with more jobs than one claim takes.
    let mut ids = Vec::new();
    for k in 0..6 {
        ids.push(h.enqueue(job_n("by-lifo", k)).await.id);
        h.advance(Duration::from_millis(5));
    }
    assert_eq!(
        claim_ids(&h, "by-lifo", 4).await,
        [ids[5], ids[4], ids[3], ids[2]],
        "{}: lifo within a level",
        h.case
    );
    // Back to the default order: the rest by priority again.
    set(&h, order("by-fifo", ClaimOrder::Priority)).await;
    let [batch, _, critical] = three_ages(&h, "by-fifo").await;
    assert_eq!(
        claim_ids(&h, "by-fifo", 1).await,
        [critical],
        "{}: priority again",
        h.case
    );
    let _ = batch;
}

/// `weighted-random`: a critical job (weight 10) and a batch job (weight 1) are ready; the
/// batch job goes first in about 1 trial in 11. Over 220 trials strict priority would give
/// 0 and a fair coin about 110; the bounds (1 to 60; mean 20) fail with a chance below one
/// in 10^8.
pub async fn weighted_random_follows_the_level_weights(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    set(&h, order("wr", ClaimOrder::WeightedRandom)).await;
    let mut batch_first = 0;
    for k in 0..220 {
        let c = h
            .enqueue(job_n("wr", k).priority(Priority::CRITICAL))
            .await
            .id;
        let b = h.enqueue(job_n("wr", k).priority(Priority::BATCH)).await.id;
        let first = h.claim_one("wr").await.job.id;
        let second = h.claim_one("wr").await.job.id;
        assert!(
            (first, second) == (c, b) || (first, second) == (b, c),
            "{}: each claimed once",
            h.case
        );
        batch_first += usize::from(first == b);
    }
    assert!(
        (1..=60).contains(&batch_first),
        "{}: batch first in {batch_first} of 220 trials (expected about 20)",
        h.case
    );
}

/// The seed's example: low and batch jobs that have waited 30 minutes are claimed as
/// normal, ahead of a newer normal job; before that, normal goes first.
pub async fn aging_makes_old_low_and_batch_jobs_normal(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    set(
        &h,
        aging(
            "aged",
            Aging {
                after: Duration::from_secs(30 * 60),
                step: 5,
                every: None,
                bound: Priority::NORMAL,
            },
        ),
    )
    .await;
    let low = h.enqueue(job_n("aged", 0).priority(Priority::LOW)).await.id;
    h.advance(Duration::from_millis(1));
    let batch = h
        .enqueue(job_n("aged", 1).priority(Priority::BATCH))
        .await
        .id;
    h.advance(Duration::from_secs(29 * 60));
    let n1 = h.enqueue(job_n("aged", 2)).await.id;
    assert_eq!(
        claim_ids(&h, "aged", 1).await,
        [n1],
        "{}: not aged yet",
        h.case
    );
    let n2 = h.enqueue(job_n("aged", 3)).await.id;
    h.advance(Duration::from_secs(60));
    assert_eq!(
        claim_ids(&h, "aged", 3).await,
        [low, batch, n2],
        "{}: aged to normal, older than n2",
        h.case
    );
    // A more urgent job still goes first: the bound is normal.
    let low2 = h.enqueue(job_n("aged", 4).priority(Priority::LOW)).await.id;
    h.advance(Duration::from_secs(31 * 60));
    let high = h
        .enqueue(job_n("aged", 5).priority(Priority::HIGH))
        .await
        .id;
    assert_eq!(
        claim_ids(&h, "aged", 2).await,
        [high, low2],
        "{}: never above the bound",
        h.case
    );
    // The urgency bound of a claim sees the aged priority too.
    let low3 = h.enqueue(job_n("aged", 6).priority(Priority::LOW)).await.id;
    h.advance(Duration::from_secs(31 * 60));
    let got = h
        .backend
        .job_claim(ClaimParams {
            worker_id: "w-urgent".into(),
            queues: vec![QueueWeight::new("aged", 1)],
            limit: 5,
            lease: Duration::from_secs(30),
            more_urgent_than: Some(Priority::new(6).unwrap()),
        })
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|c| c.job.id).collect::<Vec<_>>(),
        [low3],
        "{}: aged low counts as normal for more_urgent_than",
        h.case
    );
}

/// Starvation: one low job under a constant stream of critical jobs (two enqueued and one
/// claimed every 10 s, so the backlog of critical jobs only grows). With aging (1 level per
/// minute after 1 minute, up to critical) it is claimed within the aging bound (7 minutes
/// for low); in a queue without aging it is never claimed in the same 12 minutes.
pub async fn aging_bounds_the_wait_of_a_low_job(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let a = Aging::new(Duration::from_secs(60), 1);
    let bound = a.time_to_bound(Priority::LOW.get());
    assert_eq!(bound, Duration::from_secs(7 * 60));
    set(&h, aging("fair", a)).await;
    let t0 = h.now();
    let fair = h.enqueue(job_n("fair", 0).priority(Priority::LOW)).await.id;
    let strict = h
        .enqueue(job_n("strict", 0).priority(Priority::LOW))
        .await
        .id;
    let (mut fair_at, mut strict_at) = (None, None);
    for k in 0..72 {
        for q in ["fair", "strict"] {
            h.enqueue_all(vec![
                job_n(q, k).priority(Priority::CRITICAL),
                job_n(q, k).priority(Priority::CRITICAL),
            ])
            .await;
            let got = h.claim_one(q).await.job.id;
            if got == fair {
                fair_at = Some(h.now());
            }
            if got == strict {
                strict_at = Some(h.now());
            }
        }
        h.advance(Duration::from_secs(10));
    }
    let waited = fair_at.map(|t| t - t0);
    assert!(
        waited.is_some_and(|w| w <= bound.as_millis() as i64 + 10_000),
        "{}: the low job waited {waited:?} ms, bound {bound:?}",
        h.case
    );
    assert_eq!(strict_at, None, "{}: without aging it starves", h.case);
}

/// The weight and the other order settings are stored, read back and patched one at a
/// time; bad values name their field and change nothing.
pub async fn order_settings_are_stored_and_validated(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let mut a = Aging::new(Duration::from_secs(1800), 2);
    a.every = Some(Duration::from_secs(600));
    a.bound = Priority::HIGH;
    set(
        &h,
        QueueUpdateParams {
            queue: "tuned".into(),
            weight: Some(Some(3)),
            order: Some(ClaimOrder::Fifo),
            aging: Some(Some(a)),
            ..Default::default()
        },
    )
    .await;
    let s = h.backend.queue_get("tuned".into()).await.unwrap().settings;
    assert_eq!(
        (s.weight, s.order, s.aging),
        (Some(3), ClaimOrder::Fifo, Some(a)),
        "{}: stored",
        h.case
    );
    for (bad, field) in [
        (
            QueueUpdateParams {
                weight: Some(Some(crate::model::MAX_WEIGHT + 1)),
                ..Default::default()
            },
            "weight",
        ),
        (
            QueueUpdateParams {
                aging: Some(Some(Aging::new(Duration::from_secs(60), 0))),
                ..Default::default()
            },
            "aging.step",
        ),
        (
            QueueUpdateParams {
                aging: Some(Some(Aging::new(Duration::ZERO, 1))),
                ..Default::default()
            },
            "aging.after",
        ),
    ] {
        let res = h
            .backend
            .queue_update(QueueUpdateParams {
                queue: "tuned".into(),
                order: Some(ClaimOrder::Lifo),
                ..bad
            })
            .await;
        expect_err!(h, res, Error::InvalidArgument(ref m) if m.contains(field), field);
    }
    let after = h.backend.queue_get("tuned".into()).await.unwrap().settings;
    assert_eq!(after, s, "{}: refused changes changed nothing", h.case);
    // Clearing aging and the weight keeps the order.
    set(
        &h,
        QueueUpdateParams {
            queue: "tuned".into(),
            weight: Some(None),
            aging: Some(None),
            ..Default::default()
        },
    )
    .await;
    let s = h.backend.queue_get("tuned".into()).await.unwrap().settings;
    assert_eq!(
        (s.weight, s.order, s.aging),
        (None, ClaimOrder::Fifo, None),
        "{}: cleared",
        h.case
    );
}

async fn outcome(h: &Harness, queue: &str, limit: usize) -> ClaimOutcome {
    h.backend
        .job_claim_outcome(ClaimParams {
            worker_id: "w-outcome".into(),
            queues: vec![QueueWeight::new(queue, 1)],
            limit,
            lease: Duration::from_secs(30),
            more_urgent_than: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: claim: {e}", h.case))
}

/// A claim on a throttled queue says when its next job is admitted (a throttled queue is
/// not "empty"); an empty, drained or only capped queue says nothing.
pub async fn a_throttled_claim_says_when_the_next_admission_is(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_many("throttled", 3).await;
    set(
        &h,
        QueueUpdateParams {
            queue: "throttled".into(),
            rate: Some(Some("2/s".parse().unwrap())),
            ..Default::default()
        },
    )
    .await;
    let t = h.now();
    let o = outcome(&h, "throttled", 5).await;
    assert_eq!(
        (o.jobs.len(), o.next_admission),
        (2, Some(t + 500)),
        "{}: the burst, then one token every 500 ms",
        h.case
    );
    h.advance(Duration::from_millis(200));
    let o = outcome(&h, "throttled", 5).await;
    assert_eq!(
        (o.jobs.len(), o.next_admission),
        (0, Some(t + 500)),
        "{}: still throttled",
        h.case
    );
    h.advance(Duration::from_millis(300));
    let o = outcome(&h, "throttled", 5).await;
    assert_eq!(
        (o.jobs.len(), o.next_admission),
        (1, None),
        "{}: the last job; nothing left to admit",
        h.case
    );
    // Empty queue with a rate limit: nothing to say.
    let o = outcome(&h, "throttled", 5).await;
    assert_eq!((o.jobs.len(), o.next_admission), (0, None), "{}", h.case);
    // Only capped: no time either (it frees when a job ends).
    h.enqueue_many("capped-only", 2).await;
    set(
        &h,
        QueueUpdateParams {
            queue: "capped-only".into(),
            concurrency: Some(Some(1)),
            ..Default::default()
        },
    )
    .await;
    let o = outcome(&h, "capped-only", 5).await;
    assert_eq!((o.jobs.len(), o.next_admission), (1, None), "{}", h.case);
}
