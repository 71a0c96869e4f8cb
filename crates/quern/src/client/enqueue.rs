//! The typed enqueue builder returned by [`Client::enqueue`].

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use super::Client;
use crate::backend::EnqueueOutcome;
use crate::clock::Millis;
use crate::model::{JobId, NewJob, Payload, Priority, RetryPolicy, Trigger};
use crate::task::Task;
use crate::{Error, Result};

/// A typed enqueue waiting to be sent. Set options with the chained methods, then `.await`
/// it to get the [`JobId`] (or [`Enqueue::outcome`] to also learn whether it was a
/// unique-key duplicate).
///
/// Nothing is stored until it is awaited. An input that cannot be encoded, or an invalid
/// option, makes the await fail with a clear error and stores nothing.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<'a, T: Task> {
    client: &'a Client,
    /// The job being built, or the first error met while building it (reported at await).
    job: Result<NewJob>,
    _task: PhantomData<fn() -> T>,
}

impl<'a, T: Task> Enqueue<'a, T> {
    pub(super) fn new(client: &'a Client, input: &T::Input) -> Self {
        let job = Payload::encode(input, client.codec()).map(|payload| {
            NewJob::new(T::KIND, payload)
                .queue(T::queue())
                .priority(T::priority())
                .max_attempts(T::max_attempts())
                .version(T::VERSION)
        });
        Enqueue {
            client,
            job,
            _task: PhantomData,
        }
    }

    fn map(mut self, f: impl FnOnce(NewJob) -> NewJob) -> Self {
        self.job = self.job.map(f);
        self
    }

    /// The queue to put the job in (default: [`Task::queue`]).
    pub fn queue(self, queue: impl Into<String>) -> Self {
        let q = queue.into();
        self.map(|j| j.queue(q))
    }

    /// The priority, 0 (most urgent) to 9 (default: [`Task::priority`]).
    pub fn priority(self, p: Priority) -> Self {
        self.map(|j| j.priority(p))
    }

    /// Runs the job no earlier than `d` after the backend stores it (the backend adds `d`
    /// to its own clock at the store, the instant it records as `created_at`).
    pub fn delay(self, d: Duration) -> Self {
        self.map(|j| j.delay(d))
    }

    /// Runs the job no earlier than this time (milliseconds since the Unix epoch).
    pub fn run_at(self, at: Millis) -> Self {
        self.map(|j| j.run_at(at))
    }

    /// Makes the enqueue idempotent: while a live job with this key exists in the queue, the
    /// await returns that job's id instead of storing a new one.
    pub fn unique(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.map(|mut j| {
            j.unique_key = Some(key);
            j
        })
    }

    /// How long the unique key holds after the job is created, even once it has succeeded
    /// (needs [`Enqueue::unique`]).
    pub fn unique_for(self, window: Duration) -> Self {
        self.map(|mut j| {
            j.unique_for = Some(window);
            j
        })
    }

    /// Attempts before the job goes dead (default: [`Task::max_attempts`]).
    pub fn max_attempts(self, n: u32) -> Self {
        self.map(|j| j.max_attempts(n))
    }

    /// Runs only after job `id` has finished (see [`Enqueue::trigger`]). May be repeated.
    pub fn depends_on(self, id: JobId) -> Self {
        self.map(|j| j.depends_on([id]))
    }

    /// How dependencies must end for this job to run (default: all succeeded).
    pub fn trigger(self, t: Trigger) -> Self {
        self.map(|j| j.trigger(t))
    }

    /// The retry policy for this job only (default: the task's, applied by the worker).
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.map(|j| j.retry(policy))
    }

    /// The per-attempt time limit for this job only (default: the task's, then the worker's).
    pub fn timeout(self, d: Duration) -> Self {
        self.map(|j| j.timeout(d))
    }

    /// Adds a tag (stored with the job, in `quern jobs show --json`; nothing filters by
    /// tags yet). May be repeated.
    pub fn tag(self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        self.map(|mut j| {
            j.tags.push(tag);
            j
        })
    }

    /// Puts the job in a group of its queue (a tenant, an account): the queue serves its
    /// groups round-robin and may cap running jobs per group (docs/queues.md, "Groups").
    pub fn group(self, group: impl Into<String>) -> Self {
        let group = group.into();
        self.map(|j| j.group(group))
    }

    /// Uses this id instead of a fresh one (so a later job can depend on it before it is
    /// stored, or to make retries of the same enqueue call recognisable).
    pub fn id(self, id: JobId) -> Self {
        self.map(|j| j.id(id))
    }

    /// The job as it would be stored, without storing it.
    pub fn into_new_job(self) -> Result<NewJob> {
        let job = self.job?;
        if let Some(d) = job.delay
            && i64::try_from(d.as_millis()).is_err()
        {
            return Err(Error::InvalidArgument(format!("delay {d:?} is too long")));
        }
        Ok(job)
    }

    /// Stores the job and returns the full outcome (id, initial state, duplicate flag).
    pub async fn outcome(self) -> Result<EnqueueOutcome> {
        let client = self.client;
        let job = self.into_new_job()?;
        let outcome = client.enqueue_job(job).await?;
        tracing::debug!(
            job_id = %outcome.id,
            kind = T::KIND,
            state = %outcome.state,
            duplicate = outcome.duplicate,
            "enqueued"
        );
        Ok(outcome)
    }
}

impl<'a, T: Task> IntoFuture for Enqueue<'a, T> {
    type Output = Result<JobId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<JobId>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.outcome().await.map(|o| o.id) })
    }
}

impl<T: Task> std::fmt::Debug for Enqueue<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("kind", &T::KIND)
            .field("job", &self.job)
            .finish()
    }
}
