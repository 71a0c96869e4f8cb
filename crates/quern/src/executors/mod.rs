//! Built-in executors: job kinds that run with no user code, for `quern worker` and for
//! embedders who want them. Behind the `executors` cargo feature, so that library users who
//! only need typed tasks do not compile an HTTP client.
//!
//! | kind | what it does |
//! |---|---|
//! | [`shell`](ShellExecutor) | runs a program (no shell in between); off unless allowed |
//! | [`http`](HttpExecutor) | sends an HTTP request |
//! | `quern.noop` | does nothing (benchmarks) |
//! | `quern.sleep` | sleeps `{"ms": N}` (demos, lease tests) |
//! | `quern.fail` | fails, `{"fatal": true}` for a fatal failure (DLQ demos) |
//!
//! Each is a [`Handler`] on the raw payload; [`builtin`] returns them all, keyed by kind.

mod http;
mod shell;
mod smoke;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use self::http::{HttpConfig, HttpExecutor};
pub use self::shell::{ShellConfig, ShellExecutor};
pub use self::smoke::{FailExecutor, NoopExecutor, SleepExecutor};
use crate::model::{Codec, Payload, TaskError};
use crate::worker::Handler;

/// The kind names of the built-in executors.
pub mod kinds {
    /// Runs a program: see [`ShellExecutor`](super::ShellExecutor).
    pub const SHELL: &str = "shell";
    /// Sends an HTTP request: see [`HttpExecutor`](super::HttpExecutor).
    pub const HTTP: &str = "http";
    /// Does nothing and succeeds.
    pub const NOOP: &str = "quern.noop";
    /// Sleeps `{"ms": N}` milliseconds, then succeeds.
    pub const SLEEP: &str = "quern.sleep";
    /// Fails: retryable by default, fatal with `{"fatal": true}`.
    pub const FAIL: &str = "quern.fail";
}

/// Settings of the built-in executors.
#[derive(Clone, Debug, Default)]
pub struct ExecutorConfig {
    /// The `shell` executor's allow-list and defaults.
    pub shell: ShellConfig,
    /// The `http` executor's defaults.
    pub http: HttpConfig,
    /// How results are encoded (format, compression, size limit).
    pub result_codec: Codec,
}

/// Every built-in executor, keyed by its kind, ready to register on a worker.
///
/// Fails only when the HTTP client cannot be built (no TLS roots can be loaded).
pub fn builtin(config: &ExecutorConfig) -> crate::Result<Vec<(&'static str, Arc<dyn Handler>)>> {
    Ok(vec![
        (
            kinds::SHELL,
            Arc::new(ShellExecutor::new(
                config.shell.clone(),
                config.result_codec,
            )),
        ),
        (
            kinds::HTTP,
            Arc::new(HttpExecutor::new(config.http.clone(), config.result_codec)?),
        ),
        (kinds::NOOP, Arc::new(NoopExecutor)),
        (kinds::SLEEP, Arc::new(SleepExecutor)),
        (kinds::FAIL, Arc::new(FailExecutor)),
    ])
}

/// Decodes a payload into an executor's spec. A payload that does not fit is a fatal failure:
/// retrying the same bytes cannot help.
fn decode_spec<T: DeserializeOwned>(kind: &str, payload: &Payload) -> Result<T, TaskError> {
    payload
        .decode::<T>()
        .map_err(|e| TaskError::Fatal(format!("bad {kind} payload: {e}")))
}

/// Turns program output or a response body into a result: the JSON value when the bytes are
/// JSON, otherwise a JSON string (lossy UTF-8). Empty output gives no result.
fn output_to_result(bytes: &[u8], codec: &Codec) -> Result<Option<Payload>, TaskError> {
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let value = serde_json::from_slice::<serde_json::Value>(trimmed)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()));
    Payload::from_json_value(&value, codec)
        .map(Some)
        .map_err(|e| TaskError::Fatal(format!("cannot store the result: {e}")))
}

/// The last `max` bytes of `bytes` as text, starting at a character boundary, for error
/// messages.
fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let text = text.trim();
    if start > 0 {
        format!("…{text}")
    } else {
        text.to_string()
    }
}

/// A duration field in an executor payload: milliseconds or a human string (`"30s"`).
fn parse_timeout(v: &Option<serde_json::Value>) -> Result<Option<Duration>, TaskError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| TaskError::Fatal(format!("timeout {n} must be whole milliseconds"))),
        Some(serde_json::Value::String(s)) => crate::model::parse_duration(s)
            .map(Some)
            .map_err(|e| TaskError::Fatal(format!("bad timeout: {e}"))),
        Some(other) => Err(TaskError::Fatal(format!(
            "timeout must be a duration like \"30s\" or milliseconds, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_becomes_json_or_text() {
        let c = Codec::default();
        let r = output_to_result(b"{\"a\":1}\n", &c).unwrap().unwrap();
        assert_eq!(r.to_json_value().unwrap(), serde_json::json!({"a": 1}));
        let r = output_to_result(b"hello\n", &c).unwrap().unwrap();
        assert_eq!(r.to_json_value().unwrap(), serde_json::json!("hello\n"));
        assert!(output_to_result(b"  \n", &c).unwrap().is_none());
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail(b"abcdef", 3), "…def");
        assert_eq!(tail(b"abc\n", 10), "abc");
    }

    #[test]
    fn timeouts_parse_from_numbers_and_strings() {
        assert_eq!(
            parse_timeout(&Some(serde_json::json!("2s"))).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_timeout(&Some(serde_json::json!(250))).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_timeout(&Some(serde_json::json!("soon"))).is_err());
        assert!(parse_timeout(&Some(serde_json::json!(true))).is_err());
        assert_eq!(parse_timeout(&None).unwrap(), None);
    }
}
