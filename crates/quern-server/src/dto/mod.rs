//! The HTTP API's own request and response types. They are not the `Backend` params (an
//! internal seam that may change in any release) and they are what the OpenAPI document
//! describes. Requests refuse unknown fields. Times are milliseconds since the Unix epoch
//! (UTC); durations are milliseconds in fields ending in `_ms`.

mod alerts;
mod event;
mod job;
mod protocol;
mod queue;
mod schedule;
mod stats;
mod workflow;

pub use alerts::*;
pub use event::*;
pub use job::*;
pub use protocol::*;
pub use queue::*;
pub use schedule::*;
pub use stats::*;
pub use workflow::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateDto {
    Scheduled,
    Queued,
    Blocked,
    Running,
    Succeeded,
    Dead,
    Cancelled,
    Skipped,
}

impl From<quern::JobState> for JobStateDto {
    fn from(s: quern::JobState) -> Self {
        use quern::JobState as S;
        match s {
            S::Scheduled => JobStateDto::Scheduled,
            S::Queued => JobStateDto::Queued,
            S::Blocked => JobStateDto::Blocked,
            S::Running => JobStateDto::Running,
            S::Succeeded => JobStateDto::Succeeded,
            S::Dead => JobStateDto::Dead,
            S::Cancelled => JobStateDto::Cancelled,
            S::Skipped => JobStateDto::Skipped,
        }
    }
}

impl From<JobStateDto> for quern::JobState {
    fn from(s: JobStateDto) -> Self {
        use quern::JobState as S;
        match s {
            JobStateDto::Scheduled => S::Scheduled,
            JobStateDto::Queued => S::Queued,
            JobStateDto::Blocked => S::Blocked,
            JobStateDto::Running => S::Running,
            JobStateDto::Succeeded => S::Succeeded,
            JobStateDto::Dead => S::Dead,
            JobStateDto::Cancelled => S::Cancelled,
            JobStateDto::Skipped => S::Skipped,
        }
    }
}

/// How many jobs are in each state.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct CountsDto {
    pub scheduled: u64,
    pub queued: u64,
    pub blocked: u64,
    pub running: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

impl From<quern::model::StateCounts> for CountsDto {
    fn from(c: quern::model::StateCounts) -> Self {
        CountsDto {
            scheduled: c.scheduled,
            queued: c.queued,
            blocked: c.blocked,
            running: c.running,
            succeeded: c.succeeded,
            dead: c.dead,
            cancelled: c.cancelled,
            skipped: c.skipped,
        }
    }
}

/// The largest page a list returns.
pub const MAX_PAGE: usize = 1000;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: usize = 100;

/// A page size from a query: at least 1, at most [`MAX_PAGE`].
pub fn page_size(limit: Option<usize>) -> Result<usize, crate::error::ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(crate::error::ApiError::bad_request(
            "invalid_query",
            format!("limit {n} is out of range (1 to {MAX_PAGE})"),
        )),
    }
}
