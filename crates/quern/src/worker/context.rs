use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, HeartbeatItem, HeartbeatParams, LeaseToken, LogLevel, NewLogLine};
use crate::model::{Codec, Job, JobId, Payload, Progress};
use crate::{Error, Result};

/// What a handler knows about the attempt it is running, and how it talks back: progress,
/// checkpoints, log lines, and cancellation.
///
/// Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    job: Job,
    token: LeaseToken,
    /// The lease length used when progress or a checkpoint also extends the lease.
    lease: Duration,
    codec: Codec,
    /// Cancelled when the job must stop: its lease was lost (cancelled by an operator,
    /// re-delivered after expiry), it timed out, or the worker is shutting down past its
    /// grace period.
    cancel: CancellationToken,
    /// Where [`Context::log`] sends lines: the worker's log writer. `None` for a context
    /// built with [`Context::new`] outside a worker (lines then only go to `tracing`).
    logs: Option<super::logs::LogSink>,
    /// Set by the first [`Context::log`], so the job task waits for the log writer before
    /// reporting the outcome only when there is something to wait for.
    logged: AtomicBool,
}

impl Context {
    /// Builds a context. The worker does this for each claimed job; tests and custom runners
    /// may too.
    pub fn new(
        backend: Arc<dyn Backend>,
        job: Job,
        token: LeaseToken,
        lease: Duration,
        codec: Codec,
        cancel: CancellationToken,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                backend,
                job,
                token,
                lease,
                codec,
                cancel,
                logs: None,
                logged: AtomicBool::new(false),
            }),
        }
    }

    /// A worker's context: [`Context::log`] lines go to its log writer.
    pub(crate) fn with_logs(
        backend: Arc<dyn Backend>,
        job: Job,
        token: LeaseToken,
        lease: Duration,
        codec: Codec,
        cancel: CancellationToken,
        logs: super::logs::LogSink,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                backend,
                job,
                token,
                lease,
                codec,
                cancel,
                logs: Some(logs),
                logged: AtomicBool::new(false),
            }),
        }
    }

    /// Writes a line to the job's log (`quern jobs logs ID`), stamped with the time and this
    /// attempt. Never waits: the worker stores lines in batches, and before it reports the
    /// job's outcome it waits until the job's lines are stored. A message longer than
    /// [`LogLimits::MAX_LINE_BYTES`](crate::backend::LogLimits::MAX_LINE_BYTES) is cut;
    /// past the per-job caps the oldest lines are dropped. The line is also emitted as a
    /// `tracing` event at debug level.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let message = crate::backend::truncate_log_message(message.into());
        tracing::debug!(job_id = %self.inner.job.id, %level, "{message}");
        let Some(sink) = &self.inner.logs else {
            return;
        };
        self.inner.logged.store(true, Ordering::Relaxed);
        let line = NewLogLine {
            at: sink.clock.now_ms(),
            level,
            attempt: self.inner.token.attempt,
            message,
        };
        // The writer only stops after every job task has ended; a line sent later (from a
        // task the handler spawned) is dropped.
        let _ = sink
            .tx
            .send(super::logs::LogMsg::Line(self.inner.job.id, line));
    }

    /// Waits until the lines written so far are stored (nothing to wait for if none were).
    pub(crate) async fn flush_logs(&self) {
        if self.inner.logged.load(Ordering::Relaxed)
            && let Some(sink) = &self.inner.logs
        {
            sink.flush().await;
        }
    }

    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.inner.job.id
    }

    /// This attempt's number (1-based).
    pub fn attempt(&self) -> u32 {
        self.inner.token.attempt
    }

    /// The job as claimed.
    pub fn job(&self) -> &Job {
        &self.inner.job
    }

    /// The lease token of this attempt.
    pub fn token(&self) -> &LeaseToken {
        &self.inner.token
    }

    /// The backend the job came from.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// Reports progress (0–100) and extends the lease. Returns `LeaseLost` (and cancels this
    /// context) if the job was taken away.
    pub async fn progress(&self, percent: f32, message: Option<String>) -> Result<()> {
        let progress = Progress {
            percent: percent.clamp(0.0, 100.0),
            message,
        };
        self.send(Some(progress), None).await
    }

    /// Saves a checkpoint and extends the lease. If this attempt dies, the next one starts
    /// with [`Context::last_checkpoint`] returning this value.
    pub async fn checkpoint<T: Serialize + ?Sized>(&self, state: &T) -> Result<()> {
        let payload = Payload::encode(state, &self.inner.codec)?;
        self.send(None, Some(payload)).await
    }

    /// The checkpoint saved by an earlier attempt (or earlier in this one, as claimed), if any.
    pub fn last_checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.inner
            .job
            .checkpoint
            .as_ref()
            .map(|p| p.decode())
            .transpose()
    }

    /// A token cancelled when the job must stop (lease lost, timeout, forced shutdown).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether the job has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Resolves when the job is asked to stop; use in `tokio::select!` for long waits.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    async fn send(&self, progress: Option<Progress>, checkpoint: Option<Payload>) -> Result<()> {
        let item = HeartbeatItem {
            token: self.inner.token.clone(),
            progress,
            checkpoint,
        };
        let mut res = self
            .inner
            .backend
            .job_heartbeat(HeartbeatParams {
                items: vec![item],
                lease: self.inner.lease,
            })
            .await?;
        match res.pop() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                if matches!(e, Error::LeaseLost { .. }) {
                    self.inner.cancel.cancel();
                }
                Err(e)
            }
            None => Err(Error::Storage("heartbeat returned no result".into())),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("job_id", &self.inner.job.id)
            .field("kind", &self.inner.job.kind)
            .field("attempt", &self.inner.token.attempt)
            .finish()
    }
}
