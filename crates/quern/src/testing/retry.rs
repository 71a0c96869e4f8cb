//! Failed attempts: retry with backoff, dead when out of attempts or fatal (the DLQ), and the
//! operator's way back (`job_retry` by id and by filter) with attempts reset and the error
//! history kept.

use std::time::Duration;

use super::*;
use crate::Error;
use crate::backend::{FailAction, RetryParams, RetryTarget};
use crate::model::{ErrorKind, JobId, JobState, NewJob, Priority};

/// Drives a job with `max_attempts` through retryable failures until it is dead.
async fn fail_until_dead(h: &Harness, queue: &str, id: JobId, attempts: u32) {
    for n in 1..=attempts {
        let c = h.claim_id(queue, id).await;
        assert_eq!(c.job.attempt, n, "{}: attempt number", h.case);
        h.fail(
            &c.token,
            FailAction::Retry {
                retry_at: Some(h.now() + 1_000),
            },
        )
        .await;
        h.advance(Duration::from_secs(1));
    }
}

/// A retryable failure with attempts left: `scheduled` at the retry time, attempt kept, lease
/// gone, the error recorded with its attempt, kind and message, and the creation time
/// unchanged by the new run_at.
pub async fn retryable_failure_is_scheduled(h: Harness) {
    let c = h.enqueue_and_claim(job("flaky").max_attempts(3)).await;
    let created = c.job.created_at;
    assert_eq!(created, c.job.run_at, "{}: a job to run now", h.case);
    h.advance(Duration::from_secs(2));
    let at = h.now() + 30_000;
    h.fail(&c.token, FailAction::Retry { retry_at: Some(at) })
        .await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Scheduled, "{}", h.case);
    assert_eq!(j.run_at, at, "{}: run_at is the retry time", h.case);
    assert_eq!(j.created_at, created, "{}: created_at kept", h.case);
    assert_eq!(j.attempt, 1, "{}", h.case);
    assert!(j.lease.is_none(), "{}: lease cleared", h.case);
    assert!(j.finished_at.is_none(), "{}: not finished", h.case);
    assert_eq!(j.errors.len(), 1, "{}: one error", h.case);
    let e = &j.errors[0];
    assert_eq!((e.attempt, e.kind), (1, ErrorKind::Retryable), "{}", h.case);
    assert_eq!(e.message, "attempt 1 failed", "{}: message kept", h.case);
    assert_eq!(e.at, h.now(), "{}: error time", h.case);
}

/// A job with the default priority and attempts (which a backend may store implicitly)
/// keeps them through a retry: scheduled, promoted and claimed again.
pub async fn retry_keeps_default_priority_and_attempts(h: Harness) {
    let c = h.enqueue_and_claim(job("plain")).await;
    assert_eq!(c.job.priority, Priority::NORMAL, "{}", h.case);
    assert_eq!(
        c.job.max_attempts,
        NewJob::DEFAULT_MAX_ATTEMPTS,
        "{}",
        h.case
    );
    let at = h.now() + 1_000;
    h.fail(&c.token, FailAction::Retry { retry_at: Some(at) })
        .await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Scheduled, "{}", h.case);
    assert_eq!(
        (j.priority, j.max_attempts),
        (Priority::NORMAL, NewJob::DEFAULT_MAX_ATTEMPTS),
        "{}: defaults kept",
        h.case
    );
    h.advance(Duration::from_secs(1));
    let again = h.claim_id("default", c.job.id).await;
    assert_eq!(again.job.attempt, 2, "{}", h.case);
    assert_eq!(again.job.priority, Priority::NORMAL, "{}", h.case);
}

/// The last attempt failing ends the job dead, finished, with one error per attempt.
pub async fn out_of_attempts_goes_dead_with_history(h: Harness) {
    let id = h.enqueue(job("doomed").max_attempts(3)).await.id;
    fail_until_dead(&h, "default", id, 3).await;
    let j = h.get(id).await;
    assert_eq!(j.state, JobState::Dead, "{}", h.case);
    assert_eq!(j.attempt, 3, "{}", h.case);
    assert!(j.finished_at.is_some(), "{}", h.case);
    assert!(j.lease.is_none(), "{}", h.case);
    let attempts: Vec<u32> = j.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "{}: error history", h.case);
    h.claim_none("default", "dead jobs are not claimed").await;
}

/// A retry with no time (the policy said stop) ends the job dead even with attempts left.
pub async fn retry_without_time_goes_dead(h: Harness) {
    let c = h.enqueue_and_claim(job("x").max_attempts(10)).await;
    h.fail(&c.token, FailAction::Retry { retry_at: None }).await;
    h.assert_state(c.job.id, JobState::Dead, "policy gave up")
        .await;
}

/// A fatal failure ends the job dead at once, with the error recorded.
pub async fn fatal_goes_dead(h: Harness) {
    let c = h.enqueue_and_claim(job("x").max_attempts(10)).await;
    h.fail(&c.token, FailAction::Dead).await;
    let j = h.get(c.job.id).await;
    assert_eq!(j.state, JobState::Dead, "{}", h.case);
    assert_eq!(j.errors.len(), 1, "{}", h.case);
    assert_eq!(j.errors[0].kind, ErrorKind::Fatal, "{}", h.case);
}

/// Replaying a dead job by id: `queued`, attempt back to 0, errors kept, claimable now, and
/// it gets its full attempts again.
pub async fn replay_by_id_resets_attempts_keeps_errors(h: Harness) {
    let id = h.enqueue(job("doomed").max_attempts(2)).await.id;
    fail_until_dead(&h, "default", id, 2).await;
    let moved = h.retry_ids(vec![id]).await.unwrap();
    assert_eq!(moved, vec![id], "{}", h.case);
    let j = h.get(id).await;
    assert_eq!(j.state, JobState::Queued, "{}", h.case);
    assert_eq!(j.attempt, 0, "{}: attempts restart", h.case);
    assert_eq!(j.errors.len(), 2, "{}: history kept", h.case);
    assert!(j.finished_at.is_none(), "{}: no longer finished", h.case);
    let c = h.claim_id("default", id).await;
    assert_eq!(c.job.attempt, 1, "{}", h.case);
    h.fail(
        &c.token,
        FailAction::Retry {
            retry_at: Some(h.now()),
        },
    )
    .await;
    h.assert_state(id, JobState::Scheduled, "a second attempt is allowed again")
        .await;
}

/// Replaying the DLQ by filter moves only matching dead jobs, at most `limit`.
pub async fn replay_by_filter(h: Harness) {
    let mut dead = Vec::new();
    for (q, kind) in [("q1", "a"), ("q1", "a"), ("q1", "b"), ("q2", "a")] {
        let id = h.enqueue(job(kind).queue(q)).await.id;
        h.claim_and_fail(q, id, FailAction::Dead).await;
        dead.push(id);
    }
    let mut moved = h
        .backend
        .job_retry(RetryParams {
            target: RetryTarget::Dead {
                queue: Some("q1".into()),
                kind: Some("a".into()),
            },
            limit: 100,
        })
        .await
        .unwrap();
    moved.sort();
    let mut want = vec![dead[0], dead[1]];
    want.sort();
    assert_eq!(moved, want, "{}: q1/a only", h.case);
    h.assert_state(dead[2], JobState::Dead, "other kind").await;
    h.assert_state(dead[3], JobState::Dead, "other queue").await;
    let one = h
        .backend
        .job_retry(RetryParams {
            target: RetryTarget::Dead {
                queue: None,
                kind: None,
            },
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1, "{}: limit 1", h.case);
    let rest = h
        .backend
        .job_retry(RetryParams {
            target: RetryTarget::Dead {
                queue: None,
                kind: None,
            },
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1, "{}: the last dead job", h.case);
    for id in dead {
        h.assert_state(id, JobState::Queued, "replayed").await;
    }
}

/// The DLQ filter takes dead jobs only, not cancelled or skipped ones.
pub async fn replay_filter_takes_only_dead_jobs(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h.enqueue(job("b").depends_on([a])).await.id;
    h.cancel(a).await.unwrap();
    h.assert_state(b, JobState::Skipped, "dependent of cancelled")
        .await;
    let moved = h
        .backend
        .job_retry(RetryParams {
            target: RetryTarget::Dead {
                queue: None,
                kind: None,
            },
            limit: 100,
        })
        .await
        .unwrap();
    assert!(moved.is_empty(), "{}: nothing dead: {moved:?}", h.case);
    h.assert_state(a, JobState::Cancelled, "untouched").await;
}

/// Retrying a job that is not dead, cancelled or skipped is refused (`InvalidTransition`
/// naming its state) and changes nothing.
pub async fn retry_refuses_live_jobs(h: Harness) {
    let queued = h.enqueue(job("q")).await.id;
    let scheduled = h.enqueue(job("s").run_at(h.now() + 60_000)).await.id;
    let blocked = h.enqueue(job("b").depends_on([queued])).await.id;
    let running = h.enqueue(job("r").queue("other")).await.id;
    h.claim_id("other", running).await;
    let done = h.enqueue(job("d").queue("done")).await.id;
    let c = h.claim_id("done", done).await;
    h.complete(&c.token).await;
    for (id, from) in [
        (queued, JobState::Queued),
        (scheduled, JobState::Scheduled),
        (blocked, JobState::Blocked),
        (running, JobState::Running),
        (done, JobState::Succeeded),
    ] {
        let before = h.get(id).await;
        expect_err!(
            h,
            h.retry_ids(vec![id]).await,
            Error::InvalidTransition { id: got, from: f, .. } if got == id && f == from,
            format!("retry a {from} job")
        );
        assert_eq!(h.get(id).await, before, "{}: {from} job unchanged", h.case);
    }
}

/// Retrying an id that does not exist is `JobNotFound`.
pub async fn retry_unknown_id_is_not_found(h: Harness) {
    let ghost = JobId::new();
    expect_err!(h, h.retry_ids(vec![ghost]).await, Error::JobNotFound(id) if id == ghost, "unknown id");
}

/// A retry by ids where one id is not retryable fails as a whole and moves none.
pub async fn retry_with_one_bad_id_changes_nothing(h: Harness) {
    let dead = h.enqueue(job("d")).await.id;
    h.claim_and_fail("default", dead, FailAction::Dead).await;
    let queued = h.enqueue(job("q")).await.id;
    let res = h.retry_ids(vec![dead, queued]).await;
    expect_err!(h, res, ref e if is_input_error(e), "mixed ids");
    h.assert_state(dead, JobState::Dead, "not moved").await;
    let res = h.retry_ids(vec![dead, JobId::new()]).await;
    expect_err!(h, res, ref e if is_input_error(e), "dead + unknown");
    h.assert_state(dead, JobState::Dead, "not moved").await;
}
