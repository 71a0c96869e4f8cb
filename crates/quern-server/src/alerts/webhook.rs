//! Sending a notice to a rule's webhook: a JSON POST signed with HMAC-SHA256, retried with
//! exponential backoff (bounded) on a connection error, a timeout, 408, 429 or a 5xx. Each
//! delivery runs in its own task, so a slow receiver never delays the evaluation.

use std::time::Duration;

/// The header carrying `sha256=<hex of HMAC-SHA256(secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "X-Quern-Signature";
/// The header carrying the send time (ms since the epoch; also `sent_at` in the body, which
/// the signature covers).
pub const TIMESTAMP_HEADER: &str = "X-Quern-Timestamp";

/// How hard a delivery tries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each later one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The client every delivery shares.
pub fn client() -> Result<reqwest::Client, String> {
    // reqwest is built without a default crypto provider; ring is installed process-wide
    // once (a second install fails harmlessly), as the http executor does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("quern/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// POSTs `body` until the receiver answers 2xx or the attempts run out; says how it ended.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    sent_at: i64,
    body: String,
    policy: &RetryPolicy,
    alert: &str,
) -> bool {
    let signature = sign(secret, body.as_bytes());
    let mut delay = policy.first_delay;
    for attempt in 1..=policy.attempts.max(1) {
        let sent = client
            .post(url)
            .timeout(policy.timeout)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .header(TIMESTAMP_HEADER, sent_at.to_string())
            .body(body.clone())
            .send()
            .await;
        let why = match sent {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(target: "quern_alerts", alert, attempt, "webhook delivered");
                return true;
            }
            Ok(r) => {
                let s = r.status();
                if !(s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429) {
                    tracing::error!(target: "quern_alerts", alert, status = s.as_u16(), "webhook refused the notice; not retrying");
                    return false;
                }
                format!("status {}", s.as_u16())
            }
            Err(e) => e.to_string(),
        };
        if attempt == policy.attempts.max(1) {
            tracing::error!(target: "quern_alerts", alert, attempts = attempt, error = %why, "webhook delivery failed; giving up");
            return false;
        }
        tracing::warn!(target: "quern_alerts", alert, attempt, error = %why, retry_in_ms = delay.as_millis() as u64, "webhook delivery failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(policy.max_delay);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
