//! Opening a store from its URL. The one place that knows which backends exist: add a scheme
//! here and every command (and `quern bench`) can use it.
//!
//! Imports go one way: this file picks an adapter (`sqlite.rs`, `redis.rs`), and the adapters
//! use only the leaves they share with it, `options.rs` (what opening may do) and `redact.rs`
//! (a URL's password kept out of messages).

mod options;
mod redact;
mod redis;
mod sqlite;

use std::sync::Arc;

use quern::Backend;

pub use self::options::{Open, StoreOptions};
pub use self::redact::redact;
pub use self::redis::MemoryProbe;
use crate::error::{CliError, CliResult};

/// Opens the store named by `url`:
/// - `sqlite://PATH` (relative; `sqlite:///abs/path` for absolute), with optional
///   `?durability=fsync`, and `sqlite::memory:` (a private in-memory store, useful only
///   within one process, e.g. for `quern bench`);
/// - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS),
///   `redis+cluster://host:port[,host:port…]` and `rediss+cluster://…`, with `?prefix=NAME`
///   to share one Redis.
pub async fn open_store(url: &str, mode: Open, opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    let bad = |why: &str| {
        CliError::usage(
            "invalid_store_url",
            format!(
                "store URL {:?} {why} (expected sqlite://PATH, sqlite::memory:, redis://HOST:PORT, rediss://HOST:PORT or redis+cluster://HOST:PORT,…)",
                redact(url)
            ),
        )
    };
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => sqlite::open(url, mode, opts).await,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => redis::open(url, opts).await,
        "" => Err(bad("has no scheme")),
        _ => Err(bad(&format!("has an unknown scheme {scheme:?}"))),
    }
}
