//! The worker side: [`Context`] for handlers, the erased [`Handler`] trait, and the worker
//! pool.

mod context;
mod handler;

pub use context::Context;
pub use handler::{Handler, TaskHandler};
