//! Queues, the dead-letter queue and workers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::CountsDto;

/// A queue and its numbers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueDto {
    pub name: String,
    /// A paused queue keeps its jobs queued and is not claimed from.
    pub paused: bool,
    pub counts: CountsDto,
    /// `run_at` of the oldest queued job, if any.
    pub oldest_queued_at: Option<i64>,
}

impl From<quern::backend::QueueInfo> for QueueDto {
    fn from(q: quern::backend::QueueInfo) -> Self {
        QueueDto {
            name: q.name,
            paused: q.paused,
            counts: q.counts.into(),
            oldest_queued_at: q.oldest_queued_at,
        }
    }
}

/// Every known queue.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueListDto {
    pub queues: Vec<QueueDto>,
}

/// Paging and filters of `GET /v1/dlq`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DlqQuery {
    pub queue: Option<String>,
    pub kind: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// `POST /v1/dlq/replay` (dead jobs back to `queued`) and `POST /v1/dlq/delete`: by ids
/// (all or nothing) or by filter (every field given must match; none: the whole DLQ).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// These dead jobs. Not together with a filter field.
    #[schema(value_type = Option<Vec<String>>)]
    pub ids: Option<Vec<String>>,
    /// Filter: dead jobs of this queue.
    pub queue: Option<String>,
    /// Filter: dead jobs of this kind.
    pub kind: Option<String>,
    /// Filter: dead jobs whose last error message contains this text (case-sensitive).
    pub error: Option<String>,
    /// Filter: dead jobs that died before this time (ms since the epoch, exclusive).
    pub dead_before: Option<i64>,
    /// Filter: dead jobs that died at or after this time (ms since the epoch).
    pub dead_after: Option<i64>,
    /// At most this many, for a filter (1 to 10000, default 1000).
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// Count what would be replayed and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a replay did, or would do.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    pub dry_run: bool,
    /// How many jobs were (or would be) replayed.
    pub count: usize,
    /// Their ids.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<quern::JobId>,
}

/// Whether a worker is still heartbeating.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStateDto {
    Alive,
    Lost,
}

/// A registered worker.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkerDto {
    pub id: String,
    pub state: WorkerStateDto,
    pub hostname: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub capabilities: Vec<String>,
    pub concurrency: u32,
    pub running: u32,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub heartbeat_interval_ms: Option<u64>,
}

impl WorkerDto {
    pub fn new(w: quern::backend::WorkerInfo, now: quern::Millis) -> Self {
        WorkerDto {
            state: match w.state(now) {
                quern::backend::WorkerState::Alive => WorkerStateDto::Alive,
                quern::backend::WorkerState::Lost => WorkerStateDto::Lost,
            },
            id: w.id,
            hostname: w.hostname,
            pid: w.pid,
            queues: w.queues,
            capabilities: w.capabilities,
            concurrency: w.concurrency,
            running: w.running,
            started_at: w.started_at,
            last_seen_at: w.last_seen_at,
            heartbeat_interval_ms: w.heartbeat_interval_ms,
        }
    }
}

/// Every registered worker, most recently seen first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkerListDto {
    pub workers: Vec<WorkerDto>,
}
