//! Background services that keep a Quern deployment healthy, one file each, each with a
//! config struct whose defaults are documented on its fields.
//!
//! - [`Rescuer`]: re-delivers jobs whose lease expired or whose worker is lost (its
//!   heartbeat stopped), and removes long-lost workers from the registry. Safe and useful
//!   on every node; the [`Worker`](crate::Worker) runs one by default.
//! - [`Pruner`]: deletes old finished jobs and expired results. Idempotent, but one node is
//!   enough, so it is meant to run under [`run_as_leader`].
//! - [`WorkflowMonitor`]: moves running workflows along (failure policy, saga
//!   compensation, final state). Idempotent (compare-and-set), meant to run under
//!   [`run_as_leader`].
//! - [`Scheduler`]: enqueues one job per tick of every stored schedule. Exactly once by
//!   the store's atomic `schedule_fire`, so every node runs one, without a leader.
//! - [`run_as_leader`]: runs a singleton service only while this node holds a named leader
//!   lease stored in the backend, handing over when the holder dies.
//! - [`Maintenance`]: the one place that starts the configured services in order (the
//!   rescuer, then the singletons under their leases) and stops them, for any process.
//!
//! Each service has a `run_once` (one pass, returns what it did; what tests call) and a
//! `run` loop that stops when its cancellation token is cancelled.

mod leader;
mod pruner;
mod rescuer;
mod scheduler;
mod store_upkeep;
mod supervisor;
mod workflow_monitor;

pub use leader::{LeaderConfig, run_as_leader};
pub use pruner::{PruneTickReport, Pruner, PrunerConfig};
pub use rescuer::{RescueTickReport, Rescuer, RescuerConfig};
pub use scheduler::{FirePlan, Scheduler, SchedulerConfig, SchedulerTickReport, fire_plan};
pub use store_upkeep::{StoreUpkeep, StoreUpkeepConfig};
pub use supervisor::{Maintenance, MaintenanceConfig};
pub use workflow_monitor::{WorkflowMonitor, WorkflowMonitorConfig, WorkflowTickReport};

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Sleeps for `d`, or less if `stop` is cancelled. Returns false when stopped.
pub(crate) async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests;
