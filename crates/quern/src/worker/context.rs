use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, HeartbeatItem, HeartbeatParams, LeaseToken};
use crate::model::{Codec, Job, JobId, Payload, Progress};
use crate::{Error, Result};

/// What a handler knows about the attempt it is running, and how it talks back: progress,
/// checkpoints, and cancellation.
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
            }),
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
