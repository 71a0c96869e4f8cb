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

/// The store answered a read within the ready timeout (1 s).
#[utoipa::path(get, path = "/readyz", operation_id = "health_readyz", tag = "health", security(()),
    responses(
        (status = 200, body = HealthDto),
        (status = 503, description = "Not ready, with the reason", body = ErrorBody),
    ))]
pub async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let limit = s.config.ready_timeout;
    let probe = s.backend.leader_get("quern.readyz".into());
    let reason = match tokio::time::timeout(limit, probe).await {
        Ok(Ok(_)) => {
            return Json(HealthDto {
                status: "ready".into(),
            })
            .into_response();
        }
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
