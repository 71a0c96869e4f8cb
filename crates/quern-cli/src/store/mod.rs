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
        "sqlite" => crate::sqlite::open(url, mode, opts).await,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            crate::redis::open(url, opts).await
        }
        "" => Err(bad("has no scheme")),
        _ => Err(bad(&format!("has an unknown scheme {scheme:?}"))),
    }
}

/// A store URL without its password, for messages, logs and reports.
pub fn redact(url: &str) -> String {
    match userinfo(url) {
        Some(u) => url.replacen(u, "…", 1),
        None => url.to_string(),
    }
}

/// `msg` (an error about the store `url`) without the URL's password.
pub fn scrub(msg: &str, url: &str) -> String {
    match userinfo(url) {
        Some(u) => msg.replace(u, "…"),
        None => msg.to_string(),
    }
}

/// The `user:password` part of a Redis URL, if it has one.
fn userinfo(url: &str) -> Option<&str> {
    if !url.starts_with("redis") {
        return None;
    }
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let at = authority.rfind('@')?;
    Some(&authority[..at]).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{redact, scrub};

    #[test]
    fn passwords_are_not_echoed() {
        assert_eq!(redact("redis://u:secret@h:6379/0"), "redis://…@h:6379/0");
        assert_eq!(
            redact("redis+cluster://u:secret@h:1,h:2/?prefix=a"),
            "redis+cluster://…@h:1,h:2/?prefix=a"
        );
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("sqlite://a@b.db"), "sqlite://a@b.db");
        assert_eq!(
            scrub(
                "bad URL \"redis://:pw@h/?x=1\" (node redis://:pw@h)",
                "redis://:pw@h/?x=1"
            ),
            "bad URL \"redis://…@h/?x=1\" (node redis://…@h)"
        );
    }
}
