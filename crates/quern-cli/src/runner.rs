//! Runs a `quern::Worker` pool: the one place that knows the shape of its builder.

use std::sync::Arc;
use std::time::Duration;

use quern::maintenance::{PrunerConfig, RescuerConfig};
use quern::{Backend, Codec, Handler, Worker};
use tokio_util::sync::CancellationToken;

use crate::error::CliResult;

/// What a worker pool needs.
pub struct PoolConfig {
    pub queues: Vec<String>,
    pub concurrency: usize,
    /// Lease length: the longest a dead worker's jobs wait to be re-delivered.
    pub lease: Duration,
    /// Worker heartbeat interval. The rescuer runs every `min(lease, 3 × heartbeat, 5 s)`,
    /// so a dead worker's jobs come back about three heartbeats after it died (a lost
    /// worker), or one lease, whichever is sooner.
    pub heartbeat: Duration,
    /// Retention of finished jobs, pruned under a leader lease; `None` prunes nothing.
    pub pruner: Option<PrunerConfig>,
    /// Lost workers are removed from the registry this long after they were last seen.
    pub forget_lost_workers_after: Option<Duration>,
    pub shutdown_grace: Duration,
    pub handlers: Vec<(String, Arc<dyn Handler>)>,
    pub codec: Codec,
    /// Environment variables workflow templates may read (`${env.NAME}`).
    pub workflow_env: Vec<String>,
    /// Periodic `ANALYZE` / WAL checkpoint (`[maintenance]`), under a leader lease.
    pub store_upkeep: Option<quern::maintenance::StoreUpkeepConfig>,
    /// What the worker offers (`gpu`, `vram_gb=24`), recorded in the registry.
    pub capabilities: Vec<String>,
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

/// `NAME` (the weight stored with the queue, `quern queues set NAME --weight N`) or
/// `NAME=WEIGHT` (this worker's own weight, which wins).
pub fn queue_weight(q: &str) -> CliResult<(String, Option<u32>)> {
    match q.split_once('=') {
        None => Ok((q.to_string(), None)),
        Some((name, w)) => {
            let w: u32 = w.trim().parse().map_err(|_| {
                crate::error::CliError::usage(
                    "invalid_argument",
                    format!("--queues: {q:?}: the weight after '=' must be a whole number"),
                )
            })?;
            Ok((name.to_string(), Some(w)))
        }
    }
}

/// Runs until `shutdown` is cancelled, then stops gracefully: no new claims, running jobs
/// get `shutdown_grace` to finish, the rest are given back.
pub async fn run_pool(
    backend: Arc<dyn Backend>,
    config: PoolConfig,
    shutdown: CancellationToken,
) -> CliResult<()> {
    let mut queues = Vec::with_capacity(config.queues.len());
    for q in &config.queues {
        queues.push(queue_weight(q)?);
    }
    let mut b = Worker::builder(backend)
        .queues_stored_weight(queues)
        .concurrency(config.concurrency)
        .lease(config.lease)
        .shutdown_grace(config.shutdown_grace)
        .codec(config.codec)
        .workflow_env(quern::workflow::EnvSource::Process {
            allow: config.workflow_env.into_iter().collect(),
        })
        .worker_heartbeat(config.heartbeat)
        .rescuer(Some(RescuerConfig {
            forget_lost_workers_after: config.forget_lost_workers_after,
            ..RescuerConfig::with_interval(
                config
                    .lease
                    .min(config.heartbeat * quern::backend::WorkerInfo::LOST_AFTER_BEATS)
                    .min(Duration::from_secs(5)),
            )
        }))
        .pruner(config.pruner)
        .store_upkeep(config.store_upkeep)
        .capabilities(config.capabilities);
    for (kind, h) in config.handlers {
        b = b.handler(kind, h);
    }
    let worker = b.build()?;
    worker.run_until(shutdown.cancelled_owned()).await?;
    Ok(())
}
