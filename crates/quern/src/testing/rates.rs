//! Per-kind and per-group rate limits (`QueueSettings::kinds`, `::group_rate`) and the holds
//! of a handler's `RateLimited` outcome (`FailAction::RateLimited`), all decided in the
//! atomic claim before the lease, with `work_wait` asking the same admission.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::NewJob;
use crate::backend::{
    ClaimOutcome, ClaimParams, ClaimedJob, FailAction, QueueUpdateParams, QueueWeight, WaitParams,
};
use crate::model::{KindLimits, QueueSettings, RateLimit};

fn lacks_limits(h: &Harness) -> bool {
    h.lacks("queue_limits", h.caps().queue_limits)
}

fn r(s: &str) -> RateLimit {
    s.parse().unwrap()
}

fn kinds(rules: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<KindLimits>> {
    rules
        .iter()
        .map(|(p, rate)| (p.to_string(), rate.map(|t| KindLimits { rate: r(t) })))
        .collect()
}

async fn set(h: &Harness, p: QueueUpdateParams) -> QueueSettings {
    h.backend
        .queue_update(p)
        .await
        .unwrap_or_else(|e| panic!("{}: queue_update: {e}", h.case))
}

async fn outcome(h: &Harness, queue: &str, limit: usize) -> ClaimOutcome {
    h.backend
        .job_claim_outcome(ClaimParams {
            worker_id: "w-rates".into(),
            queues: vec![QueueWeight::new(queue, 1)],
            limit,
            lease: Duration::from_secs(30),
            more_urgent_than: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: claim: {e}", h.case))
}

fn kind_job(queue: &str, kind: &str, n: usize) -> NewJob {
    NewJob::json(kind, serde_json::json!({ "n": n }))
        .unwrap()
        .queue(queue)
}

async fn enqueue_kind(h: &Harness, queue: &str, kind: &str, n: usize) {
    h.enqueue_all((0..n).map(|i| kind_job(queue, kind, i)).collect())
        .await;
}

fn count_kinds(c: &[ClaimedJob]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for j in c {
        *m.entry(j.job.kind.clone()).or_default() += 1;
    }
    m
}

fn count_groups(c: &[ClaimedJob]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for j in c {
        *m.entry(j.job.group.clone().unwrap_or_default())
            .or_default() += 1;
    }
    m
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Kind patterns and the group rate are stored, read back, patched one pattern at a time
/// and removed; a bad pattern or rate is refused, names its field and changes nothing.
pub async fn kind_and_group_rates_are_stored_and_validated(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let s = set(
        &h,
        QueueUpdateParams {
            queue: "media".into(),
            kinds: kinds(&[("generate.*", Some("10/m")), ("thumbnail.*", Some("100/m"))]),
            group_rate: Some(Some(r("5/s"))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(s.kinds.len(), 2, "{}", h.case);
    assert_eq!(s.kinds["generate.*"].rate, r("10/m"), "{}", h.case);
    assert_eq!(s.group_rate, Some(r("5/s")), "{}", h.case);
    let got = h.backend.queue_get("media".into()).await.unwrap().settings;
    assert_eq!(got, s, "{}: read back", h.case);
    // One pattern changed, one removed, the group rate kept.
    let s = set(
        &h,
        QueueUpdateParams {
            queue: "media".into(),
            kinds: kinds(&[("generate.*", None), ("thumbnail.*", Some("50/m"))]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (s.kinds.len(), s.kinds["thumbnail.*"].rate, s.group_rate),
        (1, r("50/m"), Some(r("5/s"))),
        "{}",
        h.case
    );
    let before = h.backend.queue_get("media".into()).await.unwrap().settings;
    let mut zero = r("10/m");
    zero.burst = 0;
    for (bad, field) in [
        (
            QueueUpdateParams {
                queue: "media".into(),
                kinds: [("gen.*".to_string(), Some(KindLimits { rate: zero }))].into(),
                ..Default::default()
            },
            "kinds",
        ),
        (
            QueueUpdateParams {
                queue: "media".into(),
                kinds: kinds(&[("", Some("1/s"))]),
                ..Default::default()
            },
            "kinds",
        ),
        (
            QueueUpdateParams {
                queue: "media".into(),
                group_rate: Some(Some(zero)),
                ..Default::default()
            },
            "group_rate",
        ),
    ] {
        let e = h.backend.queue_update(bad).await.unwrap_err();
        assert!(
            matches!(e, crate::Error::InvalidArgument(_)) && e.to_string().contains(field),
            "{}: {e}",
            h.case
        );
    }
    let after = h.backend.queue_get("media".into()).await.unwrap().settings;
    assert_eq!(after, before, "{}: refused changes change nothing", h.case);
}

/// The example, `generate.*: 10/m, thumbnail.*: 100/m`: each pattern has its own
/// bucket, a kind no pattern matches is not limited, and a throttled pattern's jobs,
/// although first in the claim order, do not hold back the others.
pub async fn each_kind_pattern_has_its_own_bucket(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    set(
        &h,
        QueueUpdateParams {
            queue: "media".into(),
            kinds: kinds(&[("generate.*", Some("10/m")), ("thumbnail.*", Some("100/m"))]),
            ..Default::default()
        },
    )
    .await;
    // Enqueued first, so they are ahead in the claim order.
    enqueue_kind(&h, "media", "generate.image", 20).await;
    enqueue_kind(&h, "media", "generate.video", 20).await;
    enqueue_kind(&h, "media", "thumbnail.small", 150).await;
    enqueue_kind(&h, "media", "analyze", 5).await;
    let t = h.now();
    let o = outcome(&h, "media", 200).await;
    let k = count_kinds(&o.jobs);
    let of = |k: &BTreeMap<String, usize>, kind: &str| k.get(kind).copied().unwrap_or(0);
    assert_eq!(
        of(&k, "generate.image") + of(&k, "generate.video"),
        10,
        "{}: generate.* shares one bucket of 10: {k:?}",
        h.case
    );
    assert_eq!(
        (of(&k, "thumbnail.small"), of(&k, "analyze")),
        (100, 5),
        "{}: thumbnails their own 100, an unlimited kind all: {k:?}",
        h.case
    );
    assert_eq!(
        o.next_admission,
        Some(t + 600),
        "{}: the next thumbnail token (one per 600 ms)",
        h.case
    );
    let o = outcome(&h, "media", 200).await;
    assert_eq!(
        (o.jobs.len(), o.next_admission),
        (0, Some(t + 600)),
        "{}: both throttled",
        h.case
    );
    h.advance(Duration::from_secs(6));
    let k = count_kinds(&outcome(&h, "media", 200).await.jobs);
    assert_eq!(
        (
            of(&k, "generate.image") + of(&k, "generate.video"),
            of(&k, "thumbnail.small")
        ),
        (1, 10),
        "{}: 6 s later one generate token and ten thumbnail tokens: {k:?}",
        h.case
    );
    // Over the next minute, at most rate · T more of each.
    let mut gen_total = 0;
    for _ in 0..60 {
        h.advance(Duration::from_secs(1));
        let k = count_kinds(&outcome(&h, "media", 200).await.jobs);
        gen_total += of(&k, "generate.image") + of(&k, "generate.video");
    }
    assert_eq!(gen_total, 10, "{}: ten a minute", h.case);
}

/// A kind is matched by its exact characters whatever they are: quotes and backslashes
/// (which a stored form may escape) and non-ASCII letters, in a plain queue and in a
/// grouped one (whose claim reads each job's kind on its own path).
pub async fn kinds_with_quotes_backslashes_and_unicode_are_limited(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let rules = kinds(&[
        ("say \"*", Some("1/m")),
        ("back\\slash", Some("1/m")),
        ("ünï.*", Some("1/m")),
    ]);
    for (queue, group) in [("odd", None), ("odd-grouped", Some("g"))] {
        set(
            &h,
            QueueUpdateParams {
                queue: queue.into(),
                kinds: rules.clone(),
                group_concurrency: group.map(|_| Some(100)),
                ..Default::default()
            },
        )
        .await;
        let mut jobs = Vec::new();
        for (n, kind) in ["say \"hi\"", "back\\slash", "ünï.x", "plain"]
            .iter()
            .enumerate()
        {
            for i in 0..3 {
                let mut j = kind_job(queue, kind, i);
                // One group per kind: a group whose head is throttled waits as a whole.
                if let Some(g) = group {
                    j = j.group(format!("{g}-{n}"));
                }
                jobs.push(j);
            }
        }
        h.enqueue_all(jobs).await;
        let k = count_kinds(&outcome(&h, queue, 100).await.jobs);
        assert_eq!(
            k,
            counts(&[
                ("say \"hi\"", 1),
                ("back\\slash", 1),
                ("ünï.x", 1),
                ("plain", 3)
            ]),
            "{}: {queue}: one token per limited kind, the unmatched kind unlimited",
            h.case
        );
    }
}

/// `work_wait` on a queue whose only ready jobs are of a throttled kind sleeps (it does not
/// spin), and returns at once when a job of another kind is ready.
pub async fn work_wait_sees_kind_throttling(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    set(
        &h,
        QueueUpdateParams {
            queue: "kw".into(),
            kinds: kinds(&[("slow.*", Some("1/h"))]),
            ..Default::default()
        },
    )
    .await;
    enqueue_kind(&h, "kw", "slow.x", 3).await;
    assert_eq!(h.claim("kw", 3).await.len(), 1, "{}: the one token", h.case);
    let wait = |timeout: Duration| {
        h.backend.work_wait(WaitParams {
            queues: vec!["kw".into()],
            timeout,
            more_urgent_than: None,
        })
    };
    // The manual clock stands still: the next token is an hour away, so each wait sleeps
    // out its timeout (a spurious wake-up is allowed, not a spin).
    let t0 = std::time::Instant::now();
    let mut wakes = 0;
    while t0.elapsed() < Duration::from_millis(600) {
        wait(Duration::from_millis(200)).await.unwrap();
        wakes += 1;
    }
    assert!(
        wakes <= 6,
        "{}: {wakes} wake-ups in 0.6 s: it spins",
        h.case
    );
    enqueue_kind(&h, "kw", "fast", 1).await;
    let t1 = std::time::Instant::now();
    wait(Duration::from_secs(10)).await.unwrap();
    assert!(
        t1.elapsed() < Duration::from_secs(5),
        "{}: a job of another kind is ready at once",
        h.case
    );
    let k = count_kinds(&h.claim("kw", 5).await);
    assert_eq!(k, counts(&[("fast", 1)]), "{}", h.case);
}

/// `group_rate`: every group its own bucket, so one busy group does not use up another's.
pub async fn each_group_has_its_own_rate(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let mut jobs = Vec::new();
    for g in ["a", "b"] {
        jobs.extend((0..10).map(|k| job_n("gr", k).group(g)));
    }
    h.enqueue_all(jobs).await;
    set(
        &h,
        QueueUpdateParams {
            queue: "gr".into(),
            group_rate: Some(Some(r("2/s"))),
            ..Default::default()
        },
    )
    .await;
    let t = h.now();
    let o = outcome(&h, "gr", 20).await;
    assert_eq!(
        count_groups(&o.jobs),
        counts(&[("a", 2), ("b", 2)]),
        "{}: each group's burst",
        h.case
    );
    assert_eq!(o.next_admission, Some(t + 500), "{}", h.case);
    assert!(outcome(&h, "gr", 20).await.jobs.is_empty(), "{}", h.case);
    h.advance(Duration::from_millis(500));
    assert_eq!(
        count_groups(&outcome(&h, "gr", 20).await.jobs),
        counts(&[("a", 1), ("b", 1)]),
        "{}: one token each",
        h.case
    );
}

/// `RateLimited` snoozes the job without counting the attempt and holds its group until
/// the time given: the queue's other groups go on, and the group comes back after it.
pub async fn rate_limited_holds_the_group(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    let mut jobs = Vec::new();
    for g in ["a", "b"] {
        jobs.extend((0..3).map(|k| job_n("up", k).group(g)));
    }
    h.enqueue_all(jobs).await;
    let first = h.claim("up", 1).await.remove(0);
    let held = first.job.group.clone().unwrap();
    let other = if held == "a" { "b" } else { "a" };
    let until = h.now() + 10_000;
    h.fail(&first.token, FailAction::RateLimited { run_at: until })
        .await;
    let j = h.get(first.job.id).await;
    assert_eq!(
        (j.state, j.attempt, j.run_at, j.errors.len()),
        (crate::JobState::Scheduled, 0, until, 0),
        "{}: snoozed, the attempt not counted",
        h.case
    );
    let o = outcome(&h, "up", 10).await;
    assert_eq!(
        count_groups(&o.jobs),
        counts(&[(other, 3)]),
        "{}: the held group waits, the other runs",
        h.case
    );
    h.advance(Duration::from_millis(9_999));
    assert!(
        outcome(&h, "up", 10).await.jobs.is_empty(),
        "{}: still held",
        h.case
    );
    h.advance(Duration::from_millis(1));
    let back = outcome(&h, "up", 10).await;
    assert_eq!(
        count_groups(&back.jobs),
        counts(&[(held.as_str(), 3)]),
        "{}: the hold ended; its jobs (the snoozed one too) run",
        h.case
    );
    assert!(
        back.jobs.iter().any(|c| c.job.id == first.job.id),
        "{}",
        h.case
    );
}

/// Without a group, `RateLimited` holds the job's kind in its queue (other kinds go on) and
/// the claim says when the hold ends.
pub async fn rate_limited_without_group_holds_the_kind(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    enqueue_kind(&h, "api", "call.openai", 3).await;
    enqueue_kind(&h, "api", "call.local", 3).await;
    let first = h.claim("api", 1).await.remove(0);
    assert_eq!(first.job.kind, "call.openai", "{}", h.case);
    let until = h.now() + 5_000;
    h.fail(&first.token, FailAction::RateLimited { run_at: until })
        .await;
    let o = outcome(&h, "api", 10).await;
    assert_eq!(
        count_kinds(&o.jobs),
        counts(&[("call.local", 3)]),
        "{}: the held kind waits",
        h.case
    );
    assert_eq!(
        o.next_admission,
        Some(until),
        "{}: the claim says when the hold ends",
        h.case
    );
    h.advance(Duration::from_secs(5));
    assert_eq!(
        count_kinds(&outcome(&h, "api", 10).await.jobs),
        counts(&[("call.openai", 3)]),
        "{}",
        h.case
    );
    let j = h.get(first.job.id).await;
    assert_eq!(j.attempt, 1, "{}: the snooze did not count", h.case);
}
