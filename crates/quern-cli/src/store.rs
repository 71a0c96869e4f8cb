//! Opening a store from its URL. The one place that knows which backends exist: add a scheme
//! here and every command (and `quern bench`) can use it.

use std::sync::Arc;

use quern::Backend;

use crate::error::{CliError, CliResult};

/// What opening may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// Create the store if it does not exist (enqueue, worker, bench).
    Create,
    /// The store must already exist (inspection and admin commands), so a mistyped path
    /// is an error instead of a new empty database.
    Existing,
}

/// Store-wide options taken from settings.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Largest accepted payload in bytes.
    pub max_payload_bytes: usize,
}

/// Opens the store named by `url`:
/// - `sqlite://PATH` (relative; `sqlite:///abs/path` for absolute), with optional
///   `?durability=fsync`, and `sqlite::memory:` (a private in-memory store, useful only
///   within one process, e.g. for `quern bench`);
/// - `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS) and
///   `redis+cluster://host:port[,host:port…]`, with `?prefix=NAME` to share one Redis.
pub async fn open_store(url: &str, mode: Open, opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    let bad = |why: &str| {
        CliError::usage(
            "invalid_store_url",
            format!(
                "store URL {url:?} {why} (expected sqlite://PATH, sqlite::memory: or redis://HOST:PORT)"
            ),
        )
    };
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => crate::sqlite::open(url, mode, opts).await,
        "redis" | "rediss" | "redis+cluster" => crate::redis::open(url, opts).await,
        "" => Err(bad("has no scheme")),
        _ => Err(bad(&format!("has an unknown scheme {scheme:?}"))),
    }
}
