//! The workflow monitor: moves running workflows along (failure policy, saga compensation,
//! final state) by calling [`Advancer::advance`](crate::workflow::Advancer::advance) for each
//! of them on every tick.
//!
//! A tick costs one listing of the running workflows (an index range) and, per running
//! workflow, one count of its jobs by state; it never scans all jobs. Every change it makes
//! is a compare-and-set on the workflow's revision, so it is safe to run on every node; one
//! is enough, so servers run it under [`run_as_leader`](super::run_as_leader).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, WorkflowListParams};
use crate::model::WorkflowState;
use crate::workflow::Advancer;
use crate::{Error, Result};

/// Workflow monitor settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowMonitorConfig {
    /// Time between ticks: how soon after its last task ends a workflow is marked finished
    /// (or starts compensating). Default 500 ms.
    pub interval: Duration,
    /// Running workflows read per listing call. Default 500.
    pub page: usize,
}

impl Default for WorkflowMonitorConfig {
    fn default() -> Self {
        WorkflowMonitorConfig {
            interval: Duration::from_millis(500),
            page: 500,
        }
    }
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkflowTickReport {
    /// Running workflows looked at.
    pub seen: usize,
    /// Workflows whose record changed (an error recorded, fail-fast cancels, compensations
    /// started, or a final state).
    pub changed: usize,
    /// Workflows that reached a final state.
    pub finished: usize,
}

/// Advances every running workflow. See the module docs.
#[derive(Clone, Debug)]
pub struct WorkflowMonitor {
    backend: Arc<dyn Backend>,
    advancer: Arc<Advancer>,
    config: WorkflowMonitorConfig,
}

impl WorkflowMonitor {
    /// The name of the leader lease servers run it under.
    pub const LEADER_NAME: &'static str = "quern.workflows";

    /// A monitor for `backend`.
    pub fn new(backend: Arc<dyn Backend>, config: WorkflowMonitorConfig) -> Self {
        WorkflowMonitor {
            advancer: Arc::new(Advancer::new(Arc::clone(&backend))),
            backend,
            config,
        }
    }

    /// One tick over every running workflow. A workflow that fails to advance (a lost race,
    /// a broken definition) is logged and skipped; the tick goes on.
    pub async fn run_once(&self) -> Result<WorkflowTickReport> {
        let mut report = WorkflowTickReport::default();
        let mut before = None;
        loop {
            let page = self
                .backend
                .workflow_list(WorkflowListParams {
                    state: Some(WorkflowState::Running),
                    limit: self.config.page.max(1),
                    before,
                })
                .await?;
            for rec in page.workflows {
                report.seen += 1;
                let (id, revision) = (rec.id.clone(), rec.revision);
                match self.advancer.advance(rec).await {
                    Ok(after) => {
                        if after.revision != revision {
                            report.changed += 1;
                        }
                        if after.state.is_final() {
                            report.finished += 1;
                        }
                    }
                    Err(Error::Conflict(_)) => {}
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        tracing::warn!(workflow_id = %id, error = %e, "cannot advance workflow")
                    }
                }
            }
            match page.next {
                Some(n) => before = Some(n),
                None => break,
            }
        }
        Ok(report)
    }

    /// Ticks every `interval` until `stop` is cancelled. Errors are logged and the next tick
    /// retries.
    pub async fn run(self, stop: CancellationToken) {
        tracing::debug!(interval = ?self.config.interval, "workflow monitor started");
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "workflow monitor tick failed");
            }
            if !super::pause(self.config.interval, &stop).await {
                break;
            }
        }
        tracing::debug!("workflow monitor stopped");
    }
}
