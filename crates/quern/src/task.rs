//! The typed job API: a [`Task`] is a job kind with a serde input and output.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Priority, RetryPolicy, TaskError};
use crate::worker::Context;

/// A kind of job: a stable name, a typed input and output, and defaults for where and how it
/// runs. Implement it on a struct holding what the handler needs (a database pool, a client).
///
/// The defaults apply when the enqueue call does not override them.
pub trait Task: Send + Sync + 'static {
    /// The stable kind string stored with every job. Renaming it orphans queued jobs.
    const KIND: &'static str;
    /// The payload, serialized at enqueue.
    type Input: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The result, stored when the job succeeds. Use `()` for none.
    type Output: Serialize + Send + 'static;

    /// The payload schema version this definition writes: stored with every job enqueued
    /// through [`Client::enqueue`](crate::Client::enqueue). Raise it when `Input` changes in a
    /// way old payloads no longer decode into, and teach [`Task::upcast`] the step from the
    /// previous version. A job stored with an older version is upcast step by step before
    /// the handler sees it; a job stored with a newer version than this fails as fatal
    /// (this worker cannot know its shape). A stored version 0 means the producer stated none
    /// (a raw job from the CLI, REST or a workflow file without `payload_version`): it is
    /// decoded as the current version.
    const VERSION: u32 = 1;

    /// Upgrades a payload stored with version `from` to version `from + 1`, as JSON. The
    /// worker calls it for each step from the stored version up to [`Task::VERSION`], then
    /// decodes `Input` from the result. An `Err` fails the job as fatal with the message
    /// (retrying would meet the same payload). The default knows no older version.
    fn upcast(from: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = payload;
        Err(format!("no upcaster from payload version {from}"))
    }

    /// Runs one attempt.
    fn run(
        &self,
        ctx: &Context,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, TaskError>> + Send;

    /// Default queue. `"default"` unless overridden.
    fn queue() -> &'static str {
        "default"
    }

    /// Default priority. `normal` unless overridden.
    fn priority() -> Priority {
        Priority::NORMAL
    }

    /// Default retry policy: exponential from 1 s, doubling, capped at 1 h, 10% jitter.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Default attempts before the job goes dead.
    fn max_attempts() -> u32 {
        crate::model::NewJob::DEFAULT_MAX_ATTEMPTS
    }

    /// Default per-attempt timeout; `None` means the worker's default.
    fn timeout() -> Option<Duration> {
        None
    }
}
