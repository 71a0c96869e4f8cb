//! The state machine as a whole: [`EDGES`] maps every legal move
//! ([`JobState::can_move_to`]) to the cases that drive a job along it (a unit test keeps the
//! two in step), and the cases here cover the moves no other area owns: snooze, handler
//! cancel, give-back, retries back to `blocked`, and refusals of illegal moves.

use super::*;
use crate::Error;
use crate::backend::{Completion, FailAction};
use crate::model::{JobId, JobState, Trigger};

use JobState::*;

/// Every edge of the state diagram and the cases that exercise it.
pub const EDGES: &[(JobState, JobState, &[&str])] = &[
    (
        Scheduled,
        Queued,
        &[
            "scheduled::claimable_exactly_at_run_at",
            "scheduled::due_job_takes_its_priority_place",
        ],
    ),
    (
        Blocked,
        Queued,
        &["deps::complete_unblocks_in_the_same_call"],
    ),
    (
        Blocked,
        Scheduled,
        &["deps::unblocked_job_with_future_run_at_is_scheduled"],
    ),
    (
        Blocked,
        Skipped,
        &[
            "deps::all_success_skips_on_failure",
            "deps::skip_propagates_transitively_at_once",
        ],
    ),
    (Queued, Running, &["claim::claim_leases_the_job"]),
    (
        Running,
        Succeeded,
        &["deps::complete_unblocks_in_the_same_call"],
    ),
    (
        Running,
        Scheduled,
        &[
            "retry::retryable_failure_is_scheduled",
            "transitions::snooze_does_not_count_an_attempt",
        ],
    ),
    (
        Running,
        Dead,
        &[
            "retry::fatal_goes_dead",
            "retry::out_of_attempts_goes_dead_with_history",
            "retry::retry_without_time_goes_dead",
            "lease::rescue_of_last_attempt_is_dead_and_skips_dependents",
        ],
    ),
    (
        Running,
        Cancelled,
        &[
            "transitions::handler_cancel_ends_cancelled",
            "cancel::cancel_running_revokes_the_lease",
        ],
    ),
    (
        Running,
        Queued,
        &[
            "transitions::release_gives_back_without_counting",
            "lease::expired_lease_is_rescued_attempt_counted",
        ],
    ),
    (
        Running,
        Skipped,
        &["spawn::skip_ends_skipped_without_counting_the_attempt"],
    ),
    (
        Running,
        Blocked,
        &["spawn::spawn_blocks_the_parent_on_its_children"],
    ),
    (Scheduled, Cancelled, &["cancel::cancel_scheduled"]),
    (Queued, Cancelled, &["cancel::cancel_queued"]),
    (Blocked, Cancelled, &["cancel::cancel_blocked"]),
    (
        Dead,
        Queued,
        &[
            "retry::replay_by_id_resets_attempts_keeps_errors",
            "retry::replay_by_filter",
        ],
    ),
    (
        Cancelled,
        Queued,
        &["transitions::retry_cancelled_and_skipped_are_queued"],
    ),
    (
        Skipped,
        Queued,
        &["transitions::retry_cancelled_and_skipped_are_queued"],
    ),
    (
        Dead,
        Blocked,
        &["transitions::retry_dead_with_pending_dependency_is_blocked"],
    ),
    (
        Cancelled,
        Blocked,
        &["transitions::retry_cancelled_with_pending_dependency_is_blocked"],
    ),
    (
        Skipped,
        Blocked,
        &["transitions::retry_skipped_with_pending_dependency_is_blocked"],
    ),
];

/// A snooze reschedules the job with a new epoch later, records no error and does not count
/// an attempt: a job with `max_attempts = 1` still has its one attempt afterwards.
pub async fn snooze_does_not_count_an_attempt(h: Harness) {
    let c = h.enqueue_and_claim(job("patient").max_attempts(1)).await;
    let at = h.now() + 5_000;
    h.fail(&c.token, FailAction::Snooze { run_at: at }).await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, Scheduled, "{}", h.case);
    assert_eq!(j.run_at, at, "{}: run_at is the snooze time", h.case);
    assert_eq!(
        j.attempt, 0,
        "{}: the snoozed attempt is not counted",
        h.case
    );
    assert!(
        j.errors.is_empty(),
        "{}: snoozes are not errors: {:?}",
        h.case,
        j.errors
    );
    assert!(j.lease.is_none(), "{}", h.case);
    h.claim_none("default", "snoozed").await;
    h.advance_to(at);
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(again.job.attempt, 1, "{}: still the first attempt", h.case);
    assert!(again.token.epoch > c.token.epoch, "{}: new epoch", h.case);
    expect_err!(
        h,
        h.heartbeat(&c.token).await,
        Error::LeaseLost { .. },
        "old token after snooze"
    );
    // Its single attempt fails: now it is dead.
    h.fail(
        &again.token,
        FailAction::Retry {
            retry_at: Some(h.now() + 1_000),
        },
    )
    .await;
    h.assert_state(c.job.id, Dead, "the one real attempt failed")
        .await;
}

/// A handler cancelling its own job: `cancelled`, finished, lease gone, reason recorded.
pub async fn handler_cancel_ends_cancelled(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    h.fail(&c.token, FailAction::Cancel).await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, Cancelled, "{}", h.case);
    assert!(j.finished_at.is_some(), "{}", h.case);
    assert!(j.lease.is_none(), "{}", h.case);
    h.claim_none("default", "cancelled").await;
}

/// A give-back returns the job to `queued` without counting the attempt or recording an
/// error; the next claim is still attempt 1 (under a new epoch).
pub async fn release_gives_back_without_counting(h: Harness) {
    let c = h.enqueue_and_claim(job("x").max_attempts(1)).await;
    h.try_release(&c.token).await.unwrap();
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, Queued, "{}", h.case);
    assert_eq!(j.attempt, 0, "{}: not counted", h.case);
    assert!(j.lease.is_none(), "{}", h.case);
    assert!(j.errors.is_empty(), "{}: {:?}", h.case, j.errors);
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(again.job.attempt, 1, "{}", h.case);
    assert!(again.token.epoch > c.token.epoch, "{}", h.case);
    h.complete(&again.token).await;
}

/// Checks `job_retry` of `id` moves exactly it, to `want`.
async fn retry_to(h: &Harness, id: JobId, want: JobState, why: &str) {
    let moved = h
        .retry_ids(vec![id])
        .await
        .unwrap_or_else(|e| panic!("{}: {why}: retry: {e}", h.case));
    assert_eq!(moved, vec![id], "{}: {why}", h.case);
    h.assert_state(id, want, why).await;
}

/// cancelled → blocked: a cancelled dependent retried while its dependency is still pending
/// waits again, and runs when the dependency completes.
pub async fn retry_cancelled_with_pending_dependency_is_blocked(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h.enqueue(job("b").depends_on([a])).await.id;
    h.cancel(b).await.unwrap();
    retry_to(&h, b, Blocked, "dependency still queued").await;
    let c = h.claim_id("default", a).await;
    h.complete(&c.token).await;
    h.assert_state(b, Queued, "dependency done").await;
}

/// skipped → blocked: after the failed dependency is replayed, retrying the skipped job makes
/// it wait for the new run.
pub async fn retry_skipped_with_pending_dependency_is_blocked(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h.enqueue(job("b").depends_on([a])).await.id;
    h.claim_and_fail("default", a, FailAction::Dead).await;
    h.assert_state(b, Skipped, "setup").await;
    retry_to(&h, a, Queued, "replay the dependency").await;
    h.assert_state(b, Skipped, "replaying a does not touch b")
        .await;
    retry_to(&h, b, Blocked, "a is pending again").await;
    let c = h.claim_id("default", a).await;
    h.complete(&c.token).await;
    h.assert_state(b, Queued, "a succeeded this time").await;
}

/// dead → blocked: b (all_done on a) ran after a died and died itself; with a replayed, a
/// retry of b waits for a again.
pub async fn retry_dead_with_pending_dependency_is_blocked(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h
        .enqueue(job("b").depends_on([a]).trigger(Trigger::AllDone))
        .await
        .id;
    h.claim_and_fail("default", a, FailAction::Dead).await;
    h.claim_and_fail("default", b, FailAction::Dead).await;
    retry_to(&h, a, Queued, "replay the dependency").await;
    retry_to(&h, b, Blocked, "a is pending again").await;
}

/// cancelled → queued and skipped → queued: an operator retry of a job with nothing pending
/// makes it runnable. (A skipped job becomes retryable once its failed dependency was
/// replayed and succeeded.)
pub async fn retry_cancelled_and_skipped_are_queued(h: Harness) {
    let dead = h.enqueue(job("dead")).await.id;
    let skipped = h.enqueue(job("skipped").depends_on([dead])).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    h.assert_state(skipped, Skipped, "setup").await;
    retry_to(&h, dead, Queued, "replay the dependency").await;
    let c = h.claim_id("default", dead).await;
    h.complete(&c.token).await;
    h.assert_state(
        skipped,
        Skipped,
        "a dependency succeeding later does not revive it",
    )
    .await;
    retry_to(&h, skipped, Queued, "skipped job retried").await;
    let gone = h.enqueue(job("gone")).await.id;
    h.cancel(gone).await.unwrap();
    retry_to(&h, gone, Queued, "cancelled job retried").await;
    let mut got: Vec<JobId> = h
        .claim("default", 10)
        .await
        .into_iter()
        .map(|c| c.job.id)
        .collect();
    got.sort();
    let mut want = vec![gone, skipped];
    want.sort();
    assert_eq!(got, want, "{}: both runnable", h.case);
}

/// A skipped job whose trigger can still never be met (its dependency stays dead) cannot be
/// retried: the call is refused with an input error, and, when it came with other ids,
/// moves none of them.
pub async fn retry_skipped_with_failed_dependency_is_refused(h: Harness) {
    let dead = h.enqueue(job("dead")).await.id;
    let skipped = h.enqueue(job("skipped").depends_on([dead])).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    let other = h.enqueue(job("other")).await.id;
    h.claim_and_fail("default", other, FailAction::Dead).await;
    let before = h.get(skipped).await;
    expect_err!(h, h.retry_ids(vec![skipped]).await, ref e if is_input_error(e), "retry alone");
    assert_eq!(
        h.get(skipped).await,
        before,
        "{}: skipped job unchanged",
        h.case
    );
    expect_err!(
        h,
        h.retry_ids(vec![other, skipped]).await,
        ref e if is_input_error(e),
        "retry with another id"
    );
    h.assert_state(other, Dead, "the whole call was refused")
        .await;
    assert_eq!(
        h.get(skipped).await,
        before,
        "{}: skipped job unchanged",
        h.case
    );
}

/// Illegal moves get a clear error (naming the job and its state) and change nothing:
/// completing a queued job, cancelling a succeeded one, retrying a queued one, and any call
/// on an unknown id.
pub async fn illegal_moves_change_nothing(h: Harness) {
    let q = h.enqueue(job("q")).await.id;
    let before = h.get(q).await;
    // A made-up token for a job that was never claimed.
    let token = crate::LeaseToken {
        job_id: q,
        epoch: before.lease_epoch + 1,
        attempt: 1,
    };
    let done = Completion {
        token: token.clone(),
        result: None,
        result_ttl: None,
        started_at: None,
    };
    expect_err!(
        h,
        h.try_complete(done).await,
        Error::LeaseLost { .. },
        "complete a queued job"
    );
    let err = h.retry_ids(vec![q]).await.expect_err("retry a queued job");
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidTransition { from: Queued, .. })
            && text.contains("queued")
            && text.contains(&q.to_string()),
        "{}: clear error for retrying a queued job, got {text:?}",
        h.case
    );
    assert_eq!(h.get(q).await, before, "{}: queued job unchanged", h.case);

    let c = h.claim_id("default", q).await;
    h.complete(&c.token).await;
    let done_before = h.get(q).await;
    let err = h.cancel(q).await.expect_err("cancel a succeeded job");
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: Succeeded,
                ..
            }
        ) && err.to_string().contains("succeeded"),
        "{}: clear error for cancelling a succeeded job, got {err:?}",
        h.case
    );
    assert_eq!(
        h.get(q).await,
        done_before,
        "{}: succeeded job unchanged",
        h.case
    );

    let ghost = JobId::new();
    expect_err!(h, h.cancel(ghost).await, Error::JobNotFound(id) if id == ghost, "cancel unknown");
    expect_err!(h, h.retry_ids(vec![ghost]).await, Error::JobNotFound(id) if id == ghost, "retry unknown");
    let ghost_token = crate::LeaseToken {
        job_id: ghost,
        epoch: 1,
        attempt: 1,
    };
    expect_err!(
        h,
        h.heartbeat(&ghost_token).await,
        Error::LeaseLost { .. } | Error::JobNotFound(_),
        "heartbeat unknown"
    );
    assert!(h.find(ghost).await.is_none(), "{}: nothing created", h.case);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edge_is_covered_by_listed_cases() {
        for from in JobState::ALL {
            for to in JobState::ALL {
                let listed = EDGES.iter().any(|(a, b, _)| *a == from && *b == to);
                assert_eq!(
                    from.can_move_to(to),
                    listed,
                    "edge {from} -> {to}: can_move_to and EDGES disagree"
                );
            }
        }
        for (from, to, cases) in EDGES {
            assert!(!cases.is_empty(), "edge {from} -> {to} has no case");
            for c in *cases {
                assert!(
                    crate::testing::CASES.contains(c),
                    "edge {from} -> {to}: case {c} is not in the case list"
                );
            }
        }
    }
}
