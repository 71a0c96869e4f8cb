//! The two outcomes the workflow engine adds to `job_fail`: `Skip` (a condition was false
//! when the job came to run) and `Spawn` (the job hands its work to children and waits for
//! them: a `for_each` fan-out, whose fan-in is the ordinary dependency bookkeeping).

use super::*;
use crate::backend::{CompleteParams, Completion, FailAction, FailParams, Failure};
use crate::model::{ErrorKind, JobId, JobState, NewJob, Payload, Trigger};
use crate::{Error, LeaseToken, Result};

/// Sends one `Spawn` for `token`; returns the item's result.
async fn try_spawn(
    h: &Harness,
    token: &LeaseToken,
    children: Vec<NewJob>,
    checkpoint: Option<Payload>,
) -> Result<()> {
    let mut res = h
        .backend
        .job_fail(FailParams {
            items: vec![Failure {
                token: token.clone(),
                action: FailAction::Spawn {
                    children,
                    checkpoint,
                },
                error_kind: ErrorKind::Retryable,
                message: "spawned".into(),
                started_at: None,
            }],
        })
        .await
        .unwrap_or_else(|e| panic!("{}: job_fail(spawn) call failed: {e}", h.case));
    assert_eq!(res.len(), 1, "{}: one result per item", h.case);
    res.remove(0)
}

/// `n` children of kind `child` in the default queue.
fn children(n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::json("child", serde_json::json!({ "i": i })).unwrap())
        .collect()
}

/// Sends one `Skip` with a reason.
async fn skip(h: &Harness, token: &LeaseToken, reason: &str) {
    let mut res = h
        .backend
        .job_fail(FailParams {
            items: vec![Failure {
                token: token.clone(),
                action: FailAction::Skip,
                error_kind: ErrorKind::Skipped,
                message: reason.into(),
                started_at: None,
            }],
        })
        .await
        .unwrap_or_else(|e| panic!("{}: job_fail(skip) call failed: {e}", h.case));
    res.remove(0)
        .unwrap_or_else(|e| panic!("{}: skip refused: {e}", h.case));
}

/// `running → skipped`: finished, the attempt not counted, the reason in the history, and
/// the old lease is stale.
pub async fn skip_ends_skipped_without_counting_the_attempt(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let c = h.enqueue_and_claim(job("cond")).await;
    skip(&h, &c.token, "condition `x > 3` was false").await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Skipped, "{}: skipped", h.case);
    assert_eq!(j.attempt, 0, "{}: the attempt is not counted", h.case);
    assert!(j.finished_at.is_some(), "{}: skipped is finished", h.case);
    assert!(j.lease.is_none(), "{}: no lease", h.case);
    let last = j.errors.last().expect("a history entry");
    assert_eq!(
        (last.kind, last.message.as_str()),
        (ErrorKind::Skipped, "condition `x > 3` was false"),
        "{}: the reason is recorded",
        h.case
    );
    expect_err!(
        h,
        h.heartbeat(&c.token).await,
        Error::LeaseLost { .. },
        "old lease"
    );
}

/// A skip settles dependents like any skip: `all_success` ones are skipped (transitively),
/// `all_done` ones run.
pub async fn skip_settles_dependents(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]);
    let d = job("d").depends_on([a.id]).trigger(Trigger::AllDone);
    let (ai, bi, ci, di) = (a.id, b.id, c.id, d.id);
    h.enqueue_all(vec![a, b, c, d]).await;
    let claimed = h.claim_id("default", ai).await;
    skip(&h, &claimed.token, "no").await;
    h.assert_state(bi, JobState::Skipped, "all_success dependent")
        .await;
    h.assert_state(ci, JobState::Skipped, "transitively").await;
    h.assert_state(di, JobState::Queued, "all_done dependent")
        .await;
}

/// `running → blocked` on the children: stored in order as the parent's `depends_on`, trigger
/// `all_done`, attempt not counted, checkpoint kept; the parent is queued again in the call
/// that finishes the last child, and its next claim sees the children and the checkpoint.
pub async fn spawn_blocks_the_parent_on_its_children(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let parent = h.enqueue_and_claim(job("parent").max_attempts(1)).await;
    let kids = children(3);
    let kid_ids: Vec<JobId> = kids.iter().map(|k| k.id).collect();
    let mark = json_payload(serde_json::json!({"spawned": 3}));
    try_spawn(&h, &parent.token, kids, Some(mark.clone()))
        .await
        .unwrap_or_else(|e| panic!("{}: spawn refused: {e}", h.case));
    let p = h.get(parent.job.id).await;
    assert_eq!(p.state, JobState::Blocked, "{}: parent blocked", h.case);
    assert_eq!(
        p.depends_on, kid_ids,
        "{}: waits on the children, in order",
        h.case
    );
    assert_eq!(p.trigger, Trigger::AllDone, "{}: all_done", h.case);
    assert_eq!(p.attempt, 0, "{}: attempt not counted", h.case);
    assert!(p.lease.is_none(), "{}: lease cleared", h.case);
    assert_eq!(p.checkpoint.as_ref(), Some(&mark), "{}: checkpoint", h.case);
    assert!(p.errors.is_empty(), "{}: nothing in the history", h.case);
    expect_err!(
        h,
        h.heartbeat(&parent.token).await,
        Error::LeaseLost { .. },
        "old lease"
    );
    for k in &kid_ids {
        h.assert_state(*k, JobState::Queued, "child").await;
    }
    for (n, k) in kid_ids.iter().enumerate() {
        h.assert_state(parent.job.id, JobState::Blocked, "children pending")
            .await;
        let c = h.claim_id("default", *k).await;
        if n == 1 {
            h.fail(&c.token, FailAction::Dead).await;
        } else {
            h.complete(&c.token).await;
        }
    }
    h.assert_state(
        parent.job.id,
        JobState::Queued,
        "after the last child (one dead)",
    )
    .await;
    let again = h.claim_id("default", parent.job.id).await;
    assert_eq!(again.token.attempt, 1, "{}: first counted attempt", h.case);
    assert_eq!(
        again.job.depends_on, kid_ids,
        "{}: sees its children",
        h.case
    );
    assert_eq!(
        again.job.checkpoint.as_ref(),
        Some(&mark),
        "{}: checkpoint",
        h.case
    );
    h.complete(&again.token).await;
}

/// Spawning no children (or only children that are already settled) queues the parent at
/// once.
pub async fn spawn_of_nothing_requeues_at_once(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let parent = h.enqueue_and_claim(job("parent")).await;
    try_spawn(&h, &parent.token, Vec::new(), None)
        .await
        .unwrap_or_else(|e| panic!("{}: spawn refused: {e}", h.case));
    let p = h.get(parent.job.id).await;
    assert_eq!(p.state, JobState::Queued, "{}: queued at once", h.case);
    assert!(p.depends_on.is_empty(), "{}: no dependencies", h.case);
    h.claim_id("default", parent.job.id).await;
}

/// A bad child refuses the item: nothing stored, the parent still running under its lease.
pub async fn spawn_with_a_bad_child_changes_nothing(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let parent = h.enqueue_and_claim(job("parent")).await;
    let before = h.get(parent.job.id).await;
    let mut kids = children(3);
    kids[2] = kids[2].clone().queue("bad queue");
    let ids: Vec<JobId> = kids.iter().map(|k| k.id).collect();
    expect_err!(
        h,
        try_spawn(&h, &parent.token, kids, None).await,
        Error::InvalidJob { .. },
        "spawn with a bad child"
    );
    h.assert_absent(&ids, "no child stored").await;
    assert_eq!(
        h.get(parent.job.id).await,
        before,
        "{}: parent unchanged",
        h.case
    );
    h.heartbeat(&parent.token)
        .await
        .unwrap_or_else(|e| panic!("{}: lease still held: {e}", h.case));
    // A child that depends on the parent would wait forever: refused too.
    let looping = vec![job("child").depends_on([parent.job.id])];
    let looping_id = looping[0].id;
    expect_err!(
        h,
        try_spawn(&h, &parent.token, looping, None).await,
        Error::InvalidJob { .. },
        "child depending on its parent"
    );
    h.assert_absent(&[looping_id], "no child stored").await;
}

/// A stale token spawns nothing.
pub async fn spawn_with_a_stale_token_changes_nothing(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let parent = h.enqueue_and_claim(job("parent")).await;
    h.complete(&parent.token).await;
    let kids = children(2);
    let ids: Vec<JobId> = kids.iter().map(|k| k.id).collect();
    expect_err!(
        h,
        try_spawn(&h, &parent.token, kids, None).await,
        Error::LeaseLost { .. },
        "spawn after completion"
    );
    h.assert_absent(&ids, "no child stored").await;
    h.assert_state(parent.job.id, JobState::Succeeded, "unchanged")
        .await;
}

/// The parent's old dependencies no longer count for it: a dependency finishing again (after
/// an operator retried it) does not release the parent while its children are pending.
pub async fn spawned_parent_forgets_its_old_dependencies(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = job("a");
    let p = job("parent").depends_on([a.id]).trigger(Trigger::AllDone);
    let (ai, pi) = (a.id, p.id);
    h.enqueue_all(vec![a, p]).await;
    h.claim_and_fail("default", ai, FailAction::Dead).await;
    let parent = h.claim_id("default", pi).await;
    let kids = children(1);
    let kid = kids[0].id;
    try_spawn(&h, &parent.token, kids, None)
        .await
        .unwrap_or_else(|e| panic!("{}: spawn refused: {e}", h.case));
    h.retry_ids(vec![ai])
        .await
        .unwrap_or_else(|e| panic!("{}: retry a: {e}", h.case));
    let c = h.claim_id("default", ai).await;
    h.complete(&c.token).await;
    h.assert_state(
        pi,
        JobState::Blocked,
        "old dependency finished again, child pending",
    )
    .await;
    let c = h.claim_id("default", kid).await;
    h.complete(&c.token).await;
    h.assert_state(pi, JobState::Queued, "child done").await;
}

/// A fan-out of 10,000 children: stored in one call, and the parent is released exactly when
/// the last one finishes.
pub async fn ten_thousand_children(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    const N: usize = 10_000;
    let parent = h.enqueue_and_claim(job("parent")).await;
    let kids: Vec<NewJob> = (0..N)
        .map(|i| {
            NewJob::json("child", serde_json::json!(i))
                .unwrap()
                .queue("kids")
        })
        .collect();
    let ids: Vec<JobId> = kids.iter().map(|k| k.id).collect();
    try_spawn(&h, &parent.token, kids, None)
        .await
        .unwrap_or_else(|e| panic!("{}: spawn refused: {e}", h.case));
    assert_eq!(
        h.get(parent.job.id).await.depends_on,
        ids,
        "{}: all children, in order",
        h.case
    );
    let mut done = 0;
    while done < N {
        let batch = h.claim("kids", 1000).await;
        assert!(
            !batch.is_empty(),
            "{}: children left to claim ({done} done)",
            h.case
        );
        done += batch.len();
        let items = batch
            .iter()
            .map(|c| Completion {
                token: c.token.clone(),
                result: None,
                result_ttl: None,
                started_at: None,
            })
            .collect();
        let res = h
            .backend
            .job_complete(CompleteParams { items })
            .await
            .unwrap_or_else(|e| panic!("{}: complete: {e}", h.case));
        assert!(
            res.iter().all(|r| r.is_ok()),
            "{}: every completion accepted",
            h.case
        );
        let want = if done < N {
            JobState::Blocked
        } else {
            JobState::Queued
        };
        h.assert_state(parent.job.id, want, &format!("after {done} children"))
            .await;
    }
}
