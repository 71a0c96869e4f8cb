//! Jobs: what is enqueued and what is shown.

use std::time::Duration;

use quern::{Job, JobId, NewJob, Payload, Priority};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::JobStateDto;
use crate::error::ApiError;

/// A job to enqueue.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The handler name (`shell`, `http`, `quern.noop`, or a kind your workers know).
    #[schema(min_length = 1, max_length = 255)]
    pub kind: String,
    /// Any JSON; `null` when left out.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Default `default`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub queue: Option<String>,
    /// 0 (most urgent) to 9; default 5.
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// Run no earlier than this many milliseconds after the store receives the job.
    #[schema(minimum = 0)]
    pub delay_ms: Option<u64>,
    /// Run no earlier than this time (ms since the epoch). Not together with `delay_ms`.
    pub run_at: Option<i64>,
    /// A live job in the same queue with this key makes the enqueue a duplicate.
    pub unique_key: Option<String>,
    /// How long the unique key holds after the job finished (needs `unique_key`).
    #[schema(minimum = 0)]
    pub unique_for_ms: Option<u64>,
    /// Attempts before the job is dead; default 25.
    #[schema(minimum = 1)]
    pub max_attempts: Option<u32>,
    /// A retry policy in its text form: `none`, `fixed:5s`, `exponential:1s..1h`.
    pub retry: Option<String>,
    /// Time limit of one attempt.
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// How long the result is kept after the job succeeded.
    #[schema(minimum = 0)]
    pub result_ttl_ms: Option<u64>,
    /// Jobs that must finish first.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<String>,
    /// The payload's schema version: a worker whose task declares a newer version upcasts
    /// the payload first, one that knows only older versions fails the job as fatal. Default
    /// 0: none stated (decoded as the worker's current version).
    #[schema(minimum = 0)]
    pub payload_version: Option<u32>,
    /// W3C trace context of the producer (`00-<trace id>-<span id>-<flags>`), continued by
    /// the worker that runs the job. Overrides the request's `traceparent` header.
    pub traceparent: Option<String>,
    /// W3C `tracestate` to go with `traceparent` (needs it).
    pub tracestate: Option<String>,
    /// The job's group in its queue (a tenant, an account): the queue serves its groups
    /// round-robin and may cap running jobs per group. 1-128 characters of letters, digits
    /// and `_ . : @ / + = -`.
    pub group: Option<String>,
}

impl EnqueueRequest {
    /// The job to store, checked against the store's rules (nothing is stored when this
    /// fails).
    pub fn into_job(
        self,
        codec: &quern::Codec,
        limits: &quern::model::Limits,
    ) -> Result<NewJob, ApiError> {
        let payload = Payload::from_json_value(&self.payload, codec)?;
        let mut job = NewJob::new(self.kind, payload);
        if let Some(q) = self.queue {
            job = job.queue(q);
        }
        if let Some(p) = self.priority {
            let p = Priority::new(p)
                .ok_or_else(|| ApiError::invalid(format!("priority {p} is not 0 to 9")))?;
            job = job.priority(p);
        }
        if self.delay_ms.is_some() && self.run_at.is_some() {
            return Err(ApiError::invalid("give delay_ms or run_at, not both"));
        }
        if let Some(d) = self.delay_ms {
            if d > i64::MAX as u64 / 2 {
                return Err(ApiError::invalid("delay_ms is too large"));
            }
            job = job.delay(Duration::from_millis(d));
        }
        if let Some(at) = self.run_at {
            job = job.run_at(at);
        }
        match (self.unique_key, self.unique_for_ms) {
            (Some(k), w) => job = job.unique(k, w.map(Duration::from_millis)),
            (None, Some(_)) => return Err(ApiError::invalid("unique_for_ms needs a unique_key")),
            (None, None) => {}
        }
        if let Some(n) = self.max_attempts {
            job = job.max_attempts(n);
        }
        if let Some(r) = self.retry {
            let p: quern::RetryPolicy = r.parse().map_err(|e: quern::Error| match e {
                quern::Error::InvalidArgument(m) => ApiError::invalid(m),
                other => other.into(),
            })?;
            job = job.retry(p);
        }
        if let Some(t) = self.timeout_ms {
            job = job.timeout(Duration::from_millis(t));
        }
        if let Some(t) = self.result_ttl_ms {
            job = job.result_ttl(Duration::from_millis(t));
        }
        let deps = self
            .depends_on
            .iter()
            .map(|s| {
                s.parse::<JobId>()
                    .map_err(|_| ApiError::invalid(format!("depends_on: {s:?} is not a job id")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut job = job.depends_on(deps);
        if let Some(v) = self.payload_version {
            job = job.version(v);
        }
        match (self.traceparent, self.tracestate) {
            (Some(tp), ts) => {
                let tc = quern::model::TraceContext::new(&tp, ts.as_deref()).map_err(
                    |e: quern::Error| match e {
                        quern::Error::InvalidArgument(m) => ApiError::invalid(m),
                        other => other.into(),
                    },
                )?;
                job = job.trace(tc);
            }
            (None, Some(_)) => return Err(ApiError::invalid("tracestate needs a traceparent")),
            (None, None) => {}
        }
        job.group = self.group;
        job.validate(limits)?;
        Ok(job)
    }
}

/// What happened to an enqueued job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EnqueuedDto {
    #[schema(value_type = String)]
    pub id: JobId,
    pub state: JobStateDto,
    /// True when a live job with the same unique key already existed: `id` is that job's.
    pub duplicate: bool,
}

impl From<quern::backend::EnqueueOutcome> for EnqueuedDto {
    fn from(o: quern::backend::EnqueueOutcome) -> Self {
        EnqueuedDto {
            id: o.id,
            state: o.state.into(),
            duplicate: o.duplicate,
        }
    }
}

/// How a batch treats invalid jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchModeDto {
    /// All or nothing: one invalid job refuses the whole batch (422) and stores nothing.
    #[default]
    Atomic,
    /// The valid jobs are stored; each invalid one gets its own error.
    BestEffort,
}

/// Many jobs in one call.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub jobs: Vec<EnqueueRequest>,
    #[serde(default)]
    pub mode: BatchModeDto,
}

/// One job of a batch: its outcome or its error.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchItemDto {
    /// Position in the request.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<EnqueuedDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

/// The answer to a batch.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItemDto>,
    pub enqueued: usize,
    pub failed: usize,
}

/// The lease of a running job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LeaseDto {
    pub worker_id: String,
    pub expires_at: i64,
}

/// One failed attempt.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorRecordDto {
    pub attempt: u32,
    pub at: i64,
    /// `retryable`, `fatal`, `timeout`, `panic`, `lease_expired`, …
    pub kind: String,
    pub message: String,
}

/// A running job's progress.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressDto {
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub percent: f32,
    pub message: Option<String>,
}

/// A job as stored.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobDto {
    #[schema(value_type = String)]
    pub id: JobId,
    pub kind: String,
    pub queue: String,
    pub priority: u8,
    pub state: JobStateDto,
    pub attempt: u32,
    pub max_attempts: u32,
    /// The job's own retry policy (text form); `null` uses the worker's.
    pub retry: Option<String>,
    pub run_at: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub claimed_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub lease: Option<LeaseDto>,
    pub timeout_ms: Option<u64>,
    pub unique_key: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub depends_on: Vec<JobId>,
    pub workflow_id: Option<String>,
    /// The job's group in its queue (`null`: none).
    pub group: Option<String>,
    pub payload: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub result_expires_at: Option<i64>,
    pub errors: Vec<ErrorRecordDto>,
    pub progress: Option<ProgressDto>,
    /// The payload's schema version (0: none stated).
    pub payload_version: u32,
    /// The W3C trace context stored at enqueue, if any.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

fn json_of(p: &Payload) -> serde_json::Value {
    // A payload that is not JSON-representable is shown as a note rather than failing the
    // whole answer (it still runs unchanged).
    p.to_json_value()
        .unwrap_or_else(|e| serde_json::json!({"undecodable": e.to_string()}))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<&Job> for JobDto {
    fn from(j: &Job) -> Self {
        JobDto {
            id: j.id,
            kind: j.kind.clone(),
            queue: j.queue.clone(),
            priority: j.priority.get(),
            state: j.state.into(),
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            retry: j.retry.as_ref().map(|r| r.to_string()),
            run_at: j.run_at,
            created_at: j.created_at,
            started_at: j.started_at,
            claimed_at: j.claimed_at,
            finished_at: j.finished_at,
            lease: j.lease.as_ref().map(|l| LeaseDto {
                worker_id: l.worker_id.clone(),
                expires_at: l.expires_at,
            }),
            timeout_ms: j.timeout.map(ms),
            unique_key: j.unique_key.clone(),
            depends_on: j.depends_on.clone(),
            workflow_id: j.workflow_id.clone(),
            group: j.group.clone(),
            payload: json_of(&j.payload),
            result: j.result.as_ref().map(json_of),
            result_expires_at: j.result_expires_at,
            errors: j
                .errors
                .iter()
                .map(|e| ErrorRecordDto {
                    attempt: e.attempt,
                    at: e.at,
                    kind: serde_json::to_value(e.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    message: e.message.clone(),
                })
                .collect(),
            progress: j.progress.as_ref().map(|p| ProgressDto {
                percent: p.percent,
                message: p.message.clone(),
            }),
            payload_version: j.version,
            traceparent: j.trace.as_ref().map(|t| t.traceparent.clone()),
            tracestate: j.trace.as_ref().and_then(|t| t.tracestate.clone()),
        }
    }
}

/// A page of jobs, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobPageDto {
    pub jobs: Vec<JobDto>,
    /// Pass as `cursor` for the next page; `null` when this was the last.
    pub next_cursor: Option<String>,
}

impl From<quern::backend::JobPage> for JobPageDto {
    fn from(p: quern::backend::JobPage) -> Self {
        JobPageDto {
            jobs: p.jobs.iter().map(JobDto::from).collect(),
            next_cursor: p.next.map(|id| id.to_string()),
        }
    }
}

/// Filters and paging of `GET /v1/jobs`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    pub queue: Option<String>,
    pub state: Option<JobStateDto>,
    pub kind: Option<String>,
    pub workflow_id: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A cursor from a query: the id of the last job of the previous page.
pub fn cursor(c: Option<&str>) -> Result<Option<JobId>, ApiError> {
    c.map(|s| {
        s.parse().map_err(|_| {
            ApiError::bad_request("invalid_query", format!("cursor {s:?} is not a cursor"))
        })
    })
    .transpose()
}

/// `POST /v1/jobs/{id}/cancel`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Recorded with the job.
    pub reason: Option<String>,
}

/// `POST /v1/jobs/{id}/reprioritize`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprioritizeRequest {
    #[schema(minimum = 0, maximum = 9)]
    pub priority: u8,
}

/// Paging of `GET /v1/jobs/{id}/logs`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobLogsQuery {
    /// Only lines after this `seq` (the `next_after` of the previous page); default 0, from
    /// the oldest kept line.
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Log level of a job's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevelDto {
    Debug,
    Info,
    Warn,
    Error,
}

impl From<quern::backend::LogLevel> for LogLevelDto {
    fn from(l: quern::backend::LogLevel) -> Self {
        use quern::backend::LogLevel as L;
        match l {
            L::Debug => LogLevelDto::Debug,
            L::Info => LogLevelDto::Info,
            L::Warn => LogLevelDto::Warn,
            L::Error => LogLevelDto::Error,
        }
    }
}

/// One stored line of a job's log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LogLineDto {
    /// Position in the job's log (1 for the first line ever appended).
    pub seq: u64,
    /// When the line was written (Unix ms, the writer's clock).
    pub at: i64,
    pub level: LogLevelDto,
    /// The attempt that wrote it.
    pub attempt: u32,
    pub message: String,
}

/// A page of a job's log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobLogsDto {
    /// Lines in `seq` order.
    pub lines: Vec<LogLineDto>,
    /// Lines of this job dropped by the per-job caps so far (always the oldest).
    pub dropped: u64,
    /// The `after` of the next page (the last line's `seq`, or the request's `after`).
    pub next_after: u64,
}

impl JobLogsDto {
    pub fn new(p: quern::backend::JobLogPage, after: u64) -> Self {
        JobLogsDto {
            next_after: p.next_after(after),
            dropped: p.dropped,
            lines: p
                .lines
                .into_iter()
                .map(|l| LogLineDto {
                    seq: l.seq,
                    at: l.at,
                    level: l.level.into(),
                    attempt: l.attempt,
                    message: l.message,
                })
                .collect(),
        }
    }
}
