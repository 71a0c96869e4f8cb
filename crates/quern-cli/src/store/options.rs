//! What opening a store may do, shared by the opener (`mod.rs`) and every adapter.

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
    /// `[redis] max_memory` in bytes, added to a Redis URL that does not set it.
    pub redis_max_memory: Option<u64>,
}
