//! The acker: sends job outcomes to the backend in batches.
//!
//! Job tasks never wait for their acknowledgement: they queue it here and free their slot,
//! so the next job can start while the store is still writing. The acker takes everything
//! queued (up to `ack_batch`), sends one `job_complete`, one `job_fail` and one
//! `job_release` call for the lot (concurrently), and only then forgets the leases — until
//! then they keep being heartbeated. While a batch is in flight the next one accumulates,
//! so the batch size grows with the load: the same trick as a database's group commit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ack::Ack;
use super::shared::Shared;
use crate::backend::{CompleteParams, FailParams, ReleaseParams};
use crate::model::JobId;
use crate::{Error, Result};

/// Runs until `close` is cancelled and every queued acknowledgement has been sent.
pub(super) async fn run(
    s: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<(Ack, tracing::Span)>,
    close: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            a = rx.recv() => a,
            // Closing: take what is left, then stop.
            _ = close.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < s.cfg.ack_batch {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        flush(&s, batch).await;
    }
    tracing::debug!("acker stopped");
}

async fn flush(s: &Shared, batch: Vec<(Ack, tracing::Span)>) {
    let mut completes = Vec::new();
    let mut fails = Vec::new();
    let mut releases = Vec::new();
    // Each job's `quern.complete` span, closed once its outcome is recorded (or not).
    let (mut complete_spans, mut fail_spans, mut release_spans) =
        (Vec::new(), Vec::new(), Vec::new());
    for (a, span) in batch {
        match a {
            Ack::Complete(c) => {
                completes.push(c);
                complete_spans.push(span);
            }
            Ack::Fail(f) => {
                fails.push(f);
                fail_spans.push(span);
            }
            Ack::Release(t) => {
                releases.push(t);
                release_spans.push(span);
            }
        }
    }
    let complete_ids: Vec<JobId> = completes.iter().map(|c| c.token.job_id).collect();
    let fail_ids: Vec<JobId> = fails.iter().map(|f| f.token.job_id).collect();
    let release_ids: Vec<JobId> = releases.iter().map(|t| t.job_id).collect();
    let backend = &s.backend;
    let patience = s.cfg.lease;
    let complete = async {
        if completes.is_empty() {
            return Ok(Vec::new());
        }
        with_retry(patience, || {
            backend.job_complete(CompleteParams {
                items: completes.clone(),
            })
        })
        .await
    };
    let fail = async {
        if fails.is_empty() {
            return Ok(Vec::new());
        }
        with_retry(patience, || {
            backend.job_fail(FailParams {
                items: fails.clone(),
            })
        })
        .await
    };
    let release = async {
        if releases.is_empty() {
            return Ok(Vec::new());
        }
        with_retry(patience, || {
            backend.job_release(ReleaseParams {
                tokens: releases.clone(),
            })
        })
        .await
    };
    let (c, f, r) = tokio::join!(complete, fail, release);
    report(s, "complete", &complete_ids, &complete_spans, c);
    report(s, "fail", &fail_ids, &fail_spans, f);
    report(s, "release", &release_ids, &release_spans, r);
}

/// Logs per-item problems, records on each job's `quern.complete` span whether the store
/// took the outcome, and forgets the leases.
fn report(
    s: &Shared,
    what: &str,
    ids: &[JobId],
    spans: &[tracing::Span],
    res: Result<Vec<Result<()>>>,
) {
    match res {
        Ok(items) => {
            for ((id, r), span) in ids.iter().zip(items).zip(spans) {
                match r {
                    Ok(()) => {
                        span.record("stored", "ok");
                    }
                    Err(Error::LeaseLost { .. }) => {
                        span.record("stored", "lease_lost");
                        tracing::warn!(
                            job_id = %id,
                            "lease lost before the outcome was recorded ({what}); outcome discarded"
                        )
                    }
                    Err(e) => {
                        span.record("stored", "error");
                        tracing::warn!(job_id = %id, error = %e, "could not {what} job")
                    }
                }
            }
        }
        Err(e) => {
            for span in spans {
                span.record("stored", "error");
            }
            tracing::error!(
                n = ids.len(),
                error = %e,
                "could not {what} jobs; they will be re-delivered after their leases expire"
            )
        }
    }
    for id in ids {
        s.leases.remove(*id);
    }
}

/// Retries a call that failed with a transient error, backing off from 20 ms, for up to
/// `patience` (the lease length: after that the leases are gone anyway).
async fn with_retry<T, F, Fut>(patience: Duration, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let give_up = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        match call().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() + pause < give_up => {
                tracing::warn!(error = %e, "store unavailable while acknowledging; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_then_given_up() {
        let calls = AtomicU32::new(0);
        let ok = with_retry(Duration::from_secs(5), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Error::Unavailable("down".into()))
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((ok, calls.load(Ordering::SeqCst)), (7, 3));

        let never = with_retry(Duration::from_millis(200), || async {
            Err::<(), _>(Error::Unavailable("down".into()))
        })
        .await;
        assert!(matches!(never, Err(Error::Unavailable(_))));

        let calls = AtomicU32::new(0);
        let fatal = with_retry(Duration::from_secs(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::Storage("corrupt".into()))
        })
        .await;
        assert!(matches!(fatal, Err(Error::Storage(_))));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "permanent errors are not retried"
        );
    }
}
