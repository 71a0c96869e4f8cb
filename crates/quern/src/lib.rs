//! Quern: a task queue and workflow engine.
//!
//! - [`model`]: jobs, states, priorities, retry policies, payloads.
//! - [`Backend`]: the storage seam (SQLite in `quern-sqlite`, Redis in `quern-redis`).
//! - [`Task`], `Client`, `Worker`: the typed library API.
//!
//! ```no_run
//! # async fn demo(backend: std::sync::Arc<dyn quern::Backend>) -> Result<(), quern::Error> {
//! use quern::{Context, Task, TaskError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { email: String }
//!
//! struct SendWelcome;
//! impl Task for SendWelcome {
//!     const KIND: &'static str = "send_welcome";
//!     type Input = Welcome;
//!     type Output = ();
//!     async fn run(&self, _ctx: &Context, input: Welcome) -> Result<(), TaskError> {
//!         println!("hello {}", input.email);
//!         Ok(())
//!     }
//! }
//!
//! let _ = (backend, SendWelcome);
//! # Ok(()) }
//! ```

pub mod backend;
pub mod clock;
mod error;
pub mod model;
pub mod task;
pub mod worker;
pub mod workflow;

#[cfg(feature = "testing")]
pub mod testing;

pub use backend::{Backend, Capabilities, LeaseToken};
pub use clock::{Clock, ManualClock, Millis, SharedClock, SystemClock, TokioClock};
pub use error::{Error, Result};
pub use model::{
    Codec, Format, Job, JobId, JobState, NewJob, Payload, Priority, RetryPolicy, TaskError, Trigger,
};
pub use task::Task;
pub use worker::{Context, Handler, TaskHandler};
