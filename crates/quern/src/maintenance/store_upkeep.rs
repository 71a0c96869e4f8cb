//! The store upkeep service: asks the store to analyze and to checkpoint on their own
//! intervals through [`Backend::store_maintain`](crate::Backend::store_maintain), which a
//! store with nothing to do (Redis) answers by doing nothing. It knows nothing of SQLite.
//! A singleton under the leader lease [`StoreUpkeep::LEADER_NAME`]: one process of a
//! deployment does it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, StoreMaintainParams};

/// When to do what; `None` never does it. Off by default (both `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreUpkeepConfig {
    /// Time between `ANALYZE`s (SQLite: holds the writer while it reads every index).
    pub analyze_every: Option<Duration>,
    /// Time between passive WAL checkpoints (SQLite: never waits for readers).
    pub checkpoint_every: Option<Duration>,
}

impl StoreUpkeepConfig {
    /// Whether anything is switched on.
    pub fn is_on(&self) -> bool {
        self.analyze_every.is_some() || self.checkpoint_every.is_some()
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct StoreUpkeep {
    backend: Arc<dyn Backend>,
    config: StoreUpkeepConfig,
}

impl StoreUpkeep {
    /// The leader lease it runs under.
    pub const LEADER_NAME: &'static str = "quern.store_upkeep";

    pub fn new(backend: Arc<dyn Backend>, config: StoreUpkeepConfig) -> Self {
        StoreUpkeep { backend, config }
    }

    /// Runs until `stop` is cancelled: each operation first one interval after the start,
    /// then every interval. Errors are logged and the operation is tried again at its next
    /// time.
    pub async fn run(self, stop: CancellationToken) {
        let start = Instant::now();
        let next = |every: Option<Duration>| every.map(|d| start + d);
        let (mut analyze_at, mut checkpoint_at) = (
            next(self.config.analyze_every),
            next(self.config.checkpoint_every),
        );
        loop {
            let Some(at) = [analyze_at, checkpoint_at].into_iter().flatten().min() else {
                stop.cancelled().await;
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.cancelled() => break,
            }
            let now = Instant::now();
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            let params = StoreMaintainParams {
                analyze: due(analyze_at),
                checkpoint: due(checkpoint_at),
            };
            match self.backend.store_maintain(params).await {
                Ok(r) => tracing::debug!(
                    analyzed = r.analyzed,
                    checkpointed = r.checkpointed,
                    "store upkeep"
                ),
                Err(e) => tracing::warn!(error = %e, "store upkeep failed"),
            }
            if params.analyze {
                analyze_at = self.config.analyze_every.map(|d| now + d);
            }
            if params.checkpoint {
                checkpoint_at = self.config.checkpoint_every.map(|d| now + d);
            }
        }
        tracing::debug!("store upkeep stopped");
    }
}
