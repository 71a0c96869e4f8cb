//! One claimed job, from waiting for a run slot to handing its outcome to the acker.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::ack::Ack;
use super::run_queue::{Grant, Ticket};
use super::shared::Shared;
use super::{Context, Handler};
use crate::backend::{ClaimedJob, FailAction, LeaseToken};
use crate::model::{ErrorKind, Job, Payload, TaskError};
use crate::pipeline::{Attempt, AttemptEnd, Next, Stop};

/// The task of one claimed job.
pub(super) async fn run_job(
    s: Arc<Shared>,
    claimed: ClaimedJob,
    ticket: Ticket,
    cancel: CancellationToken,
) {
    let ClaimedJob { job, token } = claimed;
    let span = crate::telemetry::run_span(&job, token.attempt);
    async move {
        let id = job.id;
        let (kind, queue, attempt_no) = (job.kind.clone(), job.queue.clone(), token.attempt);
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
                send(&s, Ack::Release(token), tracing::Span::none());
            }
            return;
        };

        // The post-claim pipeline: a workflow task is prepared first (its templates
        // rendered from upstream results, or decided without a handler: skip, fan-out,
        // fan-in, wait for a slot); the terms (retry policy, result retention) are fixed.
        let mut job = job;
        let prepared = s.pipeline.before(&mut job).await;
        let handler = s.handlers.get(&job.kind).cloned();
        let terms = s
            .pipeline
            .terms(&job, handler.as_ref().and_then(|h| h.retry_policy()))
            .await;
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
        let end = AttemptEnd {
            token,
            attempt,
            stop,
            started_at,
        };
        let next = s.pipeline.after(&terms, end, s.clock.now_ms());
        log_outcome(&next, elapsed);
        let complete = |outcome: &str| {
            tracing::info_span!(
                "quern.complete",
                job_id = %id,
                kind = %kind,
                queue = %queue,
                attempt = attempt_no,
                outcome,
                stored = tracing::field::Empty,
            )
        };
        match next {
            Next::Discard => s.leases.remove(id),
            Next::Release(token) => send(&s, Ack::Release(token), complete("released")),
            Next::Complete(c) => send(&s, Ack::Complete(c), complete("succeeded")),
            Next::Fail(f) => {
                let outcome = match f.action {
                    FailAction::Snooze { .. } => "snoozed",
                    FailAction::RateLimited { .. } => "rate_limited",
                    _ => "failed",
                };
                send(&s, Ack::Fail(f), complete(outcome))
            }
        }
    }
    .instrument(span)
    .await
}

/// Hands an outcome to the acker with its `quern.complete` span, which stays open until the
/// store has recorded the outcome.
fn send(s: &Shared, ack: Ack, span: tracing::Span) {
    let id = ack.token().job_id;
    if s.acks.send((ack, span)).is_err() {
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
    let ctx = Context::with_logs(
        Arc::clone(&s.backend),
        job,
        token,
        s.cfg.lease,
        s.codec,
        cancel.clone(),
        s.logs.clone(),
    );
    let attempt = run_handler(s, handler, ctx.clone(), payload, limit, cancel).await;
    // A reader that sees the outcome must find every line the attempt wrote.
    ctx.flush_logs().await;
    attempt
}

/// The handler's future under its timeout and cancellation.
async fn run_handler(
    s: &Shared,
    handler: &dyn Handler,
    ctx: Context,
    payload: Payload,
    limit: Option<Duration>,
    cancel: &CancellationToken,
) -> Attempt {
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
        Next::Release(_) => tracing::info!(
            elapsed_ms = ms,
            "job interrupted by shutdown; lease given back"
        ),
        Next::Complete(_) => tracing::debug!(elapsed_ms = ms, "job succeeded"),
        Next::Fail(f) => match (&f.action, f.error_kind) {
            (FailAction::Snooze { run_at }, _) => {
                tracing::debug!(elapsed_ms = ms, run_at, "job snoozed")
            }
            (FailAction::RateLimited { run_at }, _) => {
                tracing::info!(
                    elapsed_ms = ms,
                    run_at,
                    "job rate limited; its group or kind is held"
                )
            }
            (action, ErrorKind::Panic) => {
                tracing::error!(elapsed_ms = ms, ?action, error = %f.message, "job panicked")
            }
            (action, kind) => {
                tracing::warn!(elapsed_ms = ms, ?action, ?kind, error = %f.message, "job failed")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42u8), "panic with a non-string payload");
    }
}
