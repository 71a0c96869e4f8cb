//! One claimed job, from waiting for a run slot to handing its outcome to the acker.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::acker::Ack;
use super::pool::Shared;
use super::run_queue::{Grant, Ticket};
use super::{Context, Handler};
use crate::backend::{ClaimedJob, Completion, FailAction, Failure, LeaseToken};
use crate::clock::Millis;
use crate::model::{ErrorKind, Job, Payload, RetryPolicy, TaskError, format_duration};
use crate::workflow::{Prepared, Preparer};

/// How one attempt ended, before deciding what to tell the backend.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The handler returned `Ok`.
    Succeeded(Option<Payload>),
    /// The handler returned an error.
    Failed(TaskError),
    /// The handler ran past its time limit and was dropped.
    TimedOut(Duration),
    /// The handler panicked; the message is the panic payload.
    Panicked(String),
    /// No handler is registered for the job's kind.
    UnknownKind,
    /// The job was cancelled (lease lost or forced shutdown) and the handler did not
    /// return within the cancel grace, so it was dropped.
    Interrupted,
    /// A workflow job skipped when it came to run (its condition was false): the reason.
    Skipped(String),
    /// A workflow `for_each` job handed its work to these instances.
    Spawned {
        children: Vec<crate::model::NewJob>,
        checkpoint: Payload,
    },
}

impl Attempt {
    /// What the workflow preparer decided, for every outcome but "run the handler".
    fn from_prepared(p: Prepared) -> Option<Attempt> {
        match p {
            Prepared::Run(_) => None,
            Prepared::Complete(result) => Some(Attempt::Succeeded(result)),
            Prepared::Fail(e) => Some(Attempt::Failed(e)),
            Prepared::Skip(reason) => Some(Attempt::Skipped(reason)),
            Prepared::Spawn {
                children,
                checkpoint,
            } => Some(Attempt::Spawned {
                children,
                checkpoint,
            }),
        }
    }
}

/// What to tell the backend about an attempt.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing: the lease is gone (someone else owns the job now).
    Discard,
    /// Give the lease back without counting the attempt (shutdown).
    Release,
    Complete(Option<Payload>),
    Fail {
        action: FailAction,
        kind: ErrorKind,
        message: String,
    },
}

/// Why the job's context was cancelled, if it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Not cancelled (or only by its own timeout).
    No,
    /// The lease was lost: re-delivered, cancelled by an operator, or finished elsewhere.
    LeaseLost,
    /// The worker is shutting down past its grace period.
    Forced,
}

/// Maps an attempt to the backend call, given the policy that applies to it.
pub(crate) fn decide(
    attempt: Attempt,
    stop: Stop,
    policy: &RetryPolicy,
    attempt_no: u32,
    now: Millis,
) -> Next {
    let retry = |kind, message| Next::Fail {
        action: FailAction::Retry {
            retry_at: policy
                .delay(attempt_no)
                .map(|d| now.saturating_add(d.as_millis() as i64)),
        },
        kind,
        message,
    };
    match (stop, attempt) {
        (Stop::LeaseLost, _) => Next::Discard,
        // Work that finished despite the shutdown is kept; anything else is not the job's
        // fault, so the attempt is given back rather than counted.
        (Stop::Forced, Attempt::Succeeded(r)) => Next::Complete(r),
        (Stop::Forced, _) => Next::Release,
        (Stop::No, Attempt::Succeeded(r)) => Next::Complete(r),
        (Stop::No, Attempt::Failed(TaskError::Retryable(m))) => retry(ErrorKind::Retryable, m),
        (Stop::No, Attempt::Failed(TaskError::Fatal(m))) => Next::Fail {
            action: FailAction::Dead,
            kind: ErrorKind::Fatal,
            message: m,
        },
        (Stop::No, Attempt::Failed(TaskError::Snooze(d))) => Next::Fail {
            action: FailAction::Snooze {
                run_at: now.saturating_add(d.as_millis() as i64),
            },
            kind: ErrorKind::Retryable,
            message: format!("snoozed for {}", format_duration(d)),
        },
        (Stop::No, Attempt::Failed(TaskError::Cancel(m))) => Next::Fail {
            action: FailAction::Cancel,
            kind: ErrorKind::Cancelled,
            message: m,
        },
        (Stop::No, Attempt::TimedOut(d)) => retry(
            ErrorKind::Timeout,
            format!("timed out after {}", format_duration(d)),
        ),
        (Stop::No, Attempt::Panicked(m)) => retry(ErrorKind::Panic, format!("panicked: {m}")),
        // Retried like Sidekiq does: a newer worker that knows the kind may pick it up, and
        // max_attempts bounds the cost.
        (Stop::No, Attempt::UnknownKind) => retry(
            ErrorKind::UnknownKind,
            "no handler registered for this kind on the worker that claimed it".into(),
        ),
        // Cancelled without a recorded reason: only `Context` itself does that, after a
        // `LeaseLost` answer to a progress or checkpoint call.
        (Stop::No, Attempt::Interrupted) => Next::Discard,
        (Stop::No, Attempt::Skipped(reason)) => Next::Fail {
            action: FailAction::Skip,
            kind: ErrorKind::Skipped,
            message: reason,
        },
        (
            Stop::No,
            Attempt::Spawned {
                children,
                checkpoint,
            },
        ) => Next::Fail {
            message: format!("spawned {} instances", children.len()),
            action: FailAction::Spawn {
                children,
                checkpoint: Some(checkpoint),
            },
            kind: ErrorKind::Retryable,
        },
    }
}

/// The task of one claimed job.
pub(super) async fn run_job(
    s: Arc<Shared>,
    claimed: ClaimedJob,
    ticket: Ticket,
    cancel: CancellationToken,
) {
    let ClaimedJob { job, token } = claimed;
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        kind = %job.kind,
        queue = %job.queue,
        attempt = token.attempt,
    );
    async move {
        let id = job.id;
        // Wait for a run slot (the most urgent waiting job gets each freed slot). Shutdown,
        // a lost lease or being taken back for a more urgent job first: a job that has not
        // started is given back (or dropped) rather than started late.
        let permit = tokio::select! {
            biased;
            _ = s.stop_claiming.cancelled() => None,
            _ = cancel.cancelled() => None,
            g = ticket.wait() => match g {
                Grant::Run(p) => Some(p),
                Grant::GiveBack => None,
            },
        };
        let Some(permit) = permit else {
            let lost = s.leases.finish_running(id);
            s.slot_freed.notify_one();
            if lost {
                s.leases.remove(id);
            } else {
                tracing::debug!("giving back a job that had not started");
                send(&s, Ack::Release(token));
            }
            return;
        };

        // A workflow task is prepared first: its templates rendered from upstream results,
        // or decided without a handler (skip, fan-out, fan-in, wait for a slot).
        let mut job = job;
        let prepared = if Preparer::wants(&job) {
            match s.preparer.prepare(&job).await {
                Prepared::Run(payload) => {
                    job.payload = payload;
                    None
                }
                other => Attempt::from_prepared(other),
            }
        } else {
            None
        };
        let handler = s.handlers.get(&job.kind).cloned();
        let policy = job
            .retry
            .clone()
            .or_else(|| handler.as_ref().and_then(|h| h.retry_policy()))
            .unwrap_or_else(|| s.cfg.default_retry.clone());
        // The job's own retention wins over the worker's.
        let result_ttl = job.result_ttl.or(s.cfg.result_ttl);
        let attempt_no = token.attempt;
        let started = tokio::time::Instant::now();
        // Stored as the job's `started_at`: the handler starts now, after any wait for a
        // run slot and the workflow preparation (the claim time is the job's `claimed_at`).
        let started_at = Some(s.clock.now_ms());
        tracing::debug!("job started");
        let ran = prepared.is_none() && handler.is_some();
        let attempt = match (prepared, &handler) {
            (Some(decided), _) => decided,
            (None, Some(h)) => execute(&s, h.as_ref(), job, token.clone(), &cancel).await,
            (None, None) => Attempt::UnknownKind,
        };
        drop(permit);
        if ran {
            s.run_times.record(started.elapsed());
        }
        let lost = s.leases.finish_running(id);
        s.slot_freed.notify_one();

        let stop = if lost {
            Stop::LeaseLost
        } else if s.force_stop.is_cancelled() {
            Stop::Forced
        } else if cancel.is_cancelled() && !matches!(attempt, Attempt::TimedOut(_)) {
            Stop::LeaseLost
        } else {
            Stop::No
        };
        let elapsed = started.elapsed();
        let next = decide(attempt, stop, &policy, attempt_no, s.clock.now_ms());
        log_outcome(&next, elapsed);
        match next {
            Next::Discard => s.leases.remove(id),
            Next::Release => send(&s, Ack::Release(token)),
            Next::Complete(result) => send(
                &s,
                Ack::Complete(Completion {
                    token,
                    result,
                    result_ttl,
                    started_at,
                }),
            ),
            Next::Fail {
                action,
                kind,
                message,
            } => send(
                &s,
                Ack::Fail(Failure {
                    token,
                    action,
                    error_kind: kind,
                    message,
                    started_at,
                }),
            ),
        }
    }
    .instrument(span)
    .await
}

fn send(s: &Shared, ack: Ack) {
    let id = ack.token().job_id;
    if s.acks.send(ack).is_err() {
        // Only possible if the acker died; the lease then expires and the job is rescued.
        tracing::error!(job_id = %id, "acknowledgement channel closed; the job will be re-delivered after its lease expires");
        s.leases.remove(id);
    }
}

/// Runs the handler with its timeout, catching panics.
async fn execute(
    s: &Shared,
    handler: &dyn Handler,
    job: Job,
    token: LeaseToken,
    cancel: &CancellationToken,
) -> Attempt {
    let limit = job
        .timeout
        .or_else(|| handler.timeout())
        .or(s.cfg.default_timeout);
    let payload = job.payload.clone();
    let ctx = Context::new(
        Arc::clone(&s.backend),
        job,
        token,
        s.cfg.lease,
        s.codec,
        cancel.clone(),
    );
    let fut = AssertUnwindSafe(handler.run(ctx, payload)).catch_unwind();
    tokio::pin!(fut);
    let deadline = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let from = |r: std::thread::Result<Result<Option<Payload>, TaskError>>| match r {
        Ok(Ok(result)) => Attempt::Succeeded(result),
        Ok(Err(e)) => Attempt::Failed(e),
        Err(panic) => Attempt::Panicked(panic_message(panic.as_ref())),
    };
    tokio::select! {
        biased;
        r = &mut fut => from(r),
        _ = deadline => {
            // Tell anything the handler spawned to stop too; the future itself is dropped.
            cancel.cancel();
            Attempt::TimedOut(limit.unwrap_or_default())
        }
        _ = cancel.cancelled() => {
            // Give a cooperative handler a moment to notice `ctx.cancelled()` and return.
            match tokio::time::timeout(s.cfg.cancel_grace, &mut fut).await {
                Ok(r) => from(r),
                Err(_) => Attempt::Interrupted,
            }
        }
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".into()
    }
}

fn log_outcome(next: &Next, elapsed: Duration) {
    let ms = elapsed.as_millis() as u64;
    match next {
        Next::Discard => tracing::warn!(
            elapsed_ms = ms,
            "lease lost while running; outcome discarded"
        ),
        Next::Release => tracing::info!(
            elapsed_ms = ms,
            "job interrupted by shutdown; lease given back"
        ),
        Next::Complete(_) => tracing::debug!(elapsed_ms = ms, "job succeeded"),
        Next::Fail {
            action: FailAction::Snooze { run_at },
            ..
        } => tracing::debug!(elapsed_ms = ms, run_at, "job snoozed"),
        Next::Fail {
            action,
            kind: ErrorKind::Panic,
            message,
        } => tracing::error!(elapsed_ms = ms, ?action, error = %message, "job panicked"),
        Next::Fail {
            action,
            kind,
            message,
        } => tracing::warn!(elapsed_ms = ms, ?action, ?kind, error = %message, "job failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000;

    fn fixed(ms: u64) -> RetryPolicy {
        RetryPolicy::Fixed {
            delay: Duration::from_millis(ms),
        }
    }

    fn fail_parts(n: Next) -> (FailAction, ErrorKind, String) {
        match n {
            Next::Fail {
                action,
                kind,
                message,
            } => (action, kind, message),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn outcomes_map_to_backend_actions() {
        let p = fixed(500);
        let d = |a| decide(a, Stop::No, &p, 3, NOW);
        assert!(matches!(d(Attempt::Succeeded(None)), Next::Complete(None)));
        let (a, k, m) = fail_parts(d(Attempt::Failed(TaskError::retryable("boom"))));
        assert_eq!(
            a,
            FailAction::Retry {
                retry_at: Some(NOW + 500)
            }
        );
        assert_eq!((k, m.as_str()), (ErrorKind::Retryable, "boom"));
        let (a, k, _) = fail_parts(d(Attempt::Failed(TaskError::fatal("bad input"))));
        assert_eq!((a, k), (FailAction::Dead, ErrorKind::Fatal));
        let (a, _, _) = fail_parts(d(Attempt::Failed(TaskError::snooze(Duration::from_secs(
            7,
        )))));
        assert_eq!(a, FailAction::Snooze { run_at: NOW + 7000 });
        let (a, k, _) = fail_parts(d(Attempt::Failed(TaskError::cancel("nope"))));
        assert_eq!((a, k), (FailAction::Cancel, ErrorKind::Cancelled));
        let (_, k, m) = fail_parts(d(Attempt::TimedOut(Duration::from_secs(2))));
        assert_eq!((k, m.as_str()), (ErrorKind::Timeout, "timed out after 2s"));
        let (_, k, m) = fail_parts(d(Attempt::Panicked("oops".into())));
        assert_eq!((k, m.as_str()), (ErrorKind::Panic, "panicked: oops"));
        let (a, k, _) = fail_parts(d(Attempt::UnknownKind));
        assert_eq!(k, ErrorKind::UnknownKind);
        assert!(matches!(a, FailAction::Retry { retry_at: Some(_) }));
    }

    #[test]
    fn a_policy_that_stops_retrying_means_dead() {
        let (a, _, _) = fail_parts(decide(
            Attempt::Failed(TaskError::retryable("x")),
            Stop::No,
            &RetryPolicy::None,
            1,
            NOW,
        ));
        assert_eq!(a, FailAction::Retry { retry_at: None });
    }

    #[test]
    fn lost_leases_discard_and_forced_stops_release() {
        let p = fixed(1);
        for a in [
            Attempt::Succeeded(None),
            Attempt::Failed(TaskError::fatal("x")),
            Attempt::Interrupted,
        ] {
            assert!(matches!(
                decide(a, Stop::LeaseLost, &p, 1, NOW),
                Next::Discard
            ));
        }
        assert!(matches!(
            decide(Attempt::Succeeded(None), Stop::Forced, &p, 1, NOW),
            Next::Complete(None)
        ));
        assert!(matches!(
            decide(Attempt::Interrupted, Stop::Forced, &p, 1, NOW),
            Next::Release
        ));
        assert!(matches!(
            decide(
                Attempt::Failed(TaskError::retryable("x")),
                Stop::Forced,
                &p,
                1,
                NOW
            ),
            Next::Release
        ));
    }

    #[test]
    fn panic_messages_are_extracted() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42u8), "panic with a non-string payload");
    }
}
