//! The worker side: [`Context`] for handlers, the erased [`Handler`] trait, and the
//! [`Worker`] pool that claims and runs jobs.

mod ack;
mod acker;
mod builder;
mod claim;
mod config;
mod context;
mod handler;
mod heartbeat;
mod identity;
mod leases;
mod logs;
mod pool;
mod prefetch;
mod run;
mod run_queue;
mod shared;

#[cfg(test)]
mod tests;

pub use builder::WorkerBuilder;
pub use context::Context;
pub use handler::{Handler, TaskHandler};
pub use pool::{Worker, WorkerHandle};
