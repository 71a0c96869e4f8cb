//! The pruner: deletes finished jobs once they are older than their state's retention, and
//! drops results whose time-to-live has passed (both in `Backend::job_prune`).
//!
//! Pruning is idempotent, so running it on two nodes at once is harmless, only wasteful;
//! the worker runs it under a leader lease ([`Pruner::LEADER_NAME`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, PruneParams};
use crate::clock::SharedClock;
use crate::model::JobState;
use crate::{Error, Result};

/// Pruner settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunerConfig {
    /// Time between passes. Default 1 min.
    pub interval: Duration,
    /// How long a finished job is kept, by terminal state (measured from `finished_at`).
    /// States not listed are kept forever. Defaults: succeeded 1 day, cancelled and skipped
    /// 7 days, dead 30 days (the DLQ: long enough for someone to look at it).
    pub retention: BTreeMap<JobState, Duration>,
    /// Jobs deleted per backend call; a pass keeps calling while calls come back full, up to
    /// `max_batches_per_pass`. Default 1000.
    pub batch_limit: usize,
    /// Upper bound on calls per retention group in one pass. Default 10.
    pub max_batches_per_pass: usize,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        PrunerConfig {
            interval: Duration::from_secs(60),
            retention: BTreeMap::from([
                (JobState::Succeeded, Duration::from_secs(DAY)),
                (JobState::Cancelled, Duration::from_secs(7 * DAY)),
                (JobState::Skipped, Duration::from_secs(7 * DAY)),
                (JobState::Dead, Duration::from_secs(30 * DAY)),
            ]),
            batch_limit: 1000,
            max_batches_per_pass: 10,
        }
    }
}

impl PrunerConfig {
    /// Checks that only terminal states have a retention.
    pub fn validate(&self) -> Result<()> {
        match self.retention.keys().find(|s| !s.is_terminal()) {
            Some(s) => Err(Error::InvalidArgument(format!(
                "pruner retention for {s}: only finished jobs (succeeded, dead, cancelled, skipped) can be pruned"
            ))),
            None => Ok(()),
        }
    }
}

/// What one pruner pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneTickReport {
    pub jobs_deleted: u64,
    pub results_expired: u64,
}

/// Deletes old finished jobs. See the module docs.
#[derive(Clone, Debug)]
pub struct Pruner {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    config: PrunerConfig,
}

impl Pruner {
    /// The leader lease name the worker uses for the pruner.
    pub const LEADER_NAME: &'static str = "quern.pruner";

    /// A pruner for `backend`, measuring ages with `clock`.
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock, config: PrunerConfig) -> Self {
        Pruner {
            backend,
            clock,
            config,
        }
    }

    /// One pass. States sharing a retention are pruned in one call; a pass with no
    /// retention configured still drops expired results.
    pub async fn run_once(&self) -> Result<PruneTickReport> {
        self.config.validate()?;
        let now = self.clock.now_ms();
        let mut groups: BTreeMap<Duration, Vec<JobState>> = BTreeMap::new();
        for (state, keep) in &self.config.retention {
            groups.entry(*keep).or_default().push(*state);
        }
        if groups.is_empty() {
            groups.insert(Duration::ZERO, Vec::new());
        }
        let limit = self.config.batch_limit.max(1);
        let mut total = PruneTickReport::default();
        for (keep, states) in groups {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            for _ in 0..self.config.max_batches_per_pass.max(1) {
                let r = self
                    .backend
                    .job_prune(PruneParams {
                        finished_before: now.saturating_sub(keep_ms),
                        states: states.clone(),
                        limit,
                    })
                    .await?;
                total.jobs_deleted += r.jobs_deleted;
                total.results_expired += r.results_expired;
                if (r.jobs_deleted as usize) < limit {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Runs passes every `interval` until `stop` is cancelled. Errors are logged and the
    /// next pass retries.
    pub async fn run(self, stop: CancellationToken) {
        tracing::debug!(interval = ?self.config.interval, "pruner started");
        loop {
            match self.run_once().await {
                Ok(r) if r == PruneTickReport::default() => {}
                Ok(r) => tracing::info!(
                    jobs_deleted = r.jobs_deleted,
                    results_expired = r.results_expired,
                    "pruned finished jobs"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
            if !super::pause(self.config.interval, &stop).await {
                break;
            }
        }
        tracing::debug!("pruner stopped");
    }
}
