//! The one place that starts and stops the background services, for any process that runs
//! them (a [`Worker`](crate::Worker), and later a server or a CLI command).
//!
//! [`Maintenance::start`] starts every configured service in a fixed order: the rescuer and
//! the scheduler on every node, then the singletons each under its own leader lease (the pruner, then the
//! workflow monitor, which also needs a backend with workflows, then the store upkeep). [`Maintenance::stop`]
//! tells them all to stop and waits for each in the reverse order, so a singleton gives its
//! leader lease back (`run_as_leader` releases it on stop) before the process goes on.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    LeaderConfig, Pruner, PrunerConfig, Rescuer, RescuerConfig, Scheduler, SchedulerConfig,
    StoreUpkeep, StoreUpkeepConfig, WorkflowMonitor, WorkflowMonitorConfig, run_as_leader,
};
use crate::backend::Backend;
use crate::clock::SharedClock;

/// Which services to run, each with its config; `None` leaves a service out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaintenanceConfig {
    /// Expired leases and lost workers. Run on every node.
    pub rescuer: Option<RescuerConfig>,
    /// One job per tick of every stored schedule. Run on every node (exactly once by the
    /// store's `schedule_fire`); only started when the backend has schedules.
    pub scheduler: Option<SchedulerConfig>,
    /// Retention. A singleton, under the leader lease [`Pruner::LEADER_NAME`].
    pub pruner: Option<PrunerConfig>,
    /// Workflow failure policy, saga and final states. A singleton, under the leader lease
    /// [`WorkflowMonitor::LEADER_NAME`]; only started when the backend has workflows.
    pub workflow_monitor: Option<WorkflowMonitorConfig>,
    /// Periodic `ANALYZE` and WAL checkpoint through `Backend::store_maintain`. A
    /// singleton, under the leader lease [`StoreUpkeep::LEADER_NAME`]; started only when
    /// something is switched on (`StoreUpkeepConfig::is_on`).
    pub store_upkeep: Option<StoreUpkeepConfig>,
}

/// The running services of one process. See the module docs.
#[derive(Debug)]
pub struct Maintenance {
    /// In start order, each with its name for the log.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    stop: CancellationToken,
}

impl Maintenance {
    /// Starts the configured services on the current tokio runtime. `holder` names this
    /// process in the leader leases (a worker passes its id).
    pub fn start(
        backend: Arc<dyn Backend>,
        clock: SharedClock,
        holder: &str,
        config: MaintenanceConfig,
    ) -> Maintenance {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        if let Some(cfg) = config.rescuer {
            let rescuer = Rescuer::new(Arc::clone(&backend), Arc::clone(&clock), cfg);
            tasks.push(("rescuer", tokio::spawn(rescuer.run(stop.clone()))));
        }
        if let Some(cfg) = config.scheduler
            && backend.capabilities().schedules
        {
            let scheduler = Scheduler::new(Arc::clone(&backend), Arc::clone(&clock), cfg);
            tasks.push(("scheduler", scheduler.spawn(stop.clone())));
        }
        if let Some(cfg) = config.pruner {
            let pruner = Pruner::new(Arc::clone(&backend), Arc::clone(&clock), cfg);
            let leader = LeaderConfig::new(Pruner::LEADER_NAME, holder.to_string());
            let (backend, stop) = (Arc::clone(&backend), stop.clone());
            tasks.push((
                "pruner",
                tokio::spawn(async move {
                    run_as_leader(backend, leader, stop, |lost| pruner.clone().run(lost)).await
                }),
            ));
        }
        if let Some(cfg) = config.workflow_monitor
            && backend.capabilities().workflows
        {
            let monitor = WorkflowMonitor::new(Arc::clone(&backend), cfg);
            let leader = LeaderConfig::new(WorkflowMonitor::LEADER_NAME, holder.to_string());
            let (backend, stop) = (Arc::clone(&backend), stop.clone());
            tasks.push((
                "workflow monitor",
                tokio::spawn(async move {
                    run_as_leader(backend, leader, stop, |lost| monitor.clone().run(lost)).await
                }),
            ));
        }
        if let Some(cfg) = config.store_upkeep
            && cfg.is_on()
        {
            let upkeep = StoreUpkeep::new(Arc::clone(&backend), cfg);
            let leader = LeaderConfig::new(StoreUpkeep::LEADER_NAME, holder.to_string());
            let (backend, stop) = (Arc::clone(&backend), stop.clone());
            tasks.push((
                "store upkeep",
                tokio::spawn(async move {
                    run_as_leader(backend, leader, stop, |lost| upkeep.clone().run(lost)).await
                }),
            ));
        }
        Maintenance { tasks, stop }
    }

    /// The names of the running services, in start order.
    pub fn services(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(name, _)| *name).collect()
    }

    /// Stops every service and waits for each, the last started first.
    pub async fn stop(self) {
        self.stop.cancel();
        for (name, task) in self.tasks.into_iter().rev() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, service = name, "maintenance service ended abnormally");
            }
        }
    }
}
