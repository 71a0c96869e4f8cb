//! Connecting tests to Redis with a fresh random prefix each.

use quern::SharedClock;
use quern_redis::RedisBackend;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("QUERN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// True when a missing Redis must fail the tests instead of skipping them.
pub fn redis_required() -> bool {
    std::env::var("QUERN_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// A random prefix, so tests never see each other's keys.
pub fn random_prefix() -> String {
    format!("qt{:016x}", fastrand::u64(..))
}

/// Appends `prefix=` to a URL that may already have a query.
pub fn with_prefix(url: &str, prefix: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}prefix={prefix}")
}

/// Connects to the test Redis with a fresh prefix, or returns `None` (after saying so
/// loudly) when Redis is unreachable and not required.
pub async fn connect(clock: SharedClock) -> Option<RedisBackend> {
    let url = with_prefix(&redis_url(), &random_prefix());
    match RedisBackend::connect(&url, clock).await {
        Ok(b) => Some(b),
        Err(e) if !redis_required() => {
            eprintln!(
                "\n*** SKIPPING: Redis at {} is unreachable ({e}); set QUERN_REQUIRE_REDIS=1 to make this a failure ***\n",
                redis_url()
            );
            None
        }
        Err(e) => panic!("Redis at {} is required but unreachable: {e}", redis_url()),
    }
}

/// Deletes a test backend's keys when dropped (best effort; the prefix is random anyway).
/// It opens its own connection on its own runtime: by the time it runs, the test's runtime
/// (which drove the backend's connection) may be gone.
pub struct Cleanup(pub RedisBackend);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let url = self.0.url().to_string();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let clock: SharedClock = std::sync::Arc::new(quern::SystemClock);
                    if let Ok(b) = RedisBackend::connect(&url, clock).await {
                        let _ = b.destroy_all_keys().await;
                    }
                });
            }
        })
        .join();
    }
}
