//! The worker's settings and their defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::QueueWeight;
use crate::maintenance::{PrunerConfig, RescuerConfig, WorkflowMonitorConfig};
use crate::model::RetryPolicy;
use crate::workflow::EnvSource;

/// Default prefetch cap per run slot (`WorkerConfig::prefetch`).
pub(crate) const DEFAULT_PREFETCH_PER_SLOT: usize = 4;

/// Everything a [`Worker`](super::Worker) runs with. Built by
/// [`WorkerBuilder`](super::WorkerBuilder); each default is documented on its field.
#[derive(Clone, Debug)]
pub(crate) struct WorkerConfig {
    /// Unique per running worker; recorded in every lease it holds. Default
    /// `{hostname}-{pid}-{4 random hex digits}`.
    pub id: String,
    pub hostname: String,
    /// Labels such as `gpu`, stored in the worker registry (`Backend::worker_list`,
    /// `quern workers list --json`). Informational: no job is routed by them.
    pub capabilities: Vec<String>,
    /// The queues to claim from, with weights. Default `[("default", 1)]`.
    pub queues: Vec<QueueWeight>,
    /// Queues the worker gave no weight of its own: they take the weight stored with the
    /// queue (`QueueSettings::weight`), read at start and every 5 s. A weight the worker
    /// sets wins over the stored one.
    pub stored_weight: std::collections::BTreeSet<String>,
    /// Jobs running at once on this worker. Default 10.
    pub concurrency: usize,
    /// Per-queue caps on jobs held (running or claimed) at once on this worker. A capped
    /// queue never gets prefetched jobs.
    pub queue_caps: BTreeMap<String, usize>,
    /// Lease length. The worker heartbeats every third of it, so a lease survives two lost
    /// heartbeats; a crashed worker's jobs are re-delivered about this long after it died.
    /// Default 30 s.
    pub lease: Duration,
    /// The most jobs claimed beyond free slots, to start the moment a slot frees. Adaptive
    /// (see `prefetch.rs`): only as many as would start within `prefetch_wait` given the
    /// average run time, so long jobs are never hoarded. `None` means `4 × concurrency`
    /// (Celery's default prefetch multiplier).
    pub prefetch: Option<usize>,
    /// How soon, on average, a prefetched job must be expected to start. Default 50 ms.
    pub prefetch_wait: Duration,
    /// On shutdown, how long running jobs may take to finish before they are cancelled and
    /// their leases given back. Default 25 s (Sidekiq's; fits a 30 s Kubernetes
    /// termination grace period together with `cancel_grace`).
    pub shutdown_grace: Duration,
    /// After a job's context is cancelled (lease lost, forced shutdown), how long its handler
    /// may take to notice and return before its future is dropped. Default 2 s.
    pub cancel_grace: Duration,
    /// Per-attempt time limit for jobs whose job record and handler set none. Default none.
    pub default_timeout: Option<Duration>,
    /// Retry policy for jobs whose job record and handler set none (raw handlers, unknown
    /// kinds). Default: exponential from 1 s, doubling, capped at 1 h, 10% jitter.
    pub default_retry: RetryPolicy,
    /// How long to keep results of jobs that set no `result_ttl` of their own; `None` keeps
    /// them until the job is pruned. Default none.
    pub result_ttl: Option<Duration>,
    /// The longest the worker waits for a wake-up from the backend before trying to claim
    /// again. Wake-ups normally come from enqueues; this bounds the delay when one is
    /// missed (for example an enqueue from another process on a backend without
    /// cross-process wake-ups). Default 1 s.
    pub poll_interval: Duration,
    /// How often the worker record is heartbeated (its `last_seen_at`, the "last seen" of
    /// `quern workers list`). The
    /// interval is stored with the record: a worker not seen for three intervals is `lost`,
    /// and the rescuer re-delivers its jobs without waiting for their leases to expire, so
    /// an interval below a third of the lease makes a crashed worker's jobs come back
    /// sooner. Default 2 s: a killed worker is lost after about 6 s, and its jobs come back
    /// then instead of after their 30 s leases (one small write per worker every 2 s).
    pub worker_heartbeat: Duration,
    /// Most acknowledgements sent in one backend call. Default 512.
    pub ack_batch: usize,
    /// The per-job caps on handler log lines (`Context::log`). Default
    /// [`LogLimits::default`](crate::backend::LogLimits): 1,000 lines and 256 KiB per job,
    /// oldest dropped.
    pub log_limits: crate::backend::LogLimits,
    /// The lease rescuer run alongside the worker. Default on.
    pub rescuer: Option<RescuerConfig>,
    /// The scheduler (one job per tick of every stored schedule), run on every node.
    /// Default on.
    pub scheduler: Option<crate::maintenance::SchedulerConfig>,
    /// The pruner, run under a leader lease so one node prunes at a time. Default off.
    pub pruner: Option<PrunerConfig>,
    /// The workflow monitor (failure policy, compensation, final states of running
    /// workflows), run under a leader lease so one node does it at a time. Default on, so
    /// workflows whose tasks run on this deployment's workers also finish there.
    pub workflow_monitor: Option<WorkflowMonitorConfig>,
    /// Periodic `ANALYZE` / WAL checkpoint of the store, under a leader lease. Default off.
    pub store_upkeep: Option<crate::maintenance::StoreUpkeepConfig>,
    /// What `${env.NAME}` in workflow templates may read. Default: nothing (every
    /// `${env.…}` fails), so a worker never leaks its environment into payloads unless told.
    pub workflow_env: EnvSource,
}

impl WorkerConfig {
    pub(crate) fn new() -> Self {
        let hostname = super::identity::hostname();
        WorkerConfig {
            id: super::identity::default_worker_id(&hostname),
            hostname,
            capabilities: Vec::new(),
            queues: Vec::new(),
            stored_weight: Default::default(),
            concurrency: 10,
            queue_caps: BTreeMap::new(),
            lease: Duration::from_secs(30),
            prefetch: None,
            prefetch_wait: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(25),
            cancel_grace: Duration::from_secs(2),
            default_timeout: None,
            default_retry: RetryPolicy::default(),
            result_ttl: None,
            poll_interval: Duration::from_secs(1),
            worker_heartbeat: Duration::from_secs(2),
            ack_batch: 512,
            log_limits: crate::backend::LogLimits::default(),
            rescuer: Some(RescuerConfig::default()),
            scheduler: Some(Default::default()),
            pruner: None,
            workflow_monitor: Some(WorkflowMonitorConfig::default()),
            store_upkeep: None,
            workflow_env: EnvSource::Denied,
        }
    }

    /// The lease heartbeat period: a third of the lease.
    pub(crate) fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(10))
    }

    /// The most jobs that may be prefetched.
    pub(crate) fn prefetch_max(&self) -> usize {
        self.prefetch
            .unwrap_or(self.concurrency.saturating_mul(DEFAULT_PREFETCH_PER_SLOT))
    }

    /// The cap for `queue`, if any.
    pub(crate) fn cap(&self, queue: &str) -> Option<usize> {
        self.queue_caps.get(queue).copied()
    }
}
