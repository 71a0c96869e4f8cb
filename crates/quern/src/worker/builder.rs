//! [`WorkerBuilder`]: registering handlers and choosing how the worker runs.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::WorkerConfig;
use super::{Handler, TaskHandler, Worker};
use crate::backend::{Backend, QueueWeight};
use crate::clock::{SharedClock, SystemClock};
use crate::maintenance::{PrunerConfig, RescuerConfig};
use crate::model::{Codec, RetryPolicy, validate_queue_name};
use crate::task::Task;
use crate::{Error, Result};

/// A handler waiting for [`WorkerBuilder::build`], which knows the final codec.
type MakeHandler = Box<dyn FnOnce(Codec) -> Arc<dyn Handler> + Send>;

/// Configures a [`Worker`]. Start with [`Worker::builder`], register handlers, then
/// [`build`](WorkerBuilder::build).
///
/// ```no_run
/// # async fn demo(backend: std::sync::Arc<dyn quern::Backend>) -> quern::Result<()> {
/// # use quern::{Context, Task, TaskError};
/// # struct Resize;
/// # impl Task for Resize {
/// #     const KIND: &'static str = "resize";
/// #     type Input = String;
/// #     type Output = ();
/// #     async fn run(&self, _: &Context, _: String) -> Result<(), TaskError> { Ok(()) }
/// # }
/// use std::time::Duration;
/// let worker = quern::Worker::builder(backend)
///     .register(Resize)
///     .queues([("images", 3), ("default", 1)])
///     .concurrency(16)
///     .queue_concurrency("images", 4)
///     .lease(Duration::from_secs(30))
///     .build()?;
/// worker.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct WorkerBuilder {
    backend: Arc<dyn Backend>,
    cfg: WorkerConfig,
    clock: SharedClock,
    codec: Codec,
    handlers: Vec<(String, MakeHandler)>,
}

impl WorkerBuilder {
    pub(super) fn new(backend: Arc<dyn Backend>) -> Self {
        WorkerBuilder {
            backend,
            cfg: WorkerConfig::new(),
            clock: Arc::new(SystemClock),
            codec: Codec::default(),
            handlers: Vec::new(),
        }
    }

    /// Registers a typed task: jobs of kind `T::KIND` run `task.run`.
    pub fn register<T: Task>(mut self, task: T) -> Self {
        self.handlers.push((
            T::KIND.to_string(),
            Box::new(move |codec| Arc::new(TaskHandler::new(task, codec)) as Arc<dyn Handler>),
        ));
        self
    }

    /// Registers a raw handler for `kind` (built-in executors, foreign payloads).
    pub fn handler(mut self, kind: impl Into<String>, handler: Arc<dyn Handler>) -> Self {
        self.handlers
            .push((kind.into(), Box::new(move |_| handler) as MakeHandler));
        self
    }

    /// The queues to claim from, each with a weight: when several have ready jobs, claims
    /// split between them in proportion to the weights. Replaces earlier calls. Default
    /// `[("default", 1)]`.
    pub fn queues<Q: Into<String>>(mut self, queues: impl IntoIterator<Item = (Q, u32)>) -> Self {
        self.cfg.queues = queues
            .into_iter()
            .map(|(q, w)| QueueWeight::new(q, w))
            .collect();
        self.cfg.stored_weight.clear();
        self
    }

    /// The queues to claim from, each with the weight stored with the queue
    /// (`QueueSettings::weight`, set by `quern queues set NAME --weight N`; 1 when none),
    /// read at start and every 5 s, so it can be changed while workers run. Replaces earlier
    /// calls (and [`queues`](Self::queues)); weights given with `Some` win over the stored
    /// ones.
    pub fn queues_stored_weight<Q: Into<String>>(
        mut self,
        queues: impl IntoIterator<Item = (Q, Option<u32>)>,
    ) -> Self {
        self.cfg.queues.clear();
        self.cfg.stored_weight.clear();
        for (q, w) in queues {
            let q = q.into();
            if w.is_none() {
                self.cfg.stored_weight.insert(q.clone());
            }
            self.cfg.queues.push(QueueWeight::new(q, w.unwrap_or(1)));
        }
        self
    }

    /// How many jobs run at once on this worker. Default 10.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.cfg.concurrency = n;
        self
    }

    /// At most `n` jobs of `queue` held at once on this worker (a per-worker cap; the
    /// global concurrency cap per queue is a backend setting).
    pub fn queue_concurrency(mut self, queue: impl Into<String>, n: usize) -> Self {
        self.cfg.queue_caps.insert(queue.into(), n);
        self
    }

    /// The lease length. Heartbeats go out every third of it. Default 30 s.
    pub fn lease(mut self, d: Duration) -> Self {
        self.cfg.lease = d;
        self
    }

    /// The most jobs to claim beyond free slots, so they start without a claim round trip
    /// when a slot frees (and claims come in bigger batches). Default: `4 × concurrency`,
    /// Celery's default multiplier.
    /// `0` turns prefetch off.
    ///
    /// Prefetch adapts to job length so it never hoards: a prefetched job holds a lease
    /// while it waits, so the worker only prefetches as many jobs as would start within
    /// [`prefetch_wait`](WorkerBuilder::prefetch_wait) given the average run time. Jobs of
    /// a few milliseconds get the full prefetch; jobs of seconds get none, and wait in the
    /// queue for whichever worker is free first.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.cfg.prefetch = Some(n);
        self
    }

    /// How soon a prefetched job must be expected to start. Default 50 ms.
    pub fn prefetch_wait(mut self, d: Duration) -> Self {
        self.cfg.prefetch_wait = d;
        self
    }

    /// How long shutdown waits for running jobs before cancelling them. Default 25 s.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.cfg.shutdown_grace = d;
        self
    }

    /// How long a cancelled handler may take to return before it is dropped. Default 2 s.
    pub fn cancel_grace(mut self, d: Duration) -> Self {
        self.cfg.cancel_grace = d;
        self
    }

    /// Per-attempt time limit for jobs whose record and handler set none. Default none.
    pub fn default_timeout(mut self, d: Duration) -> Self {
        self.cfg.default_timeout = Some(d);
        self
    }

    /// Retry policy for jobs whose record and handler set none.
    pub fn default_retry(mut self, policy: RetryPolicy) -> Self {
        self.cfg.default_retry = policy;
        self
    }

    /// Keep results this long, unless a job sets its own `result_ttl` (default: until the
    /// job is pruned).
    pub fn result_ttl(mut self, d: Duration) -> Self {
        self.cfg.result_ttl = Some(d);
        self
    }

    /// Asks the store for periodic `ANALYZE` and WAL checkpoints
    /// ([`StoreUpkeep`](crate::maintenance::StoreUpkeep), under a leader lease). Default off.
    pub fn store_upkeep(mut self, config: Option<crate::maintenance::StoreUpkeepConfig>) -> Self {
        self.cfg.store_upkeep = config;
        self
    }

    /// The per-job caps on the lines handlers write with
    /// [`Context::log`](crate::Context::log). Default 1,000 lines and 256 KiB per job; past
    /// either, the oldest lines are dropped.
    pub fn log_limits(mut self, limits: crate::backend::LogLimits) -> Self {
        self.cfg.log_limits = limits;
        self
    }

    /// The longest wait for a backend wake-up before claiming again. Default 1 s.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.cfg.poll_interval = d;
        self
    }

    /// How often the worker record is heartbeated. Stored with the record: after three
    /// missed beats the worker is lost and its jobs are rescued early. Default 10 s.
    pub fn worker_heartbeat(mut self, d: Duration) -> Self {
        self.cfg.worker_heartbeat = d;
        self
    }

    /// The clock used for retry and snooze times (tests inject a `TokioClock`).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The codec for results and checkpoints of typed tasks. Default JSON.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// This worker's id (must be unique among running workers). Default
    /// `{hostname}-{pid}-{random}`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.cfg.id = id.into();
        self
    }

    /// The host name reported in the worker registry.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.cfg.hostname = hostname.into();
        self
    }

    /// Capability labels (such as `gpu`) reported in the worker registry. Informational:
    /// claims do not look at them.
    pub fn capabilities<S: Into<String>>(mut self, caps: impl IntoIterator<Item = S>) -> Self {
        self.cfg.capabilities = caps.into_iter().map(Into::into).collect();
        self
    }

    /// The lease rescuer's settings; `None` turns it off (another process must run it, or
    /// jobs of crashed workers are never re-delivered). Default on.
    pub fn rescuer(mut self, config: Option<RescuerConfig>) -> Self {
        self.cfg.rescuer = config;
        self
    }

    /// The scheduler's settings; `None` turns it off (then no tick of a stored schedule
    /// fires from this process). Runs on every node. Default on.
    pub fn scheduler(mut self, config: Option<crate::maintenance::SchedulerConfig>) -> Self {
        self.cfg.scheduler = config;
        self
    }

    /// Runs the pruner with these settings under a leader lease. Default off.
    pub fn pruner(mut self, config: Option<PrunerConfig>) -> Self {
        self.cfg.pruner = config;
        self
    }

    /// The workflow monitor's settings; `None` turns it off (another process must run it, or
    /// workflows never reach a final state). Runs under a leader lease. Default on.
    pub fn workflow_monitor(
        mut self,
        config: Option<crate::maintenance::WorkflowMonitorConfig>,
    ) -> Self {
        self.cfg.workflow_monitor = config;
        self
    }

    /// What `${env.NAME}` in the templates of workflow tasks this worker prepares may read:
    /// nothing by default; `quern worker` passes its allow-list
    /// (`EnvSource::Process { allow }`), a local `quern workflow run` the whole environment.
    pub fn workflow_env(mut self, env: crate::workflow::EnvSource) -> Self {
        self.cfg.workflow_env = env;
        self
    }

    /// Checks the settings and builds the worker. Fails on: no handlers, a kind registered
    /// twice, a bad queue name, a zero weight, concurrency or lease, or a cap for a queue
    /// the worker does not claim from.
    pub fn build(self) -> Result<Worker> {
        let mut cfg = self.cfg;
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.handlers.is_empty() {
            return bad("a worker needs at least one registered handler".into());
        }
        if cfg.queues.is_empty() {
            cfg.queues.push(QueueWeight::new("default", 1));
        }
        for (i, q) in cfg.queues.iter().enumerate() {
            validate_queue_name(&q.queue)?;
            if q.weight == 0 {
                return bad(format!("queue {:?} has weight 0", q.queue));
            }
            if cfg.queues[..i].iter().any(|p| p.queue == q.queue) {
                return bad(format!("queue {:?} is listed twice", q.queue));
            }
        }
        for (q, cap) in &cfg.queue_caps {
            if !cfg.queues.iter().any(|w| &w.queue == q) {
                return bad(format!(
                    "queue_concurrency for {q:?}, which the worker does not claim from"
                ));
            }
            if *cap == 0 {
                return bad(format!("queue_concurrency for {q:?} must be at least 1"));
            }
        }
        if cfg.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if cfg.lease < Duration::from_millis(100) {
            return bad(format!(
                "lease {:?} is too short (at least 100ms)",
                cfg.lease
            ));
        }
        if cfg.id.is_empty() || cfg.id.len() > 255 {
            return bad("worker id must be 1-255 bytes".into());
        }
        cfg.default_retry.validate()?;
        if let Some(p) = &cfg.pruner {
            p.validate()?;
        }
        cfg.poll_interval = cfg.poll_interval.max(Duration::from_millis(1));
        cfg.worker_heartbeat = cfg.worker_heartbeat.max(Duration::from_millis(10));
        cfg.ack_batch = cfg.ack_batch.max(1);

        let mut handlers: HashMap<String, Arc<dyn Handler>> = HashMap::new();
        for (kind, make) in self.handlers {
            if kind.is_empty() {
                return bad("a handler kind must not be empty".into());
            }
            if handlers.contains_key(&kind) {
                return bad(format!("kind {kind:?} is registered twice"));
            }
            handlers.insert(kind, make(self.codec));
        }
        Ok(Worker::from_parts(
            self.backend,
            cfg,
            handlers,
            self.clock,
            self.codec,
        ))
    }
}

impl fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("config", &self.cfg)
            .field(
                "kinds",
                &self.handlers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}
