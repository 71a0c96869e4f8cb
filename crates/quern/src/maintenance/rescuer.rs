//! The rescuer: re-delivers jobs whose lease expired (their worker crashed, hung, or lost
//! its connection to the store), and those of workers found lost; removes lost workers
//! from the registry after a while.
//!
//! Each pass reads the worker registry and judges every worker by its own stated heartbeat
//! interval ([`WorkerInfo::state`]): one not seen for three intervals is lost. It then calls
//! `Backend::lease_rescue` with the lost workers' ids, which atomically moves each job whose
//! lease expired, or whose lease a lost worker holds, back to `queued` (the attempt stays
//! counted) or to `dead` when that was its last attempt. So a killed worker's jobs come
//! back about three heartbeats after it died instead of a whole lease later. Lost workers
//! seen last more than `forget_lost_workers_after` ago are deregistered.
//!
//! Every step is idempotent and cheap (index range scans; the running jobs of a queue only
//! while some worker is lost), so every node runs a rescuer: no leader election, and rescue
//! keeps working while any node is alive.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::backend::{Backend, RescueParams, RescueReport, WorkerInfo, WorkerState};
use crate::clock::SharedClock;
use crate::model::JobId;

/// Rescuer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RescuerConfig {
    /// Time between passes. A crashed worker's job is re-delivered between `lease` and
    /// `lease + interval` after its last heartbeat. Default 5 s.
    pub interval: Duration,
    /// Jobs rescued per backend call. A pass keeps calling while calls come back full, up
    /// to `max_batches_per_pass`. Default 1000.
    pub batch_limit: usize,
    /// Upper bound on calls in one pass, so one pass cannot hog the store. Default 10.
    pub max_batches_per_pass: usize,
    /// A lost worker's record is removed from the registry once it has not been seen for
    /// this long (so `quern workers list` shows a dead worker as `lost` for a while, then
    /// forgets it). `None` keeps lost workers listed forever. Default 1 h.
    pub forget_lost_workers_after: Option<Duration>,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        RescuerConfig {
            interval: Duration::from_secs(5),
            batch_limit: 1000,
            max_batches_per_pass: 10,
            forget_lost_workers_after: Some(Duration::from_secs(3600)),
        }
    }
}

impl RescuerConfig {
    /// The defaults with another interval.
    pub fn with_interval(interval: Duration) -> Self {
        RescuerConfig {
            interval,
            ..Default::default()
        }
    }
}

/// What one rescuer pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RescueTickReport {
    /// Back to `queued` (attempt counted).
    pub requeued: Vec<JobId>,
    /// Out of attempts: `dead`.
    pub dead: Vec<JobId>,
    /// Workers found lost in this pass (their leases were treated as expired).
    pub lost_workers: Vec<String>,
    /// Lost workers removed from the registry in this pass.
    pub forgotten_workers: Vec<String>,
}

impl RescueTickReport {
    fn is_empty(&self) -> bool {
        *self == RescueTickReport::default()
    }
}

/// Re-delivers jobs with expired leases or lost workers. See the module docs.
#[derive(Clone, Debug)]
pub struct Rescuer {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    config: RescuerConfig,
}

impl Rescuer {
    /// A rescuer for `backend`, judging workers' heartbeats by `clock` (the backend's).
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock, config: RescuerConfig) -> Self {
        Rescuer {
            backend,
            clock,
            config,
        }
    }

    /// One pass: finds lost workers, rescues everything expired or held by them (up to the
    /// per-pass bound), and forgets lost workers past their retention.
    pub async fn run_once(&self) -> Result<RescueTickReport> {
        let now = self.clock.now_ms();
        let lost: Vec<WorkerInfo> = self
            .backend
            .worker_list()
            .await?
            .into_iter()
            .filter(|w| w.state(now) == WorkerState::Lost)
            .collect();
        let limit = self.config.batch_limit.max(1);
        let mut total = RescueTickReport {
            lost_workers: lost.iter().map(|w| w.id.clone()).collect(),
            ..Default::default()
        };
        for _ in 0..self.config.max_batches_per_pass.max(1) {
            let r: RescueReport = self
                .backend
                .lease_rescue(RescueParams {
                    limit,
                    lost_workers: total.lost_workers.clone(),
                })
                .await?;
            let n = r.requeued.len() + r.dead.len();
            total.requeued.extend(r.requeued);
            total.dead.extend(r.dead);
            if n < limit {
                break;
            }
        }
        if let Some(keep) = self.config.forget_lost_workers_after {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            for w in lost {
                if now.saturating_sub(w.last_seen_at) >= keep_ms {
                    // A worker that was only paused re-registers when its next heartbeat
                    // finds its record gone, so removing it by mistake costs little.
                    self.backend.worker_deregister((&w.id).into()).await?;
                    total.forgotten_workers.push(w.id);
                }
            }
        }
        Ok(total)
    }

    /// Runs passes every `interval` until `stop` is cancelled. Errors are logged and the
    /// next pass retries.
    pub async fn run(self, stop: CancellationToken) {
        tracing::debug!(interval = ?self.config.interval, "rescuer started");
        loop {
            match self.run_once().await {
                Ok(r) if r.is_empty() => {}
                Ok(r)
                    if r.requeued.is_empty()
                        && r.dead.is_empty()
                        && r.forgotten_workers.is_empty() =>
                {
                    tracing::debug!(lost = ?r.lost_workers, "lost workers hold no jobs")
                }
                Ok(r) => tracing::info!(
                    requeued = r.requeued.len(),
                    dead = r.dead.len(),
                    lost_workers = ?r.lost_workers,
                    forgotten_workers = ?r.forgotten_workers,
                    "rescued jobs with expired leases or lost workers"
                ),
                Err(e) => tracing::warn!(error = %e, "lease rescue failed"),
            }
            if !super::pause(self.config.interval, &stop).await {
                break;
            }
        }
        tracing::debug!("rescuer stopped");
    }
}
