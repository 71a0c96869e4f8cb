//! Queue settings and the limits they set in the claim: a global concurrency cap (running
//! jobs across every worker) and a GCRA rate limit, both applied in the atomic claim, with
//! `work_wait` asking the same admission.

use std::time::Duration;

use super::*;
use crate::Error;
use crate::backend::{ClaimParams, ClaimedJob, QueueUpdateParams, QueueWeight, WaitParams};
use crate::model::{QueueSettings, RateLimit};

fn lacks_limits(h: &Harness) -> bool {
    h.lacks("queue_limits", h.caps().queue_limits)
}

async fn set(h: &Harness, p: QueueUpdateParams) -> QueueSettings {
    h.backend
        .queue_update(p)
        .await
        .unwrap_or_else(|e| panic!("{}: queue_update: {e}", h.case))
}

fn cap(queue: &str, n: u32) -> QueueUpdateParams {
    QueueUpdateParams {
        queue: queue.into(),
        concurrency: Some(Some(n)),
        ..Default::default()
    }
}

fn rate(queue: &str, r: &str) -> QueueUpdateParams {
    QueueUpdateParams {
        queue: queue.into(),
        rate: Some(Some(r.parse().unwrap())),
        ..Default::default()
    }
}

/// Claims from `queue` as a second worker (the cap is global, not per worker).
pub(super) async fn claim_as(
    h: &Harness,
    worker: &str,
    queue: &str,
    limit: usize,
) -> Vec<ClaimedJob> {
    h.backend
        .job_claim(ClaimParams {
            worker_id: worker.into(),
            queues: vec![QueueWeight::new(queue, 1)],
            limit,
            lease: Duration::from_secs(30),
            more_urgent_than: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: claim: {e}", h.case))
}

/// Settings read back as stored; a change of one field keeps the others; clearing works;
/// setting a never-used queue creates it; an unknown queue is `QueueNotFound`.
pub async fn settings_are_stored_and_patched(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    expect_err!(
        h,
        h.backend.queue_get("fresh".into()).await,
        Error::QueueNotFound(_),
        "never used"
    );
    let s = set(&h, cap("fresh", 3)).await;
    assert_eq!(s.concurrency, Some(3), "{}", h.case);
    let s = set(&h, rate("fresh", "10/s")).await;
    assert_eq!(
        s,
        QueueSettings {
            concurrency: Some(3),
            rate: Some(RateLimit::new(10, Duration::from_secs(1))),
            ..Default::default()
        },
        "{}: the cap is kept",
        h.case
    );
    let got = h.backend.queue_get("fresh".into()).await.unwrap();
    assert_eq!(got.settings, s, "{}: read back", h.case);
    assert_eq!(
        (got.running, got.tokens),
        (0, Some(10.0)),
        "{}: usage",
        h.case
    );
    let names: Vec<String> = h
        .backend
        .queue_list()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(
        names.contains(&"fresh".to_string()),
        "{}: the queue exists: {names:?}",
        h.case
    );
    let cleared = set(
        &h,
        QueueUpdateParams {
            queue: "fresh".into(),
            concurrency: Some(None),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (cleared.concurrency, cleared.rate.is_some()),
        (None, true),
        "{}",
        h.case
    );
}

/// A bad value is refused naming the field and changes nothing.
pub async fn invalid_settings_change_nothing(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let before = set(&h, cap("q", 2)).await;
    let zero = h.backend.queue_update(cap("q", 0)).await;
    expect_err!(h, zero, Error::InvalidArgument(ref m) if m.contains("concurrency"), "cap 0");
    let mut bad = RateLimit::new(5, Duration::from_secs(1));
    bad.burst = 0;
    let res = h
        .backend
        .queue_update(QueueUpdateParams {
            queue: "q".into(),
            concurrency: Some(Some(9)),
            rate: Some(Some(bad)),
            ..Default::default()
        })
        .await;
    expect_err!(h, res, Error::InvalidArgument(ref m) if m.contains("rate"), "burst 0");
    let bad_name = h.backend.queue_update(cap("{q}", 1)).await;
    expect_err!(h, bad_name, Error::InvalidArgument(_), "bad queue name");
    assert_eq!(
        h.backend.queue_get("q".into()).await.unwrap().settings,
        before,
        "{}",
        h.case
    );
}

/// With a cap of 2, two workers together lease two jobs; each end of a running job (success,
/// failure, give-back) frees one place.
pub async fn the_concurrency_cap_holds_across_workers(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_many("capped", 6).await;
    set(&h, cap("capped", 2)).await;
    let a = claim_as(&h, "w-a", "capped", 5).await;
    assert_eq!(a.len(), 2, "{}: first worker gets the cap", h.case);
    assert!(
        claim_as(&h, "w-b", "capped", 5).await.is_empty(),
        "{}: second gets none",
        h.case
    );
    assert_eq!(
        h.backend.queue_get("capped".into()).await.unwrap().running,
        2,
        "{}",
        h.case
    );
    h.complete(&a[0].token).await;
    let b = claim_as(&h, "w-b", "capped", 5).await;
    assert_eq!(b.len(), 1, "{}: a success frees one", h.case);
    h.try_release(&a[1].token).await.unwrap();
    let c = claim_as(&h, "w-b", "capped", 5).await;
    assert_eq!(c.len(), 1, "{}: a give-back frees one", h.case);
    h.fail(&b[0].token, crate::backend::FailAction::Dead).await;
    assert_eq!(
        claim_as(&h, "w-a", "capped", 5).await.len(),
        1,
        "{}: a failure frees one",
        h.case
    );
    // Raising the cap admits more at once.
    set(&h, cap("capped", 4)).await;
    assert_eq!(
        claim_as(&h, "w-a", "capped", 5).await.len(),
        2,
        "{}: raised cap",
        h.case
    );
}

/// `2/s`: a full bucket admits 2, then one job every 500 ms, whatever the claim asks.
pub async fn the_rate_limit_admits_the_burst_then_one_per_interval(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_many("slow", 10).await;
    set(&h, rate("slow", "2/s")).await;
    assert_eq!(h.claim("slow", 10).await.len(), 2, "{}: the burst", h.case);
    assert_eq!(
        h.claim("slow", 10).await.len(),
        0,
        "{}: empty bucket",
        h.case
    );
    assert_eq!(
        h.backend.queue_get("slow".into()).await.unwrap().tokens,
        Some(0.0)
    );
    h.advance(Duration::from_millis(499));
    assert_eq!(h.claim("slow", 10).await.len(), 0, "{}: not yet", h.case);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.claim("slow", 10).await.len(), 1, "{}: one token", h.case);
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.claim("slow", 10).await.len(),
        2,
        "{}: refilled to the burst only",
        h.case
    );
}

/// A throttled queue's share of a multi-queue claim goes to the other queues.
pub async fn a_throttled_queue_does_not_hold_back_the_others(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_many("limited", 10).await;
    // Seven, not more: each of the eight jobs goes to a queue drawn by weight, and a queue
    // that answers less than its draw is out of the next round. With more than eight here,
    // the draw that gives all eight to `free` (1 in 256) would fill the claim before
    // `limited` is asked; with seven, `free` runs out first and `limited` always gets its
    // one token.
    h.enqueue_many("free", 7).await;
    set(&h, rate("limited", "1/m")).await;
    let got = h
        .claim_from(
            vec![QueueWeight::new("limited", 1), QueueWeight::new("free", 1)],
            8,
        )
        .await;
    let limited = got.iter().filter(|c| c.job.queue == "limited").count();
    assert_eq!(
        (limited, got.len()),
        (1, 8),
        "{}: one token, the rest from free",
        h.case
    );
}

/// `work_wait` on a queue whose ready jobs are throttled sleeps until the next token: it
/// neither returns at once (a worker would spin) nor sleeps its whole timeout.
pub async fn work_wait_sleeps_until_the_next_token(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_many("tokens", 3).await;
    set(&h, rate("tokens", "1/s")).await;
    assert_eq!(h.claim("tokens", 3).await.len(), 1, "{}", h.case);
    let wait = |timeout: Duration| {
        h.backend.work_wait(WaitParams {
            queues: vec!["tokens".into()],
            timeout,
            more_urgent_than: None,
        })
    };
    // The manual clock stands still, so each wait's sleep until the token (1 s away) is
    // real time. Over 1.5 s a worker looping on work_wait wakes a few times (a spurious
    // wake-up is allowed, such as one for the claim's own commit), not thousands.
    let t0 = std::time::Instant::now();
    let mut wakes = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        tokio::time::timeout(Duration::from_secs(10), wait(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|_| panic!("{}: slept past the next token", h.case))
            .unwrap();
        wakes += 1;
    }
    assert!(
        wakes <= 6,
        "{}: {wakes} wake-ups in 1.5 s: it spins",
        h.case
    );
    h.advance(Duration::from_secs(1));
    assert_eq!(h.claim("tokens", 3).await.len(), 1, "{}: the token", h.case);
}
