//! The `http` executor: one HTTP request per attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{decode_spec, output_to_result, parse_timeout, tail};
use crate::model::{Codec, Payload, TaskError};
use crate::worker::{Context, Handler};

/// Defaults of the `http` executor.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time limit of one request (connect to last body byte) when the payload sets none.
    pub default_timeout: Duration,
    /// Most bytes of response body kept as the result; a larger body fails the attempt.
    pub max_response_bytes: usize,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            default_timeout: Duration::from_secs(30),
            max_response_bytes: Codec::DEFAULT_MAX_BYTES,
            max_redirects: 5,
        }
    }
}

/// The payload of an `http` job.
///
/// ```json
/// {"method": "POST", "url": "https://hooks.example.com/x", "headers": {"X-Key": "…"},
///  "body": {"event": "signup"}, "timeout": "10s"}
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSpec {
    /// `GET`, `POST`, … Default `POST` when there is a body, `GET` otherwise.
    method: Option<String>,
    /// An `http://` or `https://` URL.
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A string is sent as-is; any other JSON value is sent as JSON (with
    /// `content-type: application/json` unless a header sets it).
    body: Option<serde_json::Value>,
    /// Time limit (`"10s"` or milliseconds).
    timeout: Option<serde_json::Value>,
}

/// Sends one request per attempt. A 2xx response succeeds with the body as the result (the
/// JSON value when the body is JSON); 5xx, 408, 429, connection errors and timeouts are
/// retryable; any other status is fatal, since sending the same request again will get the
/// same answer.
#[derive(Debug)]
pub struct HttpExecutor {
    client: reqwest::Client,
    config: HttpConfig,
    codec: Codec,
}

impl HttpExecutor {
    /// Builds the executor and its connection pool (TLS through rustls with the system's
    /// root certificates).
    pub fn new(config: HttpConfig, codec: Codec) -> crate::Result<Self> {
        // reqwest is built without a default crypto provider (to avoid compiling aws-lc);
        // ring is installed process-wide once. A second install fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(config.max_redirects))
            .user_agent(concat!("quern/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                crate::Error::InvalidArgument(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(HttpExecutor {
            client,
            config,
            codec,
        })
    }
}

#[async_trait]
impl Handler for HttpExecutor {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let spec: HttpSpec = decode_spec("http", &payload)?;
        let url = reqwest::Url::parse(&spec.url)
            .map_err(|e| TaskError::Fatal(format!("bad http payload: url {:?}: {e}", spec.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TaskError::Fatal(format!(
                "bad http payload: url scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let method_name = spec
            .method
            .clone()
            .unwrap_or_else(|| if spec.body.is_some() { "POST" } else { "GET" }.into())
            .to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method_name.as_bytes())
            .map_err(|_| TaskError::Fatal(format!("bad http payload: method {method_name:?}")))?;
        let timeout = parse_timeout(&spec.timeout)?.unwrap_or(self.config.default_timeout);

        let mut req = self.client.request(method, url.clone()).timeout(timeout);
        let has_content_type = spec
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in &spec.headers {
            req = req.header(k, v);
        }
        match spec.body {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => req = req.body(s),
            Some(v) => {
                if !has_content_type {
                    req = req.header("content-type", "application/json");
                }
                req = req.body(v.to_string());
            }
        }
        let target = format!("{method_name} {}", redact(&url));
        let send = async {
            let resp = req.send().await.map_err(|e| send_error(&target, &e))?;
            let status = resp.status();
            let body = read_body(resp, self.config.max_response_bytes)
                .await
                .map_err(|e| send_error(&target, &e))?;
            Ok::<_, TaskError>((status, body))
        };
        let (status, body) = tokio::select! {
            r = send => r?,
            () = ctx.cancelled() => {
                return Err(TaskError::retryable(format!("{target} was stopped: the job was cancelled or its lease lost")));
            }
        };
        let Some(body) = body else {
            return Err(TaskError::Fatal(format!(
                "{target}: response body is larger than {} bytes",
                self.config.max_response_bytes
            )));
        };
        if status.is_success() {
            return output_to_result(&body, &self.codec);
        }
        let msg = format!("{target} answered {status}: {}", tail(&body, 1024));
        if status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(TaskError::Retryable(msg))
        } else {
            Err(TaskError::Fatal(msg))
        }
    }
}

/// Reads the body, or `None` once it passes `limit` bytes.
async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
        if buf.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(buf))
}

/// Classifies a transport error: timeouts and connection trouble may pass, a request that
/// cannot even be built will not.
fn send_error(target: &str, e: &reqwest::Error) -> TaskError {
    // The full chain says what actually failed ("connection refused"), not just "error
    // sending request".
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_builder() || e.is_redirect() {
        TaskError::Fatal(format!("{target}: {msg}"))
    } else if e.is_timeout() {
        TaskError::Retryable(format!("{target} timed out: {msg}"))
    } else {
        TaskError::Retryable(format!("{target}: {msg}"))
    }
}

/// The URL without credentials or query, safe for error messages stored in the job.
fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_secrets() {
        let u = reqwest::Url::parse("https://me:pw@example.com/hook?token=abc").unwrap();
        assert_eq!(redact(&u), "https://example.com/hook");
    }
}
