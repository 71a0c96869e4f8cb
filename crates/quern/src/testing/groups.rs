//! Job groups: a group key stored with the job, round-robin between the groups of a queue
//! (a big group does not hold back a small one), and the per-group concurrency cap, global
//! across workers and decided in the atomic claim.

use std::collections::HashMap;

use super::limits::claim_as;
use super::*;
use crate::Error;
use crate::NewJob;
use crate::backend::{BatchMode, ClaimedJob, FailAction, QueueUpdateParams};

fn lacks_limits(h: &Harness) -> bool {
    h.lacks("queue_limits", h.caps().queue_limits)
}

fn grouped(queue: &str, group: &str, n: usize) -> Vec<NewJob> {
    (0..n).map(|k| job_n(queue, k).group(group)).collect()
}

fn group_cap(queue: &str, n: Option<u32>) -> QueueUpdateParams {
    QueueUpdateParams {
        queue: queue.into(),
        group_concurrency: Some(n),
        ..Default::default()
    }
}

/// The group of each claimed job, "" for none.
fn groups_of(c: &[ClaimedJob]) -> Vec<String> {
    c.iter()
        .map(|c| c.job.group.clone().unwrap_or_default())
        .collect()
}

fn count(c: &[ClaimedJob]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for g in groups_of(c) {
        *m.entry(g).or_insert(0) += 1;
    }
    m
}

/// The group is stored and read back (claimed jobs carry it too); a bad group is refused
/// naming it and stores nothing, in a batch as on its own.
pub async fn group_is_stored_and_validated(h: Harness) {
    let id = h.enqueue(job_n("g", 0).group("tenant-7@acme.io")).await.id;
    assert_eq!(
        h.get(id).await.group.as_deref(),
        Some("tenant-7@acme.io"),
        "{}",
        h.case
    );
    let plain = h.enqueue(job_n("g", 1)).await.id;
    assert_eq!(h.get(plain).await.group, None, "{}: no group", h.case);
    let c = h.claim("g", 2).await;
    assert_eq!(
        {
            let mut g = groups_of(&c);
            g.sort();
            g
        },
        vec!["".to_string(), "tenant-7@acme.io".to_string()],
        "{}: claimed jobs carry their group",
        h.case
    );
    let long = "x".repeat(129);
    for bad in ["", "a b", "{x}", "tab\t", long.as_str()] {
        let j = job_n("g-bad", 0).group(bad);
        let jid = j.id;
        let res = h.try_enqueue(vec![j], BatchMode::Atomic).await;
        let refused = match res {
            Err(Error::InvalidJob { ref reason, .. }) => reason.contains("group"),
            Ok(ref r) => {
                matches!(&r[0], Err(Error::InvalidJob { reason, .. }) if reason.contains("group"))
            }
            _ => false,
        };
        assert!(refused, "{}: group {bad:?}: {res:?}", h.case);
        h.assert_absent(&[jid], "refused group").await;
    }
}

/// Three groups of 100, 3 and 3 jobs enqueued big-first, and 2 without a group: claims go
/// round-robin, so every claim of four takes one of each group that has jobs left, and the
/// small groups are done after a handful of claims, not after the 100.
pub async fn groups_are_served_round_robin(h: Harness) {
    h.enqueue_all(grouped("rr", "big", 100)).await;
    h.enqueue_all(grouped("rr", "small-a", 3)).await;
    h.enqueue_all(grouped("rr", "small-b", 3)).await;
    h.enqueue_all(vec![job_n("rr", 0), job_n("rr", 1)]).await;
    let first = h.claim("rr", 4).await;
    assert_eq!(
        count(&first).len(),
        4,
        "{}: one job of each group: {:?}",
        h.case,
        groups_of(&first)
    );
    let second = h.claim("rr", 4).await;
    assert_eq!(count(&second).len(), 4, "{}: again one each", h.case);
    // "" is done (2 jobs): three groups left.
    let third = h.claim("rr", 4).await;
    let c = count(&third);
    assert_eq!(
        (c.get("small-a"), c.get("small-b"), c.get("big")),
        (Some(&1), Some(&1), Some(&2)),
        "{}: the rest of the small groups, then big: {c:?}",
        h.case
    );
    // One at a time the rotation holds too: only big is left.
    for _ in 0..3 {
        let one = h.claim("rr", 1).await;
        assert_eq!(groups_of(&one), vec!["big"], "{}", h.case);
    }
    // A group that shows up later is served at once, not after big's 93 left.
    h.enqueue_all(grouped("rr", "late", 2)).await;
    let next = h.claim("rr", 2).await;
    assert_eq!(
        count(&next).get("late"),
        Some(&1),
        "{}: the new group is served in the next round: {:?}",
        h.case,
        groups_of(&next)
    );
}

/// A queue that had jobs without a group when its first grouped job came keeps serving
/// them (as the "" group); a job that comes back (retry, give-back, reprioritize) is found
/// again, and a cancelled one is never claimed.
pub async fn every_path_back_to_ready_keeps_its_group(h: Harness) {
    let old = h.enqueue_many("mixed", 2).await;
    h.enqueue_all(grouped("mixed", "a", 3)).await;
    let cancelled = h.enqueue(job_n("mixed", 9).group("b")).await.id;
    h.cancel(cancelled).await.unwrap();
    let c = h.claim("mixed", 10).await;
    assert_eq!(
        c.len(),
        5,
        "{}: 2 old + 3 grouped: {:?}",
        h.case,
        groups_of(&c)
    );
    assert!(
        old.iter().all(|id| c.iter().any(|j| j.job.id == *id)),
        "{}: the jobs from before the first group are claimed",
        h.case
    );
    assert!(c.iter().all(|j| j.job.id != cancelled), "{}", h.case);
    // Give one back, fail one with a retry now, and both are claimable again.
    h.try_release(&c[0].token).await.unwrap();
    h.fail(
        &c[2].token,
        FailAction::Retry {
            retry_at: Some(h.now()),
        },
    )
    .await;
    let again = h.claim("mixed", 10).await;
    let mut ids: Vec<_> = again.iter().map(|j| j.job.id).collect();
    ids.sort();
    let mut want = vec![c[0].job.id, c[2].job.id];
    want.sort();
    assert_eq!(ids, want, "{}: back in their groups", h.case);
    // Reprioritized while queued: still claimed once.
    let r = h.enqueue(job_n("mixed", 10).group("a")).await.id;
    h.reprioritize(r, crate::Priority::CRITICAL).await.unwrap();
    let got = h.claim("mixed", 10).await;
    assert_eq!(
        got.iter().map(|j| j.job.id).collect::<Vec<_>>(),
        vec![r],
        "{}",
        h.case
    );
    h.claim_none("mixed", "everything was claimed").await;
}

/// `group_concurrency = 2`: two workers together run at most two jobs of each group, while
/// other groups still run; an ending job frees its group's place; a cap set while jobs run
/// counts them.
pub async fn the_group_cap_holds_across_workers(h: Harness) {
    if lacks_limits(&h) {
        return;
    }
    h.enqueue_all(grouped("gc", "a", 5)).await;
    h.enqueue_all(grouped("gc", "b", 5)).await;
    let s = h
        .backend
        .queue_update(group_cap("gc", Some(2)))
        .await
        .unwrap();
    assert_eq!(s.group_concurrency, Some(2), "{}", h.case);
    assert_eq!(
        h.backend
            .queue_get("gc".into())
            .await
            .unwrap()
            .settings
            .group_concurrency,
        Some(2),
        "{}: read back",
        h.case
    );
    let a = claim_as(&h, "w-a", "gc", 10).await;
    let c = count(&a);
    assert_eq!(
        (c.get("a"), c.get("b")),
        (Some(&2), Some(&2)),
        "{}: two per group: {c:?}",
        h.case
    );
    assert!(
        claim_as(&h, "w-b", "gc", 10).await.is_empty(),
        "{}: the cap is global",
        h.case
    );
    let done = a
        .iter()
        .find(|j| j.job.group.as_deref() == Some("a"))
        .unwrap();
    h.complete(&done.token).await;
    let b = claim_as(&h, "w-b", "gc", 10).await;
    assert_eq!(groups_of(&b), vec!["a"], "{}: a's place freed", h.case);
    // A third group is not held back by the two at their cap.
    h.enqueue_all(grouped("gc", "c", 3)).await;
    let c3 = claim_as(&h, "w-b", "gc", 10).await;
    assert_eq!(groups_of(&c3), vec!["c", "c"], "{}", h.case);
    // Cleared: the rest runs.
    h.backend.queue_update(group_cap("gc", None)).await.unwrap();
    assert_eq!(claim_as(&h, "w-a", "gc", 20).await.len(), 6, "{}", h.case);

    // Set while jobs of the group run: they count.
    h.enqueue_all(grouped("late-cap", "a", 4)).await;
    let running = h.claim("late-cap", 3).await;
    assert_eq!(running.len(), 3, "{}", h.case);
    h.backend
        .queue_update(group_cap("late-cap", Some(2)))
        .await
        .unwrap();
    h.claim_none("late-cap", "three run, cap two").await;
    h.complete(&running[0].token).await;
    h.claim_none("late-cap", "two run, cap two").await;
    h.complete(&running[1].token).await;
    assert_eq!(h.claim("late-cap", 5).await.len(), 1, "{}", h.case);

    let zero = h.backend.queue_update(group_cap("gc", Some(0))).await;
    expect_err!(h, zero, Error::InvalidArgument(ref m) if m.contains("group_concurrency"), "cap 0");
}
