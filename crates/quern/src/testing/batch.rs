//! Batch enqueue: `Atomic` stores all or nothing; `BestEffort` stores the valid jobs and
//! gives each invalid one its own error.

use super::*;
use crate::Error;
use crate::backend::BatchMode;
use crate::model::{Codec, JobId, JobState, NewJob};

/// A payload one byte over the default limit.
fn oversized() -> crate::Payload {
    raw_payload(Codec::DEFAULT_MAX_BYTES + 1, 7)
}

/// Runs an atomic batch that must fail, checks the error is `InvalidJob` naming the bad item
/// (or `PayloadTooLarge`), and checks nothing was stored.
async fn atomic_refused(h: &Harness, jobs: Vec<NewJob>, bad_index: usize, what: &str) -> Error {
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let res = h.try_enqueue(jobs, BatchMode::Atomic).await;
    let err = match res {
        Err(e) => e,
        Ok(v) => panic!("{}: {what}: atomic batch should fail, got {v:?}", h.case),
    };
    // A job-level failure names the item; only a size failure has its own variant.
    match &err {
        Error::InvalidJob { index, .. } => {
            assert_eq!(
                *index,
                Some(bad_index),
                "{}: {what}: error names the item",
                h.case
            )
        }
        Error::PayloadTooLarge { .. } => {}
        other => panic!(
            "{}: {what}: expected InvalidJob or PayloadTooLarge, got {other:?}",
            h.case
        ),
    }
    h.assert_absent(&ids, what).await;
    err
}

/// A bad queue name in the middle of an atomic batch: nothing stored.
pub async fn atomic_bad_queue_inserts_nothing(h: Harness) {
    let jobs = vec![job("a"), job("b").queue("bad queue!"), job("c")];
    atomic_refused(&h, jobs, 1, "bad queue name").await;
}

/// A dependency on a job that does not exist: nothing stored.
pub async fn atomic_unknown_dependency_inserts_nothing(h: Harness) {
    let jobs = vec![job("a"), job("b"), job("c").depends_on([JobId::new()])];
    atomic_refused(&h, jobs, 2, "unknown dependency").await;
}

/// An oversized payload: `PayloadTooLarge`, nothing stored.
pub async fn atomic_oversized_payload_inserts_nothing(h: Harness) {
    let jobs = vec![job("a"), crate::NewJob::new("big", oversized()), job("c")];
    let err = atomic_refused(&h, jobs, 1, "oversized payload").await;
    assert!(
        matches!(err, Error::PayloadTooLarge { .. }),
        "{}: expected PayloadTooLarge, got {err:?}",
        h.case
    );
}

/// Dependencies must exist already or come earlier in the batch; one on a later item is
/// refused and nothing is stored.
pub async fn atomic_forward_dependency_inserts_nothing(h: Harness) {
    let later = job("later");
    let early = job("early").depends_on([later.id]);
    atomic_refused(&h, vec![early, later], 0, "dependency on a later item").await;
}

/// An atomic batch spanning two queues is still all or nothing (where supported).
pub async fn atomic_batch_across_queues_inserts_nothing(h: Harness) {
    if h.lacks(
        "atomic_batch_across_queues",
        h.caps().atomic_batch_across_queues,
    ) {
        return;
    }
    let jobs = vec![
        job("a").queue("q1"),
        job("b").queue("q2"),
        job("c").queue("q2").depends_on([JobId::new()]),
    ];
    atomic_refused(&h, jobs, 2, "cross-queue batch").await;
    // And a valid one across queues goes in whole.
    let ok = h
        .enqueue_all(vec![job("a").queue("q1"), job("b").queue("q2")])
        .await;
    assert!(ok.iter().all(|o| o.state == JobState::Queued), "{}", h.case);
}

/// Best effort: valid items are stored, each invalid one gets its own error.
pub async fn best_effort_stores_the_valid_ones(h: Harness) {
    let jobs = vec![
        job("ok1"),
        job("bad").queue("bad queue!"),
        job("ok2"),
        job("orphan").depends_on([JobId::new()]),
        crate::NewJob::new("big", oversized()),
        job("ok3"),
    ];
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let res = h
        .try_enqueue(jobs, BatchMode::BestEffort)
        .await
        .unwrap_or_else(|e| panic!("{}: best-effort call failed as a whole: {e}", h.case));
    assert_eq!(res.len(), 6, "{}: one result per item", h.case);
    for i in [0, 2, 5] {
        let o = res[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: item {i} is valid: {e}", h.case));
        assert_eq!(o.id, ids[i], "{}", h.case);
        h.assert_state(ids[i], JobState::Queued, "valid item stored")
            .await;
    }
    for i in [1, 3, 4] {
        match &res[i] {
            Err(e) if is_input_error(e) => {}
            other => panic!("{}: item {i} should be refused, got {other:?}", h.case),
        }
    }
    assert!(
        matches!(res[4], Err(Error::PayloadTooLarge { .. })),
        "{}: item 4 is PayloadTooLarge: {:?}",
        h.case,
        res[4]
    );
    h.assert_absent(&[ids[1], ids[3], ids[4]], "invalid items")
        .await;
}

/// Items may depend on earlier items of the same batch.
pub async fn dependencies_within_a_batch(h: Harness) {
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]);
    let out = h.enqueue_all(vec![a, b, c]).await;
    let states: Vec<JobState> = out.iter().map(|o| o.state).collect();
    assert_eq!(
        states,
        [JobState::Queued, JobState::Blocked, JobState::Blocked],
        "{}",
        h.case
    );
    let ca = h.claim_id("default", out[0].id).await;
    h.complete(&ca.token).await;
    h.assert_state(out[1].id, JobState::Queued, "b unblocked")
        .await;
    h.assert_state(out[2].id, JobState::Blocked, "c still waits")
        .await;
}

/// Outcomes come back one per job, in input order.
pub async fn outcomes_in_input_order(h: Harness) {
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| job_n(if i % 2 == 0 { "q" } else { "default" }, i))
        .collect();
    let jobs: Vec<NewJob> = if h.caps().atomic_batch_across_queues {
        jobs
    } else {
        jobs.into_iter().map(|j| j.queue("q")).collect()
    };
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let out = h.enqueue_all(jobs).await;
    let got: Vec<JobId> = out.iter().map(|o| o.id).collect();
    assert_eq!(got, ids, "{}: outcome order", h.case);
}
