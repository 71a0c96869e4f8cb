//! `GET /metrics`: this process's counters and the store's gauges as OpenMetrics text. It
//! needs a `read` token when tokens are configured, unless `metrics_public` is set.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Access;
use crate::error::ApiResult;
use crate::state::AppState;

/// Prometheus / OpenMetrics text exposition.
pub async fn metrics(State(s): State<Arc<AppState>>) -> ApiResult<Response> {
    let now = quern::clock::system_now_ms();
    let body = s.metrics.render(s.backend.as_ref(), now).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

/// The `read` check, unless the metrics are public.
pub async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if s.config.metrics_public {
        return next.run(req).await;
    }
    crate::auth::check(&s, Access::Read, req, next).await
}
