//! Outcomes per queue and minute (`stats_minutes`, the dashboard's charts): counted by the
//! store in the transitions themselves, in the store's (manual) clock's minute, per queue;
//! snoozes and cancels are not failures; a pruned or deleted job still counts.

use std::time::Duration;

use super::*;
use crate::backend::{FailAction, JobDeleteParams, MINUTE_MS, MinuteCounts, MinutesParams};

async fn minutes(h: &Harness, since: crate::Millis, queue: Option<&str>) -> Vec<MinuteCounts> {
    h.backend
        .stats_minutes(MinutesParams {
            since,
            queue: queue.map(str::to_string),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: stats_minutes: {e}", h.case))
}

fn row(at: crate::Millis, queue: &str, succeeded: u64, failed: u64, dead: u64) -> MinuteCounts {
    MinuteCounts {
        at,
        queue: queue.into(),
        succeeded,
        failed,
        dead,
    }
}

/// Two minutes of outcomes in two queues read back per minute and queue, in order: batch
/// completions, a retried and a dead failure, a snooze and a cancel (not counted), a lease
/// the rescuer took back (failed) and one after the last attempt (failed and dead).
pub async fn outcomes_are_counted_per_queue_and_minute(h: Harness) {
    if h.lacks("stats", h.caps().stats) {
        return;
    }
    // Start 10 s into a minute, so nothing below crosses into the next one by accident.
    let m0 = MinuteCounts::minute_of(h.now()) + MINUTE_MS;
    h.advance_to(m0 + 10_000);
    assert!(
        minutes(&h, 0, None).await.is_empty(),
        "{}: a fresh store has no rows",
        h.case
    );

    // Minute 0, queue qa: three completions in one call, one retried failure, one dead.
    let ids = h.enqueue_many("qa", 3).await;
    let claimed = h.claim("qa", 3).await;
    assert_eq!(claimed.len(), 3, "{}: claimed {ids:?}", h.case);
    h.backend
        .job_complete(crate::backend::CompleteParams {
            items: claimed
                .iter()
                .map(|c| crate::backend::Completion {
                    token: c.token.clone(),
                    result: None,
                    result_ttl: None,
                    started_at: None,
                })
                .collect(),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: complete: {e}", h.case));
    let r = h.enqueue(job("r").queue("qa")).await.id;
    let later = h.now() + 3_600_000;
    h.claim_and_fail(
        "qa",
        r,
        FailAction::Retry {
            retry_at: Some(later),
        },
    )
    .await;
    let d = h.enqueue(job("d").queue("qa")).await.id;
    h.claim_and_fail("qa", d, FailAction::Dead).await;
    // Not failures: a snooze and a cancel.
    let s = h.enqueue(job("s").queue("qa")).await.id;
    h.claim_and_fail("qa", s, FailAction::Snooze { run_at: later })
        .await;
    let c = h.enqueue(job("c").queue("qa")).await.id;
    h.claim_and_fail("qa", c, FailAction::Cancel).await;
    // Queue qb: one completion, and a claim whose lease will expire (two attempts allowed).
    let b = h.enqueue_and_claim(job("b").queue("qb")).await;
    h.complete(&b.token).await;
    let lost1 = h.enqueue(job("lost").queue("qb").max_attempts(2)).await.id;
    h.claim_id("qb", lost1).await;
    let lost2 = h.enqueue(job("lost").queue("qb").max_attempts(1)).await.id;
    h.claim_id("qb", lost2).await;

    // Minute 1 (and later): the leases expire, the rescuer takes them back.
    h.advance(Duration::from_secs(90));
    let m1 = MinuteCounts::minute_of(h.now());
    let rescued = h.rescue().await;
    assert_eq!(
        (rescued.requeued.clone(), rescued.dead.clone()),
        (vec![lost1], vec![lost2]),
        "{}: rescued",
        h.case
    );
    assert!(m1 > m0, "{}: the clock moved to a later minute", h.case);

    let want = vec![
        row(m0, "qa", 3, 2, 1),
        row(m0, "qb", 1, 0, 0),
        row(m1, "qb", 0, 2, 1),
    ];
    assert_eq!(minutes(&h, m0, None).await, want, "{}: all rows", h.case);
    assert_eq!(
        minutes(&h, m0 + 59_999, None).await,
        want,
        "{}: `since` rounds down to its minute",
        h.case
    );
    assert_eq!(
        minutes(&h, m1, None).await,
        want[2..],
        "{}: since minute 1",
        h.case
    );
    assert_eq!(
        minutes(&h, m0, Some("qb")).await,
        [want[1].clone(), want[2].clone()],
        "{}: queue qb",
        h.case
    );
    assert!(
        minutes(&h, m0, Some("nope")).await.is_empty(),
        "{}: unknown queue",
        h.case
    );
    assert!(
        minutes(&h, m1 + MINUTE_MS, None).await.is_empty(),
        "{}: nothing after minute 1",
        h.case
    );

    // Deleting finished jobs keeps what they counted.
    let deleted = h
        .backend
        .job_delete(JobDeleteParams {
            ids: claimed
                .iter()
                .map(|c| c.job.id)
                .chain([d, b.job.id])
                .collect(),
            dry_run: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: delete: {e}", h.case));
    assert_eq!(deleted.deleted, 5, "{}: deleted", h.case);
    assert_eq!(
        minutes(&h, m0, None).await,
        want,
        "{}: after the delete",
        h.case
    );
}

/// A stale token counts nothing: the outcome that was refused did not happen.
pub async fn refused_outcomes_count_nothing(h: Harness) {
    if h.lacks("stats", h.caps().stats) {
        return;
    }
    let c = h.enqueue_and_claim(job("x")).await;
    h.complete(&c.token).await;
    let stale = h.try_complete(crate::backend::Completion {
        token: c.token.clone(),
        result: None,
        result_ttl: None,
        started_at: None,
    });
    assert!(
        stale.await.is_err(),
        "{}: second completion refused",
        h.case
    );
    let again = h.try_fail(&c.token, FailAction::Dead).await;
    assert!(
        again.is_err(),
        "{}: failure after completion refused",
        h.case
    );
    let at = MinuteCounts::minute_of(h.now());
    assert_eq!(
        minutes(&h, 0, None).await,
        [row(at, "default", 1, 0, 0)],
        "{}: one success, no failure",
        h.case
    );
}
