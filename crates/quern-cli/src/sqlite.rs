//! Adapter to the SQLite backend crate, kept in one file so that its constructor's shape
//! touches nothing else.

use std::path::Path;
use std::sync::Arc;

use quern::Backend;

use crate::error::{CliError, CliResult};
use crate::store::StoreOptions;

pub async fn open_file(path: &Path, opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    let _ = opts;
    Err(CliError::failed(
        "store_unavailable",
        format!(
            "cannot open {}: the SQLite backend is not built in yet",
            path.display()
        ),
    ))
}

pub async fn open_memory(opts: StoreOptions) -> CliResult<Arc<dyn Backend>> {
    let _ = opts;
    Err(CliError::failed(
        "store_unavailable",
        "the SQLite backend is not built in yet",
    ))
}
