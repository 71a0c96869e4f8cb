//! Outcomes per minute for the overview's charts: the store's per-minute rollups
//! (`Backend::stats_minutes`, the same as `GET /v1/stats/minutes`), counted in the
//! transitions themselves, so a restart loses nothing and a pruned job still counts. The
//! cost grows with queues × minutes, not with jobs; see docs/benchmarks.md.

use crate::dto::MinuteDto;
use crate::error::ApiResult;
use crate::state::AppState;

/// The charts cover the last day.
const MINUTES: i64 = 24 * 60;

/// One row per minute of the last day, oldest first (the current minute last).
pub async fn minutes(s: &AppState, now: i64) -> ApiResult<Vec<MinuteDto>> {
    Ok(crate::routes::stats::dense(&*s.backend, now, MINUTES, None).await?)
}
