//! `GET /v1/stats/minutes`: succeeded and failed per minute, from the store's per-minute
//! rollups (`Backend::stats_minutes`, counted in the transitions themselves): a restart of
//! the server loses nothing, and the answer costs O(queues × minutes), never a read of jobs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use quern::Backend;
use quern::backend::{MINUTE_MS, MinuteCounts, MinutesParams};

use crate::dto::{MinuteDto, MinutesDto, MinutesQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;

/// The most minutes one answer covers: what the stores keep.
pub const MAX_MINUTES: i64 = quern::backend::ROLLUP_KEEP_MS / MINUTE_MS;

/// The `count` minutes ending with the one `now` falls in, oldest first, zeros included,
/// summed over the queues (or only `queue`).
pub async fn dense(
    backend: &dyn Backend,
    now: i64,
    count: i64,
    queue: Option<String>,
) -> quern::Result<Vec<MinuteDto>> {
    let first = MinuteCounts::minute_of(now) - (count - 1) * MINUTE_MS;
    let mut out: Vec<MinuteDto> = (0..count)
        .map(|i| MinuteDto {
            at: first + i * MINUTE_MS,
            ..MinuteDto::default()
        })
        .collect();
    let rows = backend
        .stats_minutes(MinutesParams {
            since: first,
            queue,
        })
        .await?;
    for r in rows {
        let Ok(i) = usize::try_from((r.at - first) / MINUTE_MS) else {
            continue;
        };
        // A row past the current minute (another server's clock ahead of ours) is left out.
        let Some(m) = out.get_mut(i) else { continue };
        m.succeeded += r.succeeded;
        m.failed += r.failed;
        m.dead += r.dead;
    }
    Ok(out)
}

/// Outcomes per minute over a window ending now.
#[utoipa::path(get, path = "/v1/stats/minutes", operation_id = "stats_minutes", tag = "stats",
    params(MinutesQuery),
    responses((status = 200, body = MinutesDto)))]
pub async fn minutes(
    State(s): State<Arc<AppState>>,
    Query(q): Query<MinutesQuery>,
) -> ApiResult<Json<MinutesDto>> {
    let count = match q.minutes {
        None => 60,
        Some(n @ 1..=MAX_MINUTES) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "minutes {n} is not 1 to {MAX_MINUTES}"
            )));
        }
    };
    let now = quern::clock::system_now_ms();
    let minutes = dense(&*s.backend, now, count, q.queue).await?;
    Ok(Json(MinutesDto { now, minutes }))
}
