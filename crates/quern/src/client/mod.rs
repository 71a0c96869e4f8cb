//! The producer side: [`Client`] enqueues jobs and looks them up.
//!
//! A `Client` is a thin, cheap-to-clone handle over an `Arc<dyn Backend>`. Typed enqueues go
//! through [`Client::enqueue`], which returns an [`Enqueue`] builder; awaiting the builder
//! stores the job. Raw [`NewJob`]s (from the CLI, the workflow engine) go
//! through [`Client::enqueue_job`] and [`Client::enqueue_batch`].

mod enqueue;
mod schedules;
mod wait;

use std::fmt;
use std::sync::Arc;

use tracing::Instrument;

pub use enqueue::Enqueue;
pub use schedules::Schedules;
pub use wait::WaitOptions;

use crate::backend::{
    Backend, BatchMode, CancelParams, EnqueueOutcome, EnqueueParams, EnqueueResults, JobPage,
    JobReprioritizeParams, ListParams,
};
use crate::model::{Codec, Job, JobId, NewJob, Priority};
use crate::routing::Router;
use crate::task::Task;
use crate::{Error, Result};

/// Enqueues jobs and reads them back.
///
/// ```no_run
/// # async fn demo(backend: std::sync::Arc<dyn quern::Backend>) -> quern::Result<()> {
/// use std::time::Duration;
/// # use quern::{Context, Task, TaskError};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Welcome { email: String }
/// # struct SendWelcome;
/// # impl Task for SendWelcome {
/// #     const KIND: &'static str = "send_welcome";
/// #     type Input = Welcome;
/// #     type Output = ();
/// #     async fn run(&self, _: &Context, _: Welcome) -> Result<(), TaskError> { Ok(()) }
/// # }
/// let client = quern::Client::new(backend);
/// let id = client
///     .enqueue::<SendWelcome>(&Welcome { email: "ada@example.com".into() })
///     .queue("mail")
///     .delay(Duration::from_secs(60))
///     .unique("welcome:ada@example.com")
///     .await?;
/// let job = client.wait(id, Duration::from_secs(120)).await?;
/// println!("{id} ended {}", job.state);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
    /// How typed inputs are encoded (JSON by default).
    codec: Codec,
    /// Routes applied to every job enqueued through this client.
    router: Option<Arc<Router>>,
}

impl Client {
    /// A client over `backend`, encoding payloads as JSON.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Client {
            backend,
            codec: Codec::default(),
            router: None,
        }
    }

    /// Routes every job enqueued through this client (typed, raw and batches) that did not
    /// choose its queue (`default`) or priority (the default) by `router`; see
    /// [`crate::routing`]. An empty router changes nothing.
    pub fn with_router(mut self, router: Router) -> Self {
        self.router = (!router.is_empty()).then(|| Arc::new(router));
        self
    }

    /// The routes applied at enqueue, if any.
    pub fn router(&self) -> Option<&Router> {
        self.router.as_deref()
    }

    fn route(&self, job: &mut NewJob) {
        if let Some(r) = &self.router {
            r.apply_defaults(job);
        }
    }

    /// Uses `codec` for typed payloads (for example MessagePack, or a lower size limit).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The backend this client talks to.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The codec typed payloads are encoded with.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Starts a typed enqueue of a `T` job with `input`. Await the returned builder to store
    /// the job; set options on it first. Defaults come from `T` ([`Task::queue`],
    /// [`Task::priority`], [`Task::max_attempts`]); the retry policy and timeout stay unset
    /// on the job unless given here, so the worker applies `T`'s current ones when it runs.
    pub fn enqueue<T: Task>(&self, input: &T::Input) -> Enqueue<'_, T> {
        Enqueue::new(self, input)
    }

    /// Stores one raw job. A unique-key duplicate is not an error: the outcome carries the
    /// existing job's id and `duplicate = true`.
    ///
    /// Runs in a `quern.enqueue` span; a job without a trace context gets the span's
    /// (with the `otel` feature; see [`crate::telemetry`]).
    pub async fn enqueue_job(&self, mut job: NewJob) -> Result<EnqueueOutcome> {
        self.route(&mut job);
        let span = tracing::info_span!(
            "quern.enqueue",
            job_id = %job.id,
            kind = %job.kind,
            queue = %job.queue,
        );
        async move {
            if job.trace.is_none() {
                job.trace = crate::telemetry::current_trace();
            }
            let mut results = self
                .backend
                .job_enqueue(EnqueueParams {
                    jobs: vec![job],
                    mode: BatchMode::Atomic,
                })
                .await?;
            match results.pop() {
                Some(r) if results.is_empty() => r,
                _ => Err(Error::Storage(
                    "backend returned the wrong number of enqueue results".into(),
                )),
            }
        }
        .instrument(span)
        .await
    }

    /// Stores many jobs in one call. `Atomic` stores all or nothing (the first invalid job
    /// fails the call); `BestEffort` stores the valid ones and returns an error for each
    /// invalid one, in input order. Jobs in one batch may depend on earlier ones.
    pub async fn enqueue_batch(
        &self,
        mut jobs: Vec<NewJob>,
        mode: BatchMode,
    ) -> Result<EnqueueResults> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let n = jobs.len();
        let span = tracing::info_span!("quern.enqueue", jobs = n);
        let trace = span.in_scope(crate::telemetry::current_trace);
        for j in &mut jobs {
            self.route(j);
            if j.trace.is_none() {
                j.trace.clone_from(&trace);
            }
        }
        let results = self
            .backend
            .job_enqueue(EnqueueParams { jobs, mode })
            .instrument(span)
            .await?;
        if results.len() != n {
            return Err(Error::Storage(format!(
                "backend returned {} enqueue results for {n} jobs",
                results.len()
            )));
        }
        Ok(results)
    }

    /// One job, or `None` if no job has this id (or it was pruned).
    pub async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.backend.job_get(id.into()).await
    }

    /// Cancels a job that has not finished. A running job's lease is revoked: its handler
    /// sees [`Context::cancelled`](crate::Context::cancelled) at the worker's next heartbeat
    /// and its outcome is discarded. Returns the job as stored after the change.
    pub async fn cancel(&self, id: JobId, reason: Option<String>) -> Result<Job> {
        self.backend.job_cancel(CancelParams { id, reason }).await
    }

    /// Gives a job that is waiting to run (scheduled, queued or blocked) a new priority: a
    /// queued job is claimed in its new place at once, a scheduled or blocked one once it is
    /// ready. Returns the job as stored after the change; a running or finished job is
    /// [`Error::InvalidTransition`] and an unknown id [`Error::JobNotFound`], both changing
    /// nothing.
    pub async fn reprioritize(&self, id: JobId, priority: Priority) -> Result<Job> {
        self.backend
            .job_reprioritize(JobReprioritizeParams { id, priority })
            .await
    }

    /// Recurring schedules: add, change, pause, resume, trigger, remove (see [`Schedules`]).
    pub fn schedules(&self) -> Schedules {
        Schedules::new(Arc::clone(&self.backend))
    }

    /// Jobs matching a filter, newest first, one page at a time.
    pub async fn list(&self, params: ListParams) -> Result<JobPage> {
        self.backend.job_list(params).await
    }

    /// Waits until job `id` is terminal (succeeded, dead, cancelled or skipped) and returns
    /// it. Polls with a backoff from 10 ms up to 1 s. Fails with [`Error::Timeout`] if the job
    /// is still not terminal after `timeout`, and with [`Error::JobNotFound`] if it does not
    /// exist.
    pub async fn wait(&self, id: JobId, timeout: std::time::Duration) -> Result<Job> {
        self.wait_with(id, WaitOptions::new(timeout)).await
    }

    /// [`Client::wait`] with a custom polling schedule.
    pub async fn wait_with(&self, id: JobId, opts: WaitOptions) -> Result<Job> {
        wait::wait_terminal(self.backend.as_ref(), id, opts).await
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("backend", &self.backend)
            .field("codec", &self.codec)
            .finish()
    }
}

#[cfg(test)]
mod tests;
