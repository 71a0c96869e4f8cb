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
    match kind(url)? {
        Kind::Sqlite => Ok(Arc::new(sqlite::open(url, mode, opts).await?)),
        Kind::Redis => redis::open(url, opts).await,
    }
}

/// Opens an SQLite store for the commands that work on its file (`quern maintain`). Any
/// other store is refused as bad usage (exit 2), saying what to use instead.
pub async fn open_sqlite(
    url: &str,
    mode: Open,
    opts: StoreOptions,
) -> CliResult<quern_sqlite::SqliteBackend> {
    match kind(url)? {
        Kind::Sqlite => sqlite::open(url, mode, opts).await,
        Kind::Redis => Err(CliError::usage(
            "sqlite_only",
            "quern maintain works on SQLite stores only; look after a Redis store with \
             Redis's own tools (redis-cli INFO, MEMORY DOCTOR, BGREWRITEAOF; see \
             docs/operations.md)",
        )),
    }
}

/// The backends a URL can name.
enum Kind {
    Sqlite,
    Redis,
}

fn kind(url: &str) -> CliResult<Kind> {
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
        "sqlite" => Ok(Kind::Sqlite),
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => Ok(Kind::Redis),
        "" => Err(bad("has no scheme")),
        _ => Err(bad(&format!("has an unknown scheme {scheme:?}"))),
    }
}
