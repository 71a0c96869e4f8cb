//! [`Worker`] and [`WorkerHandle`]: starting the worker's tasks and shutting them down in
//! order.
//!
//! A running worker is a handful of tokio tasks around one `Shared` state (`shared.rs`):
//! - the **claim loop** (`claim.rs`) leases jobs when slots are free and otherwise waits in
//!   `Backend::work_wait`;
//! - one **job task** per claimed job (`run.rs`), which waits for a run slot, runs the
//!   handler under its timeout and turns the result into an acknowledgement;
//! - the **acker** (`acker.rs`), which sends acknowledgements in batches;
//! - the **heartbeat loops** (`heartbeat.rs`) for leases and for the worker record;
//! - maintenance services (the rescuer and, under a leader lease, the workflow monitor by
//!   default).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ack::Ack;
use super::builder::WorkerBuilder;
use super::config::WorkerConfig;
use super::leases::Leases;
use super::logs::{LogMsg, LogSink};
use super::prefetch::RunTimes;
use super::run_queue::RunQueue;
use super::shared::Shared;
use super::{Handler, acker, claim, heartbeat, logs};
use crate::Result;
use crate::backend::Backend;
use crate::clock::SharedClock;
use crate::maintenance::{Maintenance, MaintenanceConfig};
use crate::model::Codec;
use crate::pipeline::Pipeline;

/// A pool of job handlers that claims jobs from a backend and runs them. Build one with
/// [`Worker::builder`]; run it with [`Worker::run_until`] or [`Worker::start`].
///
/// What it guarantees, with the backend: every claimed job is heartbeated every third of
/// the lease while it runs; an outcome is reported only under the lease it was claimed
/// with (a job whose lease was lost is cancelled and its outcome discarded); a handler's
/// panic or timeout is a failed attempt, never a crashed worker; on shutdown no new work is
/// claimed, running jobs get a grace period, and jobs that could not finish are given back
/// without counting an attempt.
///
/// How outcomes are recorded: `Ok` completes the job (acknowledgements are batched across
/// jobs); [`TaskError::Retryable`](crate::TaskError), a timeout and a panic schedule a retry
/// after the retry policy's delay (the job's own policy, else the handler's, else the
/// worker's default), or dead when attempts are used up; `Fatal` is dead at once; `Snooze`
/// reschedules without counting an attempt; `Cancel` cancels. A job whose kind has no
/// handler on this worker is retried like a retryable failure (`ErrorKind::UnknownKind`), as
/// Sidekiq does: during a rolling deploy a newer worker may know the kind, and
/// `max_attempts` bounds the cost.
///
/// Workflow jobs are prepared before their handler runs
/// ([`workflow::Preparer`](crate::workflow::Preparer): templates rendered from upstream
/// results, conditions, `for_each` fan-out and fan-in), and the worker runs the
/// [`WorkflowMonitor`](crate::maintenance::WorkflowMonitor) under a leader lease, so a
/// deployment of workers needs nothing else to run workflows.
pub struct Worker {
    shared: Arc<Shared>,
    ack_rx: mpsc::UnboundedReceiver<(Ack, tracing::Span)>,
    log_rx: mpsc::UnboundedReceiver<LogMsg>,
}

impl Worker {
    /// Starts configuring a worker for `backend`.
    pub fn builder(backend: Arc<dyn Backend>) -> WorkerBuilder {
        WorkerBuilder::new(backend)
    }

    pub(super) fn from_parts(
        backend: Arc<dyn Backend>,
        cfg: WorkerConfig,
        handlers: HashMap<String, Arc<dyn Handler>>,
        clock: SharedClock,
        codec: Codec,
    ) -> Self {
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let logs = LogSink {
            tx: log_tx,
            clock: Arc::clone(&clock),
        };
        let run_queue = RunQueue::new(cfg.concurrency);
        let pipeline = Pipeline::new(
            Arc::clone(&backend),
            cfg.workflow_env.clone(),
            cfg.default_retry.clone(),
            cfg.result_ttl,
        );
        Worker {
            shared: Arc::new(Shared {
                pipeline,
                backend,
                cfg,
                handlers,
                clock,
                codec,
                leases: Leases::default(),
                run_times: RunTimes::default(),
                started_at: std::sync::OnceLock::new(),
                slot_freed: Notify::new(),
                run_queue,
                stop_claiming: CancellationToken::new(),
                force_stop: CancellationToken::new(),
                acks,
                logs,
                jobs: TaskTracker::new(),
            }),
            ack_rx,
            log_rx,
        }
    }

    /// This worker's id, as recorded in its leases and the worker registry.
    pub fn id(&self) -> &str {
        &self.shared.cfg.id
    }

    /// Registers the worker with the backend and starts its tasks on the current tokio
    /// runtime. Call [`WorkerHandle::shutdown`] to stop it; dropping the handle leaves the
    /// worker running in the background.
    pub async fn start(self) -> Result<WorkerHandle> {
        let s = self.shared;
        s.backend.worker_register(s.worker_info(0)).await?;
        tracing::info!(
            worker_id = %s.cfg.id,
            queues = ?s.cfg.queues.iter().map(|q| (&q.queue, q.weight)).collect::<Vec<_>>(),
            concurrency = s.cfg.concurrency,
            kinds = ?{ let mut k: Vec<_> = s.handlers.keys().collect(); k.sort(); k },
            "worker started"
        );

        let ack_close = CancellationToken::new();
        let acker = tokio::spawn(acker::run(Arc::clone(&s), self.ack_rx, ack_close.clone()));
        let log_close = CancellationToken::new();
        let log_writer = tokio::spawn(logs::run(
            Arc::clone(&s.backend),
            s.cfg.log_limits,
            self.log_rx,
            log_close.clone(),
        ));
        let background_stop = CancellationToken::new();
        let background = vec![
            tokio::spawn(heartbeat::leases(Arc::clone(&s), background_stop.clone())),
            tokio::spawn(heartbeat::worker(Arc::clone(&s), background_stop.clone())),
        ];
        // Rescuer, scheduler, pruner and workflow monitor: started (and later stopped) in order by the
        // maintenance supervisor.
        let maintenance = Maintenance::start(
            Arc::clone(&s.backend),
            Arc::clone(&s.clock),
            &s.cfg.id,
            MaintenanceConfig {
                rescuer: s.cfg.rescuer.clone(),
                scheduler: s.cfg.scheduler.clone(),
                pruner: s.cfg.pruner.clone(),
                workflow_monitor: s.cfg.workflow_monitor.clone(),
                store_upkeep: s.cfg.store_upkeep.clone(),
            },
        );
        let claim = tokio::spawn(claim::run(Arc::clone(&s)));
        Ok(WorkerHandle {
            shared: s,
            claim,
            acker,
            ack_close,
            log_writer,
            log_close,
            background,
            background_stop,
            maintenance,
        })
    }

    /// Starts the worker, runs until `shutdown` resolves (for example
    /// `tokio::signal::ctrl_c()`), then shuts down gracefully.
    pub async fn run_until<F: Future>(self, shutdown: F) -> Result<()> {
        let handle = self.start().await?;
        shutdown.await;
        handle.shutdown().await
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.shared.cfg.id)
            .field("config", &self.shared.cfg)
            .finish()
    }
}

/// A started worker. [`WorkerHandle::shutdown`] stops it gracefully.
pub struct WorkerHandle {
    shared: Arc<Shared>,
    claim: JoinHandle<()>,
    acker: JoinHandle<()>,
    /// Tells the acker to finish once the queue of acknowledgements is empty.
    ack_close: CancellationToken,
    /// The log writer; told to finish (after the job tasks ended) by `log_close`.
    log_writer: JoinHandle<()>,
    log_close: CancellationToken,
    /// Heartbeat loops, stopped after the acker.
    background: Vec<JoinHandle<()>>,
    background_stop: CancellationToken,
    /// The maintenance services (rescuer, pruner, workflow monitor), stopped last.
    maintenance: Maintenance,
}

impl WorkerHandle {
    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.shared.cfg.id
    }

    /// Jobs claimed and not yet finished (running or waiting for a run slot).
    pub fn running(&self) -> usize {
        self.shared.leases.occupying()
    }

    /// Stops the worker gracefully:
    /// 1. stop claiming; jobs claimed but not started give their leases back;
    /// 2. wait up to the shutdown grace period for running jobs to finish;
    /// 3. cancel the rest (their handlers see `Context::cancelled`, and are dropped after
    ///    the cancel grace), giving their leases back without counting the attempt;
    /// 4. send the remaining acknowledgements, stop heartbeats and services, and
    ///    deregister the worker.
    pub async fn shutdown(self) -> Result<()> {
        let s = &self.shared;
        tracing::info!(worker_id = %s.cfg.id, running = s.leases.occupying(), "worker shutting down");
        s.stop_claiming.cancel();
        join_quietly(self.claim, "claim loop").await;
        s.jobs.close();
        if tokio::time::timeout(s.cfg.shutdown_grace, s.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                worker_id = %s.cfg.id,
                running = s.leases.occupying(),
                grace = ?s.cfg.shutdown_grace,
                "shutdown grace period over; cancelling running jobs and giving their leases back"
            );
            s.force_stop.cancel();
            s.jobs.wait().await;
        }
        self.log_close.cancel();
        join_quietly(self.log_writer, "log writer").await;
        self.ack_close.cancel();
        join_quietly(self.acker, "acker").await;
        self.background_stop.cancel();
        for task in self.background {
            join_quietly(task, "background task").await;
        }
        self.maintenance.stop().await;
        let res = s.backend.worker_deregister((&s.cfg.id).into()).await;
        match &res {
            Ok(()) => tracing::info!(worker_id = %s.cfg.id, "worker stopped"),
            Err(e) => {
                tracing::warn!(worker_id = %s.cfg.id, error = %e, "worker stopped but could not deregister")
            }
        }
        res
    }
}

async fn join_quietly(task: JoinHandle<()>, what: &str) {
    if let Err(e) = task.await {
        tracing::error!(error = %e, "worker {what} ended abnormally");
    }
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("id", &self.shared.cfg.id)
            .field("running", &self.shared.leases.occupying())
            .finish()
    }
}
