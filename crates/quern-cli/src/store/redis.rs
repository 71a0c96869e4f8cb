//! Adapter to the Redis backend crate (`redis://`, `rediss://`, `redis+cluster://`).

use std::sync::Arc;

use quern::{Backend, SystemClock};
use quern_redis::RedisBackend;

use super::options::StoreOptions;
use super::redact::{redact, scrub};
use crate::error::{CliError, CliResult};

/// Connects (and pings) the Redis named by `url`.
pub async fn open(url: &str, opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    // rediss:// needs a rustls crypto provider; the redis crate leaves the choice to the
    // application. A second install (the http executor does the same) fails harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let limits = quern::model::Limits {
        max_payload_bytes: opts.max_payload_bytes,
    };
    // `[redis] max_memory`, unless the URL sets its own.
    let with_budget;
    let url = match opts.redis_max_memory {
        Some(n) if !url.contains("max_memory=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            with_budget = format!("{url}{sep}max_memory={n}");
            with_budget.as_str()
        }
        _ => url,
    };
    let backend = RedisBackend::connect_with_limits(url, Arc::new(SystemClock), limits)
        .await
        .map_err(|e| match e {
            // The backend's message quotes the URL: never echo its password.
            quern::Error::InvalidArgument(m) => {
                CliError::usage("invalid_store_url", scrub(&m, url))
            }
            other => CliError::failed(
                "store_unavailable",
                scrub(&format!("cannot open store {}: {other}", redact(url)), url),
            ),
        })?;
    Ok(Arc::new(backend))
}

/// Reads the memory a Redis store uses, for `quern bench`'s memory per queued job.
pub struct MemoryProbe(RedisBackend);

impl MemoryProbe {
    /// A probe for `url` when it names a single-node Redis (`None` for other stores, and for
    /// Redis Cluster, whose memory is spread over the masters).
    pub async fn open(url: &str) -> Option<MemoryProbe> {
        let scheme = url.split_once(':').map(|(s, _)| s)?;
        if scheme != "redis" && scheme != "rediss" {
            return None;
        }
        let b = RedisBackend::connect(url, Arc::new(SystemClock))
            .await
            .ok()?;
        Some(MemoryProbe(b))
    }

    /// Redis's `used_memory` in bytes, if it could be read.
    pub async fn used(&self) -> Option<u64> {
        self.0.used_memory().await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_echoed() {
        assert_eq!(
            super::redact("redis://u:secret@h:6379/0"),
            "redis://…@h:6379/0"
        );
        assert_eq!(super::redact("redis://h:6379"), "redis://h:6379");
    }
}
