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

/// Decodes a `T` input stored with payload version `stored`: as it is when that is `T`'s
/// version (or 0, none stated), upcast step by step through [`Task::upcast`] when it is
/// older, and a fatal error when it is newer than `T` knows.
pub(crate) fn decode_input<T: Task>(payload: &Payload, stored: u32) -> Result<T::Input, TaskError> {
    let current = T::VERSION;
    if stored == 0 || stored == current {
        return payload
            .decode()
            .map_err(|e| TaskError::Fatal(format!("cannot decode {} payload: {e}", T::KIND)));
    }
    if stored > current {
        return Err(TaskError::Fatal(format!(
            "{} payload version {stored} is newer than this worker's definition (version \
             {current}); run a worker built with the newer task",
            T::KIND
        )));
    }
    let mut value: serde_json::Value = payload.decode().map_err(|e| {
        TaskError::Fatal(format!(
            "cannot decode {} payload of version {stored}: {e}",
            T::KIND
        ))
    })?;
    for from in stored..current {
        value = T::upcast(from, value).map_err(|e| {
            TaskError::Fatal(format!(
                "cannot upcast {} payload from version {from} to {}: {e}",
                T::KIND,
                from + 1
            ))
        })?;
    }
    serde_json::from_value(value).map_err(|e| {
        TaskError::Fatal(format!(
            "cannot decode {} payload upcast from version {stored} to {current}: {e}",
            T::KIND
        ))
    })
}

#[async_trait]
impl<T: Task> Handler for TaskHandler<T> {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let input = decode_input::<T>(&payload, ctx.job().version)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V3 {
        first: String,
        last: String,
        tier: u8,
    }

    /// v1 `{"name": "Ada Lovelace"}`, v2 split the name, v3 added a tier.
    struct Greet;
    impl Task for Greet {
        const KIND: &'static str = "greet";
        const VERSION: u32 = 3;
        type Input = V3;
        type Output = ();
        async fn run(&self, _: &Context, _: V3) -> Result<(), TaskError> {
            Ok(())
        }
        fn upcast(from: u32, mut p: serde_json::Value) -> Result<serde_json::Value, String> {
            match from {
                1 => {
                    let name = p["name"].as_str().ok_or("v1 payload has no name")?;
                    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
                    Ok(serde_json::json!({"first": first, "last": last}))
                }
                2 => {
                    p["tier"] = 1.into();
                    Ok(p)
                }
                other => Err(format!("unknown version {other}")),
            }
        }
    }

    fn json(v: serde_json::Value) -> Payload {
        Payload::from_json_value(&v, &Codec::default()).unwrap()
    }

    fn fatal(r: Result<V3, TaskError>) -> String {
        match r {
            Err(TaskError::Fatal(m)) => m,
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }

    #[test]
    fn older_payloads_are_upcast_step_by_step() {
        let want = V3 {
            first: "Ada".into(),
            last: "Lovelace".into(),
            tier: 1,
        };
        let v1 = json(serde_json::json!({"name": "Ada Lovelace"}));
        assert_eq!(decode_input::<Greet>(&v1, 1).unwrap(), want);
        let v2 = json(serde_json::json!({"first": "Ada", "last": "Lovelace"}));
        assert_eq!(decode_input::<Greet>(&v2, 2).unwrap(), want);
        let v3 = json(serde_json::json!({"first": "Ada", "last": "Lovelace", "tier": 1}));
        assert_eq!(decode_input::<Greet>(&v3, 3).unwrap(), want);
        // 0 states no version: decoded as the current one, never upcast.
        assert_eq!(decode_input::<Greet>(&v3, 0).unwrap(), want);
    }

    #[test]
    fn newer_and_unupgradable_payloads_fail_as_fatal() {
        let v3 = json(serde_json::json!({"first": "Ada", "last": "L", "tier": 1}));
        let m = fatal(decode_input::<Greet>(&v3, 4));
        assert!(
            m.contains("payload version 4 is newer") && m.contains("(version 3)"),
            "{m}"
        );
        let bad_v1 = json(serde_json::json!({"nom": "Ada"}));
        let m = fatal(decode_input::<Greet>(&bad_v1, 1));
        assert!(
            m.contains("from version 1 to 2: v1 payload has no name"),
            "{m}"
        );
    }
}
