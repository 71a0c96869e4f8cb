//! The state a running worker's tasks share: the claim loop, the job tasks, the acker and
//! the heartbeat loops each hold an `Arc<Shared>`. Every field that takes part in a protocol
//! (leases, slots, shutdown) says its role.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Handler;
use super::ack::Ack;
use super::config::WorkerConfig;
use super::leases::Leases;
use super::prefetch::RunTimes;
use super::run_queue::RunQueue;
use crate::backend::{Backend, WorkerInfo};
use crate::clock::SharedClock;
use crate::model::Codec;
use crate::pipeline::Pipeline;

/// State shared by the worker's tasks.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) cfg: WorkerConfig,
    pub(crate) handlers: HashMap<String, Arc<dyn Handler>>,
    pub(crate) clock: SharedClock,
    pub(crate) codec: Codec,
    /// Every lease held, from claim until its outcome is acknowledged.
    pub(crate) leases: Leases,
    /// When the worker first registered (kept across re-registrations).
    pub(crate) started_at: std::sync::OnceLock<crate::Millis>,
    /// Average handler run time, which sizes the prefetch.
    pub(crate) run_times: RunTimes,
    /// Signalled when a job stops occupying a claim slot, so the claim loop can refill.
    /// `notify_one` keeps a permit when nobody waits, so a wake-up is never lost.
    pub(crate) slot_freed: Notify,
    /// Limits jobs running at once to `concurrency`. Claimed jobs beyond that (prefetch)
    /// wait here for a slot, and a freed slot goes to the most urgent of them.
    pub(crate) run_queue: Arc<RunQueue>,
    /// Cancelled first on shutdown: no new claims; jobs still waiting for a run slot give
    /// their leases back.
    pub(crate) stop_claiming: CancellationToken,
    /// Cancelled when the shutdown grace period is over: every job's cancellation token is
    /// a child of this one, so running handlers are told to stop.
    pub(crate) force_stop: CancellationToken,
    /// Outcomes to acknowledge, consumed by the acker.
    pub(crate) acks: mpsc::UnboundedSender<(Ack, tracing::Span)>,
    /// Where handlers' log lines go (`Context::log`), consumed by the log writer.
    pub(crate) logs: super::logs::LogSink,
    /// The job tasks, so shutdown can wait for them.
    pub(crate) jobs: TaskTracker,
    /// The post-claim pipeline: prepares claimed workflow jobs (renders templates, fans out
    /// and in) before their handlers run, and turns each attempt's end into the backend call.
    pub(crate) pipeline: Pipeline,
}

impl Shared {
    /// This worker as recorded in the registry; `started_at` is the first registration.
    pub(crate) fn worker_info(&self, running: u32) -> WorkerInfo {
        let now = self.clock.now_ms();
        WorkerInfo {
            id: self.cfg.id.clone(),
            hostname: self.cfg.hostname.clone(),
            pid: std::process::id(),
            queues: self.cfg.queues.iter().map(|q| q.queue.clone()).collect(),
            capabilities: self.cfg.capabilities.clone(),
            concurrency: u32::try_from(self.cfg.concurrency).unwrap_or(u32::MAX),
            started_at: *self.started_at.get_or_init(|| now),
            last_seen_at: now,
            running,
            heartbeat_interval_ms: Some(
                u64::try_from(self.cfg.worker_heartbeat.as_millis()).unwrap_or(u64::MAX),
            ),
        }
    }
}
