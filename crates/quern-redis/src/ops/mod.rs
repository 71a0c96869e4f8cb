//! The operations of the `Backend` trait, one file per area; `lib.rs` calls each with one
//! line. Every state transition is one Lua script (`lua/`, see `scripts.rs`), called through
//! [`RedisBackend::eval`](crate::backend::RedisBackend) in the slot of the queue it works
//! in.
//!
//! Dependencies between the files go one way: `fail` uses `lease` (the per-item batch call)
//! and `store` (what storing new jobs needs), `enqueue`, `workflow` and `schedule` use
//! `store`, `import` uses `store` and `workflow` (reads), `admin` uses `read`; nothing calls back.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod claim;
pub(crate) mod coord;
pub(crate) mod enqueue;
pub(crate) mod events;
pub(crate) mod fail;
pub(crate) mod import;
pub(crate) mod lease;
pub(crate) mod limits;
pub(crate) mod logs;
pub(crate) mod prune_bytes;
pub(crate) mod read;
pub(crate) mod rollup;
pub(crate) mod schedule;
pub(crate) mod store;
pub(crate) mod wait;
pub(crate) mod workflow;
