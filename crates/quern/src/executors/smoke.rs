//! Tiny executors for smoke tests, demos and benchmarks.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::decode_spec;
use crate::model::{Payload, TaskError};
use crate::worker::{Context, Handler};

/// `quern.noop`: succeeds at once without reading its payload, so a benchmark measures the
/// queue and not the handler.
#[derive(Debug, Default)]
pub struct NoopExecutor;

#[async_trait]
impl Handler for NoopExecutor {
    async fn run(&self, _ctx: Context, _payload: Payload) -> Result<Option<Payload>, TaskError> {
        Ok(None)
    }
}

/// `quern.sleep`: sleeps `{"ms": N}` milliseconds (stopping early if the job is cancelled),
/// then succeeds.
#[derive(Debug, Default)]
pub struct SleepExecutor;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepSpec {
    ms: u64,
}

#[async_trait]
impl Handler for SleepExecutor {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let spec: SleepSpec = decode_spec("quern.sleep", &payload)?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(spec.ms)) => Ok(None),
            () = ctx.cancelled() => Err(TaskError::retryable("sleep interrupted: the job was cancelled or its lease lost")),
        }
    }
}

/// `quern.fail`: fails every attempt; `{"fatal": true}` sends the job straight to the DLQ,
/// otherwise it is retried by its policy. An optional `"message"` is recorded.
#[derive(Debug, Default)]
pub struct FailExecutor;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FailSpec {
    #[serde(default)]
    fatal: bool,
    message: Option<String>,
}

#[async_trait]
impl Handler for FailExecutor {
    async fn run(&self, _ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        // A null or empty payload means the defaults.
        let spec: FailSpec = if payload.to_json_value().is_ok_and(|v| v.is_null()) {
            FailSpec::default()
        } else {
            decode_spec("quern.fail", &payload)?
        };
        let msg = spec
            .message
            .unwrap_or_else(|| "quern.fail failed as asked".into());
        Err(if spec.fatal {
            TaskError::Fatal(msg)
        } else {
            TaskError::Retryable(msg)
        })
    }
}
