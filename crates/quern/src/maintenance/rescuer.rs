//! The rescuer: re-delivers jobs whose lease expired (their worker crashed, hung, or lost
//! its connection to the store).
//!
//! It calls `Backend::lease_rescue`, which atomically moves each expired job back to
//! `queued` (the attempt stays counted) or to `dead` when that was its last attempt. The
//! call is idempotent and cheap (an index range scan), so every node runs a rescuer: no
//! leader election, and rescue keeps working while any node is alive.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::backend::{Backend, RescueParams, RescueReport};

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
}

impl Default for RescuerConfig {
    fn default() -> Self {
        RescuerConfig {
            interval: Duration::from_secs(5),
            batch_limit: 1000,
            max_batches_per_pass: 10,
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

/// Re-delivers jobs with expired leases. See the module docs.
#[derive(Clone, Debug)]
pub struct Rescuer {
    backend: Arc<dyn Backend>,
    config: RescuerConfig,
}

impl Rescuer {
    /// A rescuer for `backend`.
    pub fn new(backend: Arc<dyn Backend>, config: RescuerConfig) -> Self {
        Rescuer { backend, config }
    }

    /// One pass: rescues everything expired (up to the per-pass bound).
    pub async fn run_once(&self) -> Result<RescueReport> {
        let limit = self.config.batch_limit.max(1);
        let mut total = RescueReport::default();
        for _ in 0..self.config.max_batches_per_pass.max(1) {
            let r = self.backend.lease_rescue(RescueParams { limit }).await?;
            let n = r.requeued.len() + r.dead.len();
            total.requeued.extend(r.requeued);
            total.dead.extend(r.dead);
            if n < limit {
                break;
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
                Ok(r) if r.requeued.is_empty() && r.dead.is_empty() => {}
                Ok(r) => tracing::info!(
                    requeued = r.requeued.len(),
                    dead = r.dead.len(),
                    "rescued jobs with expired leases"
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
