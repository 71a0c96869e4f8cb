use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Context;
use crate::model::{Codec, Payload, RetryPolicy, TaskError};
use crate::task::Task;

/// A type-erased job handler: what the worker calls for one kind. [`Task`]s become handlers
/// through [`TaskHandler`]; built-in executors (shell, http) implement it directly on raw
/// payloads.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt. `Ok(Some(result))` stores a result; `Ok(None)` stores none.
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError>;

    /// The retry policy for jobs of this kind that do not carry their own; `None` means the
    /// worker's default (see `WorkerBuilder::default_retry`). Resolution order: the job's
    /// own policy, then this, then the worker's default.
    fn retry_policy(&self) -> Option<RetryPolicy> {
        None
    }

    /// The per-attempt timeout for jobs that do not carry their own; `None` means the
    /// worker's default.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

/// Adapts a typed [`Task`] to [`Handler`]: decodes the input, encodes the output.
pub struct TaskHandler<T: Task> {
    task: Arc<T>,
    codec: Codec,
    _t: PhantomData<fn() -> T>,
}

impl<T: Task> TaskHandler<T> {
    /// Wraps a task; results are encoded with `codec`.
    pub fn new(task: T, codec: Codec) -> Self {
        TaskHandler {
            task: Arc::new(task),
            codec,
            _t: PhantomData,
        }
    }
}

impl<T: Task> std::fmt::Debug for TaskHandler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskHandler({})", T::KIND)
    }
}

#[async_trait]
impl<T: Task> Handler for TaskHandler<T> {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let input: T::Input = payload
            .decode()
            .map_err(|e| TaskError::Fatal(format!("cannot decode {} payload: {e}", T::KIND)))?;
        let out = self.task.run(&ctx, input).await?;
        // `()` means "no result": store nothing rather than a JSON `null` per job.
        if TypeId::of::<T::Output>() == TypeId::of::<()>() {
            return Ok(None);
        }
        let encoded = Payload::encode(&out, &self.codec)
            .map_err(|e| TaskError::Fatal(format!("cannot encode {} result: {e}", T::KIND)))?;
        Ok(Some(encoded))
    }

    fn retry_policy(&self) -> Option<RetryPolicy> {
        Some(T::retry_policy())
    }

    fn timeout(&self) -> Option<Duration> {
        T::timeout()
    }
}
