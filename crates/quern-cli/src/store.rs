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
/// - `sqlite://PATH` (relative or absolute; `sqlite:///abs/path` also works) and
///   `sqlite::memory:` (a private in-memory store, useful only within one process);
/// - `redis://`, `rediss://` and `redis+cluster://` once the Redis backend is built in.
pub async fn open_store(url: &str, mode: Open, opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    let bad = |why: &str| {
        CliError::usage(
            "invalid_store_url",
            format!("store URL {url:?} {why} (expected sqlite://PATH or sqlite::memory:)"),
        )
    };
    if url == "sqlite::memory:" {
        return crate::sqlite::open_memory(opts).await;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("has no scheme"));
    };
    match scheme {
        "sqlite" => {
            if rest.is_empty() {
                return Err(bad("has no path"));
            }
            let path = std::path::Path::new(rest);
            if mode == Open::Existing && !path.exists() {
                return Err(CliError::failed(
                    "store_not_found",
                    format!(
                        "no store at {} (enqueue a job or start a worker first, or pass --store)",
                        path.display()
                    ),
                ));
            }
            crate::sqlite::open_file(path, opts).await
        }
        "redis" | "rediss" | "redis+cluster" => Err(CliError::failed(
            "unsupported_store",
            format!("store URL {url:?}: this build of quern has no Redis backend yet"),
        )),
        _ => Err(bad(&format!("has an unknown scheme {scheme:?}"))),
    }
}
