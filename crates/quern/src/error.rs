//! The core crate's one error type.

use crate::model::{JobId, JobState};

/// Every error the core library and the [`Backend`](crate::Backend) seam report.
///
/// Backends map their own failures into these variants so that callers (the worker, the CLI,
/// the HTTP server) can decide what to do without knowing which backend is in use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lease token is stale: the job was re-delivered, cancelled, given back or finished
    /// since this token was issued. Nothing was changed. A worker that sees this must stop
    /// working on the job and must not report any outcome for it.
    #[error(
        "lease lost for job {job_id}: the job was re-delivered, cancelled or finished since this lease was issued"
    )]
    LeaseLost { job_id: JobId },

    /// No job has this id.
    #[error("job {0} not found")]
    JobNotFound(JobId),

    /// No workflow has this id.
    #[error("workflow {0} not found")]
    WorkflowNotFound(String),

    /// A compare-and-set update lost a race: the record changed since the caller read it.
    /// Nothing was changed; re-read and decide again.
    #[error("conflict: {0}")]
    Conflict(String),

    /// No schedule has this name.
    #[error("schedule {0:?} not found")]
    ScheduleNotFound(String),

    /// No queue has this name (queues exist once a job was enqueued into them).
    #[error("queue {0:?} not found")]
    QueueNotFound(String),

    /// A job failed validation before anything was stored. `index` is its position in the
    /// batch when it came in a batch.
    #[error("{}invalid job: {reason}", index.map(|i| format!("batch item {i}: ")).unwrap_or_default())]
    InvalidJob {
        index: Option<usize>,
        reason: String,
    },

    /// The payload (or result) is larger than the configured limit.
    #[error("payload of {size} bytes is over the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },

    /// The requested operation does not apply to a job in its current state.
    #[error("cannot {action} job {id}: it is {from}")]
    InvalidTransition {
        id: JobId,
        from: JobState,
        action: &'static str,
    },

    /// A payload or result could not be encoded or decoded.
    #[error("codec error: {0}")]
    Codec(String),

    /// Bad input other than a job (a duration, a priority name, a URL, a filter).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The store could not be reached or answered with an error that may go away
    /// (connection refused, Redis restarting, SQLite busy past its timeout). Safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    /// The store failed in a way that retrying will not fix (corrupt file, bad schema).
    #[error("store error: {0}")]
    Storage(String),

    /// The backend does not support this operation (see `Backend::capabilities`). Nothing
    /// was changed.
    #[error("not supported: {0}")]
    Unsupported(String),

    /// The store is over its configured budget (`[redis] max_memory`): new jobs are refused
    /// until it shrinks (finished jobs pruned, memory freed) or the budget is raised.
    /// Nothing was stored.
    #[error(
        "store full: {} used of a budget of {}; new jobs are refused until the store shrinks (prune finished jobs) or the budget is raised",
        crate::model::format_bytes(*used),
        crate::model::format_bytes(*budget)
    )]
    StoreFull { used: u64, budget: u64 },

    /// The component is shutting down and refused new work.
    #[error("shutting down")]
    Shutdown,

    /// A wait gave up before the awaited thing happened (for example `Client::wait` on a job
    /// that is still running). Nothing was changed.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the same call may succeed if retried later (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// A short, stable, machine-readable code for this error, used in `--json` output and in
    /// HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::LeaseLost { .. } => "lease_lost",
            Error::JobNotFound(_) => "job_not_found",
            Error::WorkflowNotFound(_) => "workflow_not_found",
            Error::Conflict(_) => "conflict",
            Error::QueueNotFound(_) => "queue_not_found",
            Error::ScheduleNotFound(_) => "schedule_not_found",
            Error::InvalidJob { .. } => "invalid_job",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::Codec(_) => "codec",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Unavailable(_) => "unavailable",
            Error::Storage(_) => "storage",
            Error::Unsupported(_) => "unsupported",
            Error::StoreFull { .. } => "store_full",
            Error::Shutdown => "shutdown",
            Error::Timeout(_) => "timeout",
        }
    }
}
