//! Runs a worker pool: the one place that knows the shape of `quern::Worker`'s builder.

use std::sync::Arc;
use std::time::Duration;

use quern::{Backend, Handler};
use tokio_util::sync::CancellationToken;

use crate::error::{CliError, CliResult};

/// What a worker pool needs.
pub struct PoolConfig {
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub lease: Duration,
    pub shutdown_grace: Duration,
    pub handlers: Vec<(String, Arc<dyn Handler>)>,
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("queues", &self.queues)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Runs until `shutdown` is cancelled, then stops gracefully: no new claims, running jobs
/// get `shutdown_grace` to finish, the rest are given back.
pub async fn run_pool(
    backend: Arc<dyn Backend>,
    config: PoolConfig,
    shutdown: CancellationToken,
) -> CliResult<()> {
    let _ = (backend, config, shutdown);
    Err(CliError::failed(
        "unavailable",
        "the worker pool is not built in yet",
    ))
}
