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

/// A refused batch that named a new queue leaves nothing behind that later enqueues into
/// that queue trip over (a cached id of a queue row that was rolled back, say).
pub async fn refused_batch_leaves_no_phantom_queue(h: Harness) {
    let fresh = NewJob::json("k", serde_json::json!(1))
        .unwrap()
        .queue("fresh");
    let bad = NewJob::json("k", serde_json::json!(2))
        .unwrap()
        .queue("bad queue");
    atomic_refused(&h, vec![fresh, bad], 1, "new queue then bad queue").await;
    let id = h
        .enqueue(
            NewJob::json("k", serde_json::json!(3))
                .unwrap()
                .queue("fresh"),
        )
        .await
        .id;
    assert_eq!(h.get(id).await.queue, "fresh", "{}: readable", h.case);
    assert_eq!(
        h.stats("fresh").await.counts.queued,
        1,
        "{}: counted",
        h.case
    );
    h.claim_id("fresh", id).await;
}

/// One batch whose jobs differ in every stored attribute, in runs of equal jobs and in
/// alternation (a backend may send or store runs of similar jobs together): each job is
/// stored as given, and the due ones are claimed in (priority, run_at, id) order.
pub async fn mixed_batch_stores_each_job_as_given(h: Harness) {
    let now = h.now();
    let across = h.caps().atomic_batch_across_queues;
    let ids = sorted_ids(30);
    // Attribute counters: queue, payload size, run_at, priority, max attempts. The first
    // twelve jobs come in runs of three equal ones (every attribute changes between runs);
    // after that each job differs from the one before in exactly one attribute.
    let mut a = [0usize; 5];
    let mut jobs = Vec::with_capacity(30);
    for i in 0..30usize {
        if i >= 12 {
            a[i % 5] += 1;
        } else if i % 3 == 0 {
            a.iter_mut().for_each(|x| *x += 1);
        }
        let queue = if across && a[0] % 2 == 1 {
            "other"
        } else {
            "default"
        };
        let payload = match a[1] % 3 {
            0 => json_payload(serde_json::json!({ "n": i })),
            1 => raw_payload(100 + i, i as u64),
            _ => raw_payload(2_000 + i, i as u64),
        };
        let run_at = match a[2] % 5 {
            0 => None,
            1 => Some(now - 1_000),
            2 => Some(now + 5_000),
            3 => Some(now),
            _ => Some(now - (i as i64) * 10),
        };
        let prio = crate::model::Priority::new((a[3] * 7 % 10) as u8).expect("0-9");
        let mut j = NewJob::new("mixed", payload)
            .id(ids[i])
            .queue(queue)
            .priority(prio)
            .max_attempts(if a[4] % 2 == 0 { 25 } else { 3 + i as u32 });
        if let Some(at) = run_at {
            j = j.run_at(at);
        }
        jobs.push(j);
    }
    let out = h.enqueue_all(jobs.clone()).await;
    for (i, (nj, o)) in jobs.iter().zip(&out).enumerate() {
        let due = nj.run_at.unwrap_or(now);
        let want = if due > now {
            JobState::Scheduled
        } else {
            JobState::Queued
        };
        assert_eq!((o.id, o.state), (nj.id, want), "{}: outcome {i}", h.case);
        let got = h.get(nj.id).await;
        assert_eq!(got.queue, nj.queue, "{}: job {i} queue", h.case);
        assert_eq!(got.priority, nj.priority, "{}: job {i} priority", h.case);
        assert_eq!(got.max_attempts, nj.max_attempts, "{}: job {i}", h.case);
        assert_eq!(got.payload, nj.payload, "{}: job {i} payload", h.case);
        assert_eq!(got.run_at, due, "{}: job {i} run_at", h.case);
        assert_eq!(got.created_at, now, "{}: job {i} created_at", h.case);
        assert_eq!(got.state, want, "{}: job {i} state", h.case);
    }

    let queues: &[&str] = if across {
        &["default", "other"]
    } else {
        &["default"]
    };
    for &queue in queues {
        let mut due: Vec<&NewJob> = jobs
            .iter()
            .filter(|j| j.queue == queue && j.run_at.unwrap_or(now) <= now)
            .collect();
        due.sort_by_key(|j| (j.priority, j.run_at.unwrap_or(now), j.id));
        let want: Vec<JobId> = due.iter().map(|j| j.id).collect();
        let waiting = jobs.iter().filter(|j| j.queue == queue).count() - want.len();
        let c = h.stats(queue).await.counts;
        assert_eq!(
            (c.queued as usize, c.scheduled as usize),
            (want.len(), waiting),
            "{}: {queue} counts",
            h.case
        );
        let mut order = Vec::new();
        for _ in 0..want.len() {
            order.push(h.claim_one(queue).await.job.id);
        }
        h.claim_none(queue, "only scheduled jobs left").await;
        assert_eq!(order, want, "{}: {queue} claim order", h.case);
    }
}
