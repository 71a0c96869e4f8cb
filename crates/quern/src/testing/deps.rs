//! Dependencies: blocked jobs are released (or skipped) in the same call that finishes their
//! last dependency, by their trigger (`Trigger::resolve`), and skips propagate transitively
//! in that same step.

use super::*;
use crate::backend::FailAction;
use crate::model::{JobId, JobState, NewJob, Trigger};

/// Enqueues `jobs` and returns their ids.
async fn put(h: &Harness, jobs: Vec<NewJob>) -> Vec<JobId> {
    h.enqueue_all(jobs)
        .await
        .into_iter()
        .map(|o| o.id)
        .collect()
}

/// Claims `id` and completes it.
async fn succeed(h: &Harness, id: JobId) {
    let c = h.claim_id("default", id).await;
    h.complete(&c.token).await;
}

/// Claims `id` and fails it for good.
async fn kill(h: &Harness, id: JobId) {
    h.claim_and_fail("default", id, FailAction::Dead).await;
}

/// Completing the dependency makes the dependent `queued` by the time `job_complete` returns.
pub async fn complete_unblocks_in_the_same_call(h: Harness) {
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let ids = put(&h, vec![a, b]).await;
    h.assert_state(ids[1], JobState::Blocked, "before").await;
    succeed(&h, ids[0]).await;
    h.assert_state(ids[1], JobState::Queued, "right after complete")
        .await;
    h.claim_id("default", ids[1]).await;
}

/// A dependent whose own `run_at` is still ahead becomes `scheduled`, then runs at `run_at`.
pub async fn unblocked_job_with_future_run_at_is_scheduled(h: Harness) {
    let at = h.now() + 60_000;
    let a = job("a");
    let b = job("b").depends_on([a.id]).run_at(at);
    let ids = put(&h, vec![a, b]).await;
    succeed(&h, ids[0]).await;
    h.assert_state(ids[1], JobState::Scheduled, "deps done, not due")
        .await;
    h.claim_none("default", "not due").await;
    h.advance_to(at);
    h.claim_id("default", ids[1]).await;
}

/// `all_success` waits until every dependency succeeded.
pub async fn all_success_waits_for_every_dependency(h: Harness) {
    let (a, b, c) = (job("a"), job("b"), job("c"));
    let d = job("d").depends_on([a.id, b.id, c.id]);
    let ids = put(&h, vec![a, b, c, d]).await;
    succeed(&h, ids[0]).await;
    succeed(&h, ids[1]).await;
    h.assert_state(ids[3], JobState::Blocked, "two of three done")
        .await;
    succeed(&h, ids[2]).await;
    h.assert_state(ids[3], JobState::Queued, "all done").await;
}

/// `all_success` skips the dependent as soon as one dependency ends dead, even while others
/// are still pending; the skipped job is finished.
pub async fn all_success_skips_on_failure(h: Harness) {
    let (a, b) = (job("a"), job("b"));
    let c = job("c").depends_on([a.id, b.id]);
    let ids = put(&h, vec![a, b, c]).await;
    kill(&h, ids[0]).await;
    let cj = h.get(ids[2]).await;
    assert_eq!(cj.state, JobState::Skipped, "{}: skipped at once", h.case);
    assert!(cj.finished_at.is_some(), "{}: skipped is finished", h.case);
    // The other dependency finishing later changes nothing.
    succeed(&h, ids[1]).await;
    h.assert_state(ids[2], JobState::Skipped, "stays skipped")
        .await;
}

/// `all_done` runs once every dependency is terminal, however it ended.
pub async fn all_done_runs_after_failure(h: Harness) {
    let (a, b) = (job("a"), job("b"));
    let c = job("c").depends_on([a.id, b.id]).trigger(Trigger::AllDone);
    let ids = put(&h, vec![a, b, c]).await;
    kill(&h, ids[0]).await;
    h.assert_state(ids[2], JobState::Blocked, "one still pending")
        .await;
    succeed(&h, ids[1]).await;
    h.assert_state(ids[2], JobState::Queued, "all terminal")
        .await;
}

/// `any_success` runs as soon as one dependency succeeded, while others still run.
pub async fn any_success_runs_on_first_success(h: Harness) {
    let (a, b) = (job("a"), job("b"));
    let c = job("c")
        .depends_on([a.id, b.id])
        .trigger(Trigger::AnySuccess);
    let ids = put(&h, vec![a, b, c]).await;
    kill(&h, ids[0]).await;
    h.assert_state(ids[2], JobState::Blocked, "one failed, one pending")
        .await;
    succeed(&h, ids[1]).await;
    h.assert_state(ids[2], JobState::Queued, "one succeeded")
        .await;
}

/// `any_success` skips once all dependencies are terminal and none succeeded.
pub async fn any_success_skips_when_none_succeed(h: Harness) {
    let (a, b) = (job("a"), job("b"));
    let c = job("c")
        .depends_on([a.id, b.id])
        .trigger(Trigger::AnySuccess);
    let ids = put(&h, vec![a, b, c]).await;
    kill(&h, ids[0]).await;
    h.cancel(ids[1]).await.unwrap();
    h.assert_state(ids[2], JobState::Skipped, "none succeeded")
        .await;
}

/// a → b → c → d: `a` dying skips b, c and d, all visible right after the single fail call.
pub async fn skip_propagates_transitively_at_once(h: Harness) {
    let a = job("a").max_attempts(1);
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]);
    let d = job("d").depends_on([c.id]);
    let ids = put(&h, vec![a, b, c, d]).await;
    let claimed = h.claim_id("default", ids[0]).await;
    h.fail(
        &claimed.token,
        FailAction::Retry {
            retry_at: Some(h.now() + 1_000),
        },
    )
    .await;
    // Out of attempts: dead, and the whole chain skipped in the same call.
    h.assert_state(ids[0], JobState::Dead, "last attempt failed")
        .await;
    for (i, id) in ids.iter().enumerate().skip(1) {
        h.assert_state(*id, JobState::Skipped, &format!("chain link {i}"))
            .await;
    }
    h.claim_none("default", "nothing left to run").await;
}

/// A skipped dependency counts as done for `all_done`: a → b (all_success) → c (all_done);
/// a dying skips b and queues c.
pub async fn all_done_runs_after_skipped_dependency(h: Harness) {
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]).trigger(Trigger::AllDone);
    let ids = put(&h, vec![a, b, c]).await;
    kill(&h, ids[0]).await;
    h.assert_state(ids[1], JobState::Skipped, "b").await;
    h.assert_state(ids[2], JobState::Queued, "c runs after b is done")
        .await;
}

/// Cancelling a job (from outside) skips its dependents transitively.
pub async fn cancel_skips_dependents(h: Harness) {
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let c = job("c").depends_on([b.id]);
    let ids = put(&h, vec![a, b, c]).await;
    h.cancel(ids[0]).await.unwrap();
    h.assert_state(ids[1], JobState::Skipped, "b").await;
    h.assert_state(ids[2], JobState::Skipped, "c").await;
}

/// A handler cancelling its job skips the dependents too.
pub async fn handler_cancel_skips_dependents(h: Harness) {
    let a = job("a");
    let b = job("b").depends_on([a.id]);
    let ids = put(&h, vec![a, b]).await;
    h.claim_and_fail("default", ids[0], FailAction::Cancel)
        .await;
    h.assert_state(ids[0], JobState::Cancelled, "a").await;
    h.assert_state(ids[1], JobState::Skipped, "b").await;
}

/// A dependency that ended and is then replayed counts as pending again: c (all_done on a
/// and x) keeps waiting after x finishes until the replayed a finishes too.
pub async fn replayed_dependency_counts_as_pending_again(h: Harness) {
    let a = job("a");
    let x = job("x").priority(crate::Priority::LOW);
    let c = job("c").depends_on([a.id, x.id]).trigger(Trigger::AllDone);
    let ids = put(&h, vec![a, x, c]).await;
    kill(&h, ids[0]).await;
    h.assert_state(ids[2], JobState::Blocked, "x pending").await;
    let cx = h.claim_id("default", ids[1]).await;
    let moved = h.retry_ids(vec![ids[0]]).await.unwrap();
    assert_eq!(moved, vec![ids[0]], "{}", h.case);
    h.complete(&cx.token).await;
    h.assert_state(ids[2], JobState::Blocked, "a was replayed: pending again")
        .await;
    succeed(&h, ids[0]).await;
    h.assert_state(ids[2], JobState::Queued, "both done").await;
}

/// Dependencies across queues behave the same (where supported).
pub async fn dependencies_across_queues(h: Harness) {
    if h.lacks(
        "dependencies_across_queues",
        h.caps().dependencies_across_queues,
    ) {
        return;
    }
    let a = h.enqueue(job("a").queue("q1")).await.id;
    let b = h.enqueue(job("b").queue("q2").depends_on([a])).await.id;
    let x = h.enqueue(job("x").queue("q1")).await.id;
    let y = h.enqueue(job("y").queue("q2").depends_on([x])).await.id;
    let ca = h.claim_id("q1", a).await;
    h.complete(&ca.token).await;
    h.assert_state(b, JobState::Queued, "unblocked across queues")
        .await;
    h.claim_and_fail("q1", x, FailAction::Dead).await;
    h.assert_state(y, JobState::Skipped, "skipped across queues")
        .await;
}
