//! Per-queue retention and default retry: stored with the queue's settings, applied by the
//! pruner over the store-wide retention, and by the pipeline's terms under the job's and the
//! handler's own policy.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::backend::{FailAction, QueueUpdateParams};
use crate::maintenance::{Pruner, PrunerConfig};
use crate::model::{JobId, JobState, Keep, RetryPolicy};
use crate::pipeline::Pipeline;
use crate::workflow::EnvSource;

const HOUR: Duration = Duration::from_secs(3600);

fn lacks_settings(h: &Harness) -> bool {
    h.lacks("queue_limits", h.caps().queue_limits)
}

fn keep(state: JobState, k: Option<Keep>) -> QueueUpdateParams {
    QueueUpdateParams {
        retention: BTreeMap::from([(state, k)]),
        ..Default::default()
    }
}

async fn update(h: &Harness, queue: &str, mut p: QueueUpdateParams) {
    p.queue = queue.into();
    h.backend
        .queue_update(p)
        .await
        .unwrap_or_else(|e| panic!("{}: queue_update {queue}: {e}", h.case));
}

async fn settings(h: &Harness, queue: &str) -> crate::model::QueueSettings {
    h.backend
        .queue_get(queue.into())
        .await
        .unwrap_or_else(|e| panic!("{}: queue_get {queue}: {e}", h.case))
        .settings
}

async fn succeeded_in(h: &Harness, queue: &str) -> JobId {
    let c = h.enqueue_and_claim(job("done").queue(queue)).await;
    h.complete(&c.token).await;
    c.job.id
}

/// Retention per state and the default retry are stored and read back, a change to one
/// state keeps the others and the other settings, clearing works, and bad values (a live
/// state, a bad policy) are refused and change nothing.
pub async fn queue_retention_and_retry_are_stored(h: Harness) {
    if lacks_settings(&h) {
        return;
    }
    let fixed: RetryPolicy = "fixed:5s".parse().unwrap();
    update(
        &h,
        "r",
        QueueUpdateParams {
            concurrency: Some(Some(3)),
            retention: BTreeMap::from([
                (JobState::Succeeded, Some(Keep::For(HOUR))),
                (JobState::Dead, Some(Keep::Forever)),
            ]),
            retry: Some(Some(fixed.clone())),
            ..Default::default()
        },
    )
    .await;
    let s = settings(&h, "r").await;
    assert_eq!(
        s.retention,
        BTreeMap::from([
            (JobState::Succeeded, Keep::For(HOUR)),
            (JobState::Dead, Keep::Forever),
        ]),
        "{}: retention as stored",
        h.case
    );
    assert_eq!(s.retry, Some(fixed.clone()), "{}: retry as stored", h.case);

    update(
        &h,
        "r",
        keep(JobState::Cancelled, Some(Keep::For(2 * HOUR))),
    )
    .await;
    update(&h, "r", keep(JobState::Succeeded, None)).await;
    let s = settings(&h, "r").await;
    assert_eq!(
        s.retention,
        BTreeMap::from([
            (JobState::Dead, Keep::Forever),
            (JobState::Cancelled, Keep::For(2 * HOUR)),
        ]),
        "{}: one state set, one cleared, the other kept",
        h.case
    );
    assert_eq!(
        (s.retry.as_ref(), s.concurrency),
        (Some(&fixed), Some(3)),
        "{}: the other settings are kept",
        h.case
    );

    for (what, bad) in [
        (
            "a live state",
            keep(JobState::Queued, Some(Keep::For(HOUR))),
        ),
        (
            "a bad policy",
            QueueUpdateParams {
                retry: Some(Some(RetryPolicy::Custom { delays: vec![] })),
                ..keep(JobState::Succeeded, Some(Keep::For(HOUR)))
            },
        ),
    ] {
        let mut p = bad;
        p.queue = "r".into();
        let r = h.backend.queue_update(p).await;
        assert!(
            matches!(&r, Err(e) if is_input_error(e)),
            "{}: {what} is refused: {r:?}",
            h.case
        );
        assert_eq!(
            settings(&h, "r").await,
            s,
            "{}: {what} changes nothing",
            h.case
        );
    }

    update(
        &h,
        "r",
        QueueUpdateParams {
            retry: Some(None),
            retention: BTreeMap::from([(JobState::Dead, None), (JobState::Cancelled, None)]),
            ..Default::default()
        },
    )
    .await;
    let s = settings(&h, "r").await;
    assert!(
        s.retention.is_empty() && s.retry.is_none(),
        "{}: cleared: {s:?}",
        h.case
    );
}

/// The pruner deletes a queue's finished jobs after the queue's own retention for their
/// state (shorter or longer than the store-wide one, or forever), and the other queues'
/// after the store-wide one; states the queue does not set follow the store-wide one.
pub async fn queue_retention_overrides_the_store_wide_one(h: Harness) {
    if lacks_settings(&h) {
        return;
    }
    update(
        &h,
        "short",
        keep(JobState::Succeeded, Some(Keep::For(HOUR))),
    )
    .await;
    update(
        &h,
        "long",
        keep(JobState::Succeeded, Some(Keep::For(48 * HOUR))),
    )
    .await;
    update(&h, "kept", keep(JobState::Succeeded, Some(Keep::Forever))).await;
    let plain = succeeded_in(&h, "default").await;
    let short = succeeded_in(&h, "short").await;
    let long = succeeded_in(&h, "long").await;
    let kept = succeeded_in(&h, "kept").await;
    let short_dead = h.enqueue(job("dead").queue("short")).await.id;
    h.claim_and_fail("short", short_dead, FailAction::Dead)
        .await;
    let live = h.enqueue(job("live").queue("short")).await.id;
    let clock: crate::SharedClock = h.clock.clone();
    let pruner = Pruner::new(
        h.backend.clone(),
        clock,
        PrunerConfig {
            retention: BTreeMap::from([
                (JobState::Succeeded, 24 * HOUR),
                (JobState::Dead, 24 * HOUR),
            ]),
            ..Default::default()
        },
    );

    h.advance(2 * HOUR);
    let dry = pruner.dry_run().await.unwrap();
    let r = pruner.run_once().await.unwrap();
    assert_eq!(dry, r, "{}: the dry run counts what the pass does", h.case);
    assert_eq!(r.jobs_deleted, 1, "{}: after 2h: {r:?}", h.case);
    h.assert_absent(&[short], "the queue's own 1h passed").await;
    h.assert_state(plain, JobState::Succeeded, "store-wide 24h")
        .await;
    h.assert_state(
        short_dead,
        JobState::Dead,
        "the queue sets no dead retention",
    )
    .await;
    h.assert_state(live, JobState::Queued, "live job").await;

    h.advance(23 * HOUR);
    let r = pruner.run_once().await.unwrap();
    assert_eq!(
        r.deleted_by_state,
        BTreeMap::from([(JobState::Succeeded, 1), (JobState::Dead, 1)]),
        "{}: after 25h: {r:?}",
        h.case
    );
    h.assert_absent(&[plain, short_dead], "store-wide 24h passed")
        .await;
    h.assert_state(long, JobState::Succeeded, "the queue's own 48h")
        .await;

    h.advance(24 * HOUR);
    pruner.run_once().await.unwrap();
    h.assert_absent(&[long], "the queue's own 48h passed").await;
    h.advance(100 * 24 * HOUR);
    pruner.run_once().await.unwrap();
    h.assert_state(kept, JobState::Succeeded, "kept forever by its queue")
        .await;
    h.assert_state(live, JobState::Queued, "live job").await;
}

/// The retry policy of an attempt: the job's own, then the handler's, then the queue's
/// default, then the worker's; a queue without one takes the worker's.
pub async fn queue_default_retry_comes_after_the_job_and_handler(h: Harness) {
    if lacks_settings(&h) {
        return;
    }
    let queue_p: RetryPolicy = "fixed:7s".parse().unwrap();
    let job_p: RetryPolicy = "fixed:1s".parse().unwrap();
    let handler_p: RetryPolicy = "fixed:2s".parse().unwrap();
    update(
        &h,
        "q",
        QueueUpdateParams {
            retry: Some(Some(queue_p.clone())),
            ..Default::default()
        },
    )
    .await;
    let plain = h.enqueue_and_claim(job("a").queue("q")).await.job;
    let own = h
        .enqueue_and_claim(job("b").queue("q").retry(job_p.clone()))
        .await
        .job;
    let elsewhere = h.enqueue_and_claim(job("c").queue("other")).await.job;
    let p = Pipeline::new(
        h.backend.clone(),
        EnvSource::default(),
        RetryPolicy::None,
        None,
    );
    let cases = [
        (&plain, None, queue_p.clone(), "the queue's default"),
        (
            &plain,
            Some(handler_p.clone()),
            handler_p.clone(),
            "the handler's first",
        ),
        (
            &own,
            Some(handler_p.clone()),
            job_p.clone(),
            "the job's own first",
        ),
        (&elsewhere, None, RetryPolicy::None, "the worker's default"),
    ];
    for (j, handler, want, why) in cases {
        assert_eq!(p.terms(j, handler).await.policy, want, "{}: {why}", h.case);
    }
}
