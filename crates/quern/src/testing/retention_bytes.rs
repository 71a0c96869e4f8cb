//! Retention by bytes: `job_prune_bytes` deletes the oldest finished jobs (by `finished_at`,
//! across states and queues) while the finished jobs' bytes are over the budget, counting
//! payloads and results; live jobs never count and are never deleted; the pruner applies a
//! budget in batches. Payloads are 4,000 bytes, so a backend's few dozen bytes of fixed
//! fields per job (Redis stores them with the payload) cannot change which jobs go.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::backend::{Completion, FailAction, PruneBytesParams, PruneBytesReport};
use crate::maintenance::{Pruner, PrunerConfig};
use crate::model::{JobId, JobState};

const SIZE: usize = 4_000;
/// Fixed fields a backend may count with each payload, at most (Redis: kind, retry, tags…).
const SLACK: u64 = 250;

fn big(kind: &str, seed: u64) -> crate::NewJob {
    let mut j = job(kind);
    j.payload = raw_payload(SIZE, seed);
    j
}

async fn prune_bytes(h: &Harness, max_bytes: u64, limit: usize, dry_run: bool) -> PruneBytesReport {
    h.backend
        .job_prune_bytes(PruneBytesParams {
            max_bytes,
            limit,
            dry_run,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: job_prune_bytes: {e}", h.case))
}

/// The finished jobs' bytes, read with a budget nothing exceeds.
async fn finished_bytes(h: &Harness) -> u64 {
    prune_bytes(h, u64::MAX, 1, true).await.finished_bytes
}

fn about(h: &Harness, got: u64, want: u64, jobs: u64, why: &str) {
    assert!(
        got >= want && got <= want + jobs * SLACK,
        "{}: {why}: {got} bytes, want {want} (+ at most {SLACK} per job for {jobs} jobs)",
        h.case
    );
}

/// Seven finished jobs a second apart, oldest first: four succeeded (the fourth with a
/// 4,000-byte result too), one dead, one cancelled in another queue, one more succeeded;
/// and one live job. Returns the finished ids in finishing order and the live id.
async fn seven_finished(h: &Harness) -> (Vec<JobId>, JobId) {
    let mut ids = Vec::new();
    for i in 0..4u64 {
        let c = h.enqueue_and_claim(big("old", i)).await;
        let result = (i == 3).then(|| raw_payload(SIZE, 100 + i));
        h.try_complete(Completion {
            token: c.token.clone(),
            result,
            result_ttl: None,
            started_at: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: complete: {e}", h.case));
        ids.push(c.job.id);
        h.advance(Duration::from_secs(1));
    }
    let dead = h.enqueue(big("dead", 10)).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    ids.push(dead);
    h.advance(Duration::from_secs(1));
    let gone = h.enqueue(big("gone", 11).queue("other")).await.id;
    h.cancel(gone)
        .await
        .unwrap_or_else(|e| panic!("{}: cancel: {e}", h.case));
    ids.push(gone);
    h.advance(Duration::from_secs(1));
    let c = h.enqueue_and_claim(big("new", 12)).await;
    h.complete(&c.token).await;
    ids.push(c.job.id);
    let live = h.enqueue(big("live", 13).queue("other")).await.id;
    (ids, live)
}

/// Over the budget, the oldest finished jobs go until the rest fit, results counted; a dry
/// run counts the same and changes nothing; the limit caps a call; within the budget a call
/// deletes nothing; a live job neither counts nor goes.
pub async fn oldest_finished_go_until_within_the_budget(h: Harness) {
    let (ids, live) = seven_finished(&h).await;
    let total = finished_bytes(&h).await;
    // Seven payloads and one result; the live job does not count.
    about(&h, total, 8 * SIZE as u64, 7, "finished bytes");
    // 17,000 bytes: jobs 0–2 (4,000 each) are not enough, job 3 counts 8,000 with its result.
    let budget = 17_000;
    let dry = prune_bytes(&h, budget, 100, true).await;
    assert_eq!(
        (dry.finished_bytes, dry.jobs_deleted),
        (total, 4),
        "{}: dry run {dry:?}",
        h.case
    );
    about(
        &h,
        dry.bytes_freed,
        5 * SIZE as u64,
        4,
        "bytes the dry run frees",
    );
    for id in &ids {
        h.find(*id)
            .await
            .unwrap_or_else(|| panic!("{}: the dry run deleted {id}", h.case));
    }
    // A limit of 2: the two oldest, then the next two.
    let first = prune_bytes(&h, budget, 2, false).await;
    assert_eq!(first.jobs_deleted, 2, "{}: {first:?}", h.case);
    h.assert_absent(&ids[..2], "the two oldest").await;
    h.assert_state(ids[2], JobState::Succeeded, "past the limit")
        .await;
    let second = prune_bytes(&h, budget, 2, false).await;
    assert_eq!(second.jobs_deleted, 2, "{}: {second:?}", h.case);
    assert_eq!(
        second.finished_bytes,
        total - first.bytes_freed,
        "{}: the total follows the deletions",
        h.case
    );
    h.assert_absent(&ids[..4], "the four oldest").await;
    h.assert_state(ids[4], JobState::Dead, "newer than the excess")
        .await;
    h.assert_state(ids[5], JobState::Cancelled, "other queue, newer")
        .await;
    h.assert_state(ids[6], JobState::Succeeded, "newest").await;
    h.assert_state(live, JobState::Queued, "live job").await;
    let within = prune_bytes(&h, budget, 100, false).await;
    assert_eq!(
        within.jobs_deleted, 0,
        "{}: within the budget: {within:?}",
        h.case
    );
    about(
        &h,
        within.finished_bytes,
        3 * SIZE as u64,
        3,
        "what is left",
    );
    assert_eq!(
        within.finished_bytes,
        second.finished_bytes - second.bytes_freed,
        "{}",
        h.case
    );
}

/// A job leaving its terminal state (a retried dead job) stops counting, and counts again
/// when it finishes again; deleting a finished job by id takes its bytes off.
pub async fn retry_and_delete_keep_the_total(h: Harness) {
    let (ids, _) = seven_finished(&h).await;
    let total = finished_bytes(&h).await;
    let dead = ids[4];
    h.retry_ids(vec![dead])
        .await
        .unwrap_or_else(|e| panic!("{}: retry: {e}", h.case));
    let retried = finished_bytes(&h).await;
    about(
        &h,
        total - retried,
        SIZE as u64,
        1,
        "a retried job leaves the total",
    );
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    assert_eq!(finished_bytes(&h).await, total, "{}: dead again", h.case);
    h.backend
        .job_delete(crate::backend::JobDeleteParams {
            ids: vec![ids[3]],
            dry_run: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: delete: {e}", h.case));
    about(
        &h,
        total - finished_bytes(&h).await,
        2 * SIZE as u64,
        1,
        "a deleted job (payload and result) leaves the total",
    );
}

/// The pruner with a byte budget and no retention by age deletes the oldest finished jobs in
/// batches of `batch_limit` until the rest fit, and reports them.
pub async fn pruner_applies_the_byte_budget_in_batches(h: Harness) {
    let (ids, live) = seven_finished(&h).await;
    let clock: crate::SharedClock = h.clock.clone();
    let pruner = Pruner::new(
        h.backend.clone(),
        clock,
        PrunerConfig {
            retention: BTreeMap::new(),
            batch_limit: 1,
            max_bytes: Some(17_000),
            ..Default::default()
        },
    );
    let dry = pruner.dry_run().await.unwrap();
    assert_eq!(dry.over_budget_deleted, 4, "{}: dry {dry:?}", h.case);
    let r = pruner.run_once().await.unwrap();
    assert_eq!(
        (r.over_budget_deleted, r.jobs_deleted),
        (4, 4),
        "{}: {r:?}",
        h.case
    );
    assert_eq!(r.finished_bytes, dry.finished_bytes, "{}", h.case);
    h.assert_absent(&ids[..4], "over the budget").await;
    for id in &ids[4..] {
        h.find(*id)
            .await
            .unwrap_or_else(|| panic!("{}: {id} fits in the budget", h.case));
    }
    h.assert_state(live, JobState::Queued, "live job").await;
    let again = pruner.run_once().await.unwrap();
    assert_eq!(again.over_budget_deleted, 0, "{}: {again:?}", h.case);
    assert!(
        PrunerConfig {
            max_bytes: Some(0),
            ..Default::default()
        }
        .validate()
        .is_err(),
        "{}: a budget of 0 is refused",
        h.case
    );
}
