//! Adapter to the SQLite backend crate, kept in one file so that its constructor's shape
//! touches nothing else.

use quern_sqlite::{SqliteBackend, SqliteOptions, SqliteUrl};

use super::options::{Open, StoreOptions};
use crate::error::{CliError, CliResult};

/// Opens an `sqlite:` URL (file or memory).
pub async fn open(url: &str, mode: Open, opts: StoreOptions) -> CliResult<SqliteBackend> {
    if opts.redis_max_memory.is_some() {
        // A Redis-only setting: said once per command rather than ignored in silence.
        tracing::warn!(
            "[redis] max_memory applies to Redis stores only; this SQLite store has no memory budget (see [retention] max_bytes)"
        );
    }
    let parsed = SqliteUrl::parse(url).map_err(|e| {
        CliError::usage(
            "invalid_store_url",
            e.to_string()
                .trim_start_matches("invalid argument: ")
                .to_string(),
        )
    })?;
    if let Some(path) = &parsed.path {
        if mode == Open::Existing && !path.exists() {
            return Err(CliError::failed(
                "store_not_found",
                format!(
                    "no store at {} (enqueue a job or start a worker first, or pass --store)",
                    path.display()
                ),
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(CliError::failed(
                "store_unavailable",
                format!(
                    "cannot open store {url:?}: directory {} does not exist",
                    dir.display()
                ),
            ));
        }
    }
    let options = SqliteOptions {
        url: parsed,
        ..SqliteOptions::new("sqlite::memory:")?
    }
    .limits(quern::model::Limits {
        max_payload_bytes: opts.max_payload_bytes,
    });
    SqliteBackend::open_with(options).await.map_err(|e| {
        CliError::failed(
            "store_unavailable",
            format!("cannot open store {url:?}: {e}"),
        )
    })
}
