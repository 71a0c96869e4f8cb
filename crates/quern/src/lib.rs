//! Quern: a task queue and workflow engine.
//!
//! - [`model`]: jobs, states, priorities, retry policies, payloads.
//! - [`Backend`]: the storage seam (SQLite in `quern-sqlite`, Redis in `quern-redis`).
//! - [`Task`], [`Client`], [`Worker`]: the typed library API.
//! - [`maintenance`]: the rescuer, the pruner and leader-elected singletons.
//! - [`cron`]: recurring schedules (cron expressions, `@every`, time zones, DST rules).
//!
//! A typed task, a client that enqueues it and a worker that runs it:
//!
//! ```no_run
//! # async fn demo(backend: std::sync::Arc<dyn quern::Backend>) -> Result<(), quern::Error> {
//! use std::time::Duration;
//!
//! use quern::{Client, Context, Task, TaskError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { email: String }
//!
//! struct SendWelcome;
//! impl Task for SendWelcome {
//!     const KIND: &'static str = "send_welcome";
//!     type Input = Welcome;
//!     type Output = String;
//!     async fn run(&self, _ctx: &Context, input: Welcome) -> Result<String, TaskError> {
//!         Ok(format!("sent to {}", input.email))
//!     }
//! }
//!
//! // Producer side: enqueue (deduplicated by a unique key).
//! let client = Client::new(backend.clone());
//! let id = client
//!     .enqueue::<SendWelcome>(&Welcome { email: "ada@example.com".into() })
//!     .unique("welcome:ada@example.com")
//!     .await?;
//!
//! // Consumer side: a worker pool, usually in another process.
//! let worker = Worker::builder(backend)
//!     .register(SendWelcome)
//!     .concurrency(16)
//!     .build()?
//!     .start()
//!     .await?;
//! let job = client.wait(id, Duration::from_secs(30)).await?;
//! let sent: String = job.result.expect("a result").decode()?;
//! println!("{sent}");
//! worker.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod backend;
pub mod client;
pub mod clock;
pub mod cron;
mod error;
#[cfg(feature = "executors")]
pub mod executors;
pub mod maintenance;
pub mod model;
pub mod pipeline;
pub mod routing;
pub mod stats;
pub mod task;
pub mod telemetry;
pub mod worker;
pub mod workflow;

#[cfg(test)]
mod test_util;
#[cfg(feature = "testing")]
pub mod testing;

/// Re-exported so raw [`Handler`]s can be implemented without a direct dependency:
/// `#[quern::async_trait] impl quern::Handler for MyExecutor { ... }`.
pub use async_trait::async_trait;
pub use backend::{Backend, Capabilities, LeaseToken};
pub use client::{Client, Enqueue, Schedules};
pub use clock::{Clock, ManualClock, Millis, SharedClock, SystemClock, TokioClock};
pub use error::{Error, Result};
pub use model::{
    Codec, Format, Job, JobId, JobState, NewJob, Payload, Priority, RetryPolicy, TaskError, Trigger,
};
pub use task::Task;
pub use worker::{Context, Handler, TaskHandler, Worker, WorkerBuilder, WorkerHandle};
