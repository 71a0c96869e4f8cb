//! `GET /v1/alerts` and `POST /v1/dlq/delete` answers.

use serde::Serialize;
use utoipa::ToSchema;

/// A rule's state.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStateDto {
    Ok,
    Firing,
}

/// The last notice a rule sent.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AlertNoticeDto {
    /// `firing` or `resolved`.
    pub state: String,
    /// When (ms since the epoch).
    pub at: i64,
    pub episode: u64,
}

/// One `[[alerts]]` rule: its stored episode state and a reading taken for this answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AlertDto {
    pub name: String,
    /// `queue_depth`, `oldest_ready`, `failure_rate`, `dlq_growth`, `no_workers` or
    /// `cron_missed`.
    pub condition: String,
    pub state: AlertStateDto,
    /// Firing: when the condition started to hold (ms since the epoch).
    pub since: Option<i64>,
    /// The current reading (jobs, seconds, percent or workers); `null` when the read failed.
    pub value: Option<f64>,
    /// What the value is compared with, in the value's unit.
    pub threshold: f64,
    pub queue: Option<String>,
    /// What the reading says (or why it failed).
    pub message: String,
    /// The current (firing) or last episode's number; 0 before the first.
    pub episode: u64,
    /// Not yet firing: since when the condition has held, waiting out the rule's `for`.
    pub pending_since: Option<i64>,
    pub last_notification: Option<AlertNoticeDto>,
}

/// Every rule, in the order of `quern.toml`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AlertListDto {
    pub alerts: Vec<AlertDto>,
}

/// What a DLQ delete did, or would do.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DlqDeleteResponse {
    pub dry_run: bool,
    /// How many jobs were (or would be) deleted.
    pub count: usize,
    /// Their ids.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<quern::JobId>,
}
