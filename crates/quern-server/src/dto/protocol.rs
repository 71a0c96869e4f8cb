//! The HTTP worker protocol (docs/worker-protocol.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ProgressDto;

/// `POST /v1/workers`: announce a worker.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Your worker's id; the server makes one up when left out. Registering again under
    /// the same id replaces the record.
    pub id: Option<String>,
    pub queues: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// How many jobs it runs at once (shown in `GET /v1/workers`); default 1.
    #[schema(minimum = 1)]
    pub concurrency: Option<u32>,
    pub hostname: Option<String>,
    #[schema(minimum = 0)]
    pub pid: Option<u32>,
    /// How often it will call the server (lease or heartbeat); a worker not heard from for
    /// three of these is lost and its jobs are re-delivered. Default 15 s.
    #[schema(minimum = 100)]
    pub heartbeat_interval_ms: Option<u64>,
}

/// The registered worker.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub worker_id: String,
    pub heartbeat_interval_ms: u64,
}

/// `POST /v1/lease`: take up to `max` jobs, waiting up to `wait_ms` for one.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The id `POST /v1/workers` returned (recorded in each lease).
    pub worker_id: String,
    pub queues: Vec<String>,
    /// 1 to 100, default 1.
    #[schema(minimum = 1, maximum = 100)]
    pub max: Option<usize>,
    /// Long poll: how long to wait for a job when none is ready, 0 to 30000; default 0.
    #[schema(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
    /// Lease length; default 30 s. Heartbeat before it runs out.
    #[schema(minimum = 100)]
    pub lease_ms: Option<u64>,
    /// How many jobs the worker is running now (shown in `GET /v1/workers`).
    pub running: Option<u32>,
}

/// A leased job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LeasedJobDto {
    pub id: String,
    pub kind: String,
    pub queue: String,
    pub priority: u8,
    /// Send it with every call about this job. A stale token (the job was re-delivered,
    /// cancelled or finished since) gets 409 `lease_lost`.
    pub token: String,
    /// 1-based.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The lease runs out at this time (ms since the epoch) unless heartbeated.
    pub deadline: i64,
    /// The job's input; for a workflow task, its rendered parameters.
    pub payload: serde_json::Value,
    /// The last checkpoint the job saved, if any.
    pub checkpoint: Option<serde_json::Value>,
    pub timeout_ms: Option<u64>,
    pub workflow_id: Option<String>,
    /// The payload's schema version as the producer stated it (0: none). A worker that
    /// knows a newer version upcasts the payload; one that knows only older ones should fail
    /// the job with `fatal`.
    pub payload_version: u32,
    /// The W3C trace context stored with the job: make the span that runs the job a child
    /// of it, so the trace continues from the producer.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// Leased jobs (none when the wait ran out).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LeaseResponse {
    pub jobs: Vec<LeasedJobDto>,
}

/// `POST /v1/jobs/{id}/heartbeat`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub token: String,
    /// New lease length from now; default 30 s.
    #[schema(minimum = 100)]
    pub lease_ms: Option<u64>,
    pub progress: Option<ProgressDto>,
    /// Saved with the job; a re-delivered attempt receives it.
    pub checkpoint: Option<serde_json::Value>,
    /// How many jobs the worker is running now (its record is refreshed with it); default 1.
    pub running: Option<u32>,
}

/// The extended lease.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HeartbeatResponse {
    pub deadline: i64,
    /// The server is shutting down: finish or release, and take no more work from it.
    pub stop: bool,
}

/// `POST /v1/jobs/{id}/complete`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub token: String,
    pub result: Option<serde_json::Value>,
}

/// `POST /v1/jobs/{id}/fail`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub token: String,
    /// What went wrong (kept in the job's error history).
    pub error: String,
    /// `false`: dead now. `true` (the default): retried by the job's retry policy while
    /// attempts remain.
    #[serde(default = "yes")]
    pub retryable: bool,
    /// Retry after this long instead of the policy's delay (still counts the attempt).
    #[schema(minimum = 0)]
    pub retry_after_ms: Option<u64>,
    /// An upstream rate limit (HTTP 429 and the like): with `retry_after_ms`, the job runs
    /// again after it without counting the attempt, and its queue admits no job of its
    /// group (or, without a group, of its kind) until then. `error` is not recorded.
    #[serde(default)]
    pub rate_limited: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/jobs/{id}/release`: give the job back without counting the attempt.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub token: String,
}

/// What a complete, fail or release did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AckResponse {
    pub id: String,
    /// The job's state after the call.
    pub state: super::JobStateDto,
}

/// `POST /v1/batch/heartbeat`: many leases in one call (at most 1000).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchHeartbeatRequest {
    pub items: Vec<BatchHeartbeatItem>,
    /// New lease length from now for every item; default 30 s.
    #[schema(minimum = 100)]
    pub lease_ms: Option<u64>,
    /// The worker sending them: its record is refreshed.
    pub worker_id: Option<String>,
    pub running: Option<u32>,
}

/// One lease of a batch heartbeat.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchHeartbeatItem {
    pub token: String,
    pub progress: Option<ProgressDto>,
    pub checkpoint: Option<serde_json::Value>,
}

/// `POST /v1/batch/complete`: many successes in one call (at most 1000).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteRequest {
    pub items: Vec<BatchCompleteItem>,
}

/// One success of a batch.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteItem {
    pub token: String,
    pub result: Option<serde_json::Value>,
}

/// `POST /v1/batch/fail`: many failures in one call (at most 1000).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchFailRequest {
    pub items: Vec<BatchFailItem>,
}

/// One failure of a batch, as `POST /v1/jobs/{id}/fail` takes it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchFailItem {
    pub token: String,
    pub error: String,
    #[serde(default = "yes")]
    pub retryable: bool,
    #[schema(minimum = 0)]
    pub retry_after_ms: Option<u64>,
    /// As in `POST /v1/jobs/{id}/fail`.
    #[serde(default)]
    pub rate_limited: bool,
}

/// `POST /v1/batch/release`: give many leases back.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReleaseRequest {
    pub tokens: Vec<String>,
}

/// One item's answer in a batch: `ok` and the new `deadline` (heartbeats), or `error`
/// (`lease_lost` for a stale token; that item changed nothing, the others stand).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchItemResult {
    pub id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

/// Per-item answers of a batch call, in request order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchAckResponse {
    pub results: Vec<BatchItemResult>,
    /// The server is shutting down (heartbeats only).
    pub stop: bool,
}
