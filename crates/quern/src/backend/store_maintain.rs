//! `store_maintain`: periodic upkeep of the store's own files, asked for by the
//! maintenance supervisor without knowing what kind of store it is.

use serde::{Deserialize, Serialize};

/// What to do. A store does what applies to it and ignores the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMaintainParams {
    /// Refresh the query planner's statistics (SQLite `ANALYZE`).
    pub analyze: bool,
    /// Copy the write-ahead log back into the main file (SQLite `wal_checkpoint(PASSIVE)`:
    /// never waits for readers).
    pub checkpoint: bool,
}

/// What was done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMaintainReport {
    pub analyzed: bool,
    pub checkpointed: bool,
}
