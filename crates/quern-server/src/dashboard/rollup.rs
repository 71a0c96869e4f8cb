//! Finished jobs per minute for the overview's charts, counted from the stored finish
//! timestamps (`Backend::job_finished`, the input of `quern::stats`): nothing is kept in the
//! server, so a restart loses nothing. The cost grows with the jobs finished in the last day
//! (not with the store's size); see docs/benchmarks.md.

use quern::backend::FinishedParams;
use quern::model::JobState;

use crate::dashboard::api::MinuteDto;
use crate::error::ApiResult;
use crate::state::AppState;

const MINUTE: i64 = 60_000;
/// The charts cover the last day.
const MINUTES: i64 = 24 * 60;

/// One row per minute of the last day, oldest first (the current minute last).
pub async fn minutes(s: &AppState, now: i64) -> ApiResult<Vec<MinuteDto>> {
    let first = (now / MINUTE - (MINUTES - 1)) * MINUTE;
    let mut rows: Vec<MinuteDto> = (0..MINUTES)
        .map(|i| MinuteDto {
            at: first + i * MINUTE,
            succeeded: 0,
            failed: 0,
        })
        .collect();
    let finished = s
        .backend
        .job_finished(FinishedParams {
            since: first,
            ..FinishedParams::default()
        })
        .await?;
    for j in finished {
        let Ok(i) = usize::try_from((j.finished_at - first) / MINUTE) else {
            continue;
        };
        let Some(row) = rows.get_mut(i) else { continue };
        match j.state {
            JobState::Succeeded => row.succeeded += 1,
            JobState::Dead => row.failed += 1,
            _ => {}
        }
    }
    Ok(rows)
}
