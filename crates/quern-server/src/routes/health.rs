//! `/healthz` (the process is up) and `/readyz` (the store answers). Neither needs a token,
//! so probes can call them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A probe's good answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDto {
    /// `ok` or `ready`.
    pub status: String,
}

/// The process is up (it answers HTTP).
#[utoipa::path(get, path = "/healthz", operation_id = "health_healthz", tag = "health", security(()),
    responses((status = 200, body = HealthDto)))]
pub async fn healthz() -> Json<HealthDto> {
    Json(HealthDto {
        status: "ok".into(),
    })
}

fn ready() -> Response {
    Json(HealthDto {
        status: "ready".into(),
    })
    .into_response()
}

/// Why work looks stuck, if it does: a queue that is not paused has had a ready job waiting
/// longer than `after` while a live worker serves that queue. Read from the store, so every
/// server answers the same.
async fn wedged(s: &AppState, after: std::time::Duration) -> quern::Result<Option<String>> {
    let now = quern::clock::system_now_ms();
    let queues = s.backend.queue_list().await?;
    let stuck: Vec<_> = queues
        .iter()
        .filter(|q| !q.paused && q.counts.queued > 0)
        .filter_map(|q| {
            let waited = now.saturating_sub(q.oldest_queued_at?);
            (waited > after.as_millis() as i64).then_some((q, waited))
        })
        .collect();
    if stuck.is_empty() {
        return Ok(None);
    }
    let workers = s.backend.worker_list().await?;
    for (q, waited) in stuck {
        let live = workers
            .iter()
            .filter(|w| {
                w.state(now) == quern::backend::WorkerState::Alive && w.queues.contains(&q.name)
            })
            .count();
        if live > 0 {
            return Ok(Some(format!(
                "queue {:?} has had a ready job waiting {} with {live} live worker(s) serving it and none claiming it",
                q.name,
                quern::model::format_duration(std::time::Duration::from_millis(waited as u64))
            )));
        }
    }
    Ok(None)
}

/// The store answered a read within the ready timeout (1 s), is not over its memory budget
/// (503 `store_full`, Redis `max_memory`), and (with
/// `[server] wedged_after`) no queue's ready work waits unclaimed beside live workers.
#[utoipa::path(get, path = "/readyz", operation_id = "health_readyz", tag = "health", security(()),
    responses(
        (status = 200, body = HealthDto),
        (status = 503, description = "Not ready, with the reason", body = ErrorBody),
    ))]
pub async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let limit = s.config.ready_timeout;
    // Over its memory budget the store refuses enqueues: not ready for producers.
    if let Ok(Ok(Some(b))) = tokio::time::timeout(limit, s.backend.store_budget()).await
        && b.full
    {
        let full = quern::Error::StoreFull {
            used: b.used_bytes,
            budget: b.budget_bytes,
        };
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            full.code(),
            full.to_string(),
        )
        .into_response();
    }
    let probe = s.backend.leader_get("quern.readyz".into());
    let reason = match tokio::time::timeout(limit, probe).await {
        Ok(Ok(_)) => match s.config.wedged_after {
            None => return ready(),
            Some(after) => match tokio::time::timeout(limit, wedged(&s, after)).await {
                Ok(Ok(None)) => return ready(),
                Ok(Ok(Some(why))) => {
                    return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "wedged", why)
                        .into_response();
                }
                Ok(Err(e)) => format!("the store failed: {e}"),
                Err(_) => format!(
                    "the store did not answer within {}",
                    quern::model::format_duration(limit)
                ),
            },
        },
        Ok(Err(e)) => format!("the store failed: {e}"),
        Err(_) => format!(
            "the store did not answer within {}",
            quern::model::format_duration(limit)
        ),
    };
    if s.shutdown.is_cancelled() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "shutting down",
        )
        .into_response();
    }
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", reason).into_response()
}
