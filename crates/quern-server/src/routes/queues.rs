//! `/v1/queues`, `/v1/dlq` and `GET /v1/workers`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use quern::JobState;
use quern::backend::{JobFilter, ListParams, RetryParams, RetryTarget};

use crate::dto::{
    DlqQuery, JobPageDto, QueueDto, QueueListDto, ReplayRequest, ReplayResponse, WorkerDto,
    WorkerListDto, cursor, page_size,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Query};
use crate::state::AppState;

use super::dlq;

/// Every known queue with its counts.
#[utoipa::path(get, path = "/v1/queues", operation_id = "queues_list", tag = "queues",
    responses((status = 200, body = QueueListDto)))]
pub async fn list(State(s): State<Arc<AppState>>) -> ApiResult<Json<QueueListDto>> {
    let queues = s.backend.queue_list().await?;
    Ok(Json(QueueListDto {
        queues: queues.into_iter().map(Into::into).collect(),
    }))
}

/// One queue.
#[utoipa::path(get, path = "/v1/queues/{name}", operation_id = "queues_get", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueDto), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueDto>> {
    Ok(Json(s.backend.queue_stats((&name).into()).await?.into()))
}

/// Stop claims from a queue (its jobs stay queued).
#[utoipa::path(post, path = "/v1/queues/{name}/pause", operation_id = "queues_pause", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueDto), (status = 404, body = ErrorBody)))]
pub async fn pause(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueDto>> {
    s.backend.queue_pause((&name).into()).await?;
    Ok(Json(s.backend.queue_stats((&name).into()).await?.into()))
}

/// Resume a paused queue.
#[utoipa::path(post, path = "/v1/queues/{name}/resume", operation_id = "queues_resume", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueDto), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueDto>> {
    // Refuse an unknown queue the way pause does (a resume of nothing is a typo).
    s.backend.queue_stats((&name).into()).await?;
    s.backend.queue_resume((&name).into()).await?;
    Ok(Json(s.backend.queue_stats((&name).into()).await?.into()))
}

/// The dead-letter queue: dead jobs, newest first.
#[utoipa::path(get, path = "/v1/dlq", operation_id = "queues_dlq_list", tag = "dlq", params(DlqQuery),
    responses((status = 200, body = JobPageDto)))]
pub async fn dlq_list(
    State(s): State<Arc<AppState>>,
    Query(q): Query<DlqQuery>,
) -> ApiResult<Json<JobPageDto>> {
    let page = s
        .client
        .list(ListParams {
            filter: JobFilter {
                queue: q.queue,
                state: Some(JobState::Dead),
                kind: q.kind,
                workflow_id: None,
            },
            limit: page_size(q.limit)?,
            before: cursor(q.cursor.as_deref())?,
        })
        .await?;
    Ok(Json(page.into()))
}

/// Replay dead jobs (back to queued, attempts starting over): by ids, all or nothing, or by
/// filter (queue, kind, error text, death time); `dry_run` counts and changes nothing.
#[utoipa::path(post, path = "/v1/dlq/replay", operation_id = "queues_dlq_replay", tag = "dlq", request_body = ReplayRequest,
    responses(
        (status = 200, body = ReplayResponse),
        (status = 404, description = "An id names no job; nothing replayed", body = ErrorBody),
        (status = 409, description = "An id names a job that is not dead; nothing replayed", body = ErrorBody),
    ))]
pub async fn dlq_replay(
    State(s): State<Arc<AppState>>,
    Body(req): Body<ReplayRequest>,
) -> ApiResult<Json<ReplayResponse>> {
    let limit = dlq::limit(&req)?;
    let target = match &req.ids {
        Some(_) if dlq::has_filter(&req) => {
            return Err(ApiError::invalid(
                "give ids or a filter (queue, kind, error, dead_before, dead_after), not both",
            ));
        }
        // Only dead jobs are in the DLQ (`POST /v1/jobs/{id}/retry` takes cancelled and
        // skipped ones too); every id is checked before anything moves.
        Some(ids) => RetryTarget::Ids(dlq::dead_ids_given(&s, ids, "replay").await?),
        None if dlq::has_detail_filter(&req) => {
            RetryTarget::Ids(dlq::select(&s, &req, limit).await?)
        }
        None => RetryTarget::Dead {
            queue: req.queue.clone(),
            kind: req.kind.clone(),
        },
    };
    if req.dry_run {
        let ids = match target {
            RetryTarget::Ids(ids) => ids,
            RetryTarget::Dead { .. } => dlq::select(&s, &req, limit).await?,
        };
        return Ok(Json(ReplayResponse {
            dry_run: true,
            count: ids.len(),
            ids,
        }));
    }
    if matches!(&target, RetryTarget::Ids(ids) if ids.is_empty()) {
        return Ok(Json(ReplayResponse {
            dry_run: false,
            count: 0,
            ids: Vec::new(),
        }));
    }
    let ids = s.backend.job_retry(RetryParams { target, limit }).await?;
    Ok(Json(ReplayResponse {
        dry_run: false,
        count: ids.len(),
        ids,
    }))
}

/// Registered workers (Rust and HTTP), alive or lost.
#[utoipa::path(get, path = "/v1/workers", operation_id = "queues_workers", tag = "workers",
    responses((status = 200, body = WorkerListDto)))]
pub async fn workers(State(s): State<Arc<AppState>>) -> ApiResult<Json<WorkerListDto>> {
    let now = quern::clock::system_now_ms();
    let workers = s.backend.worker_list().await?;
    Ok(Json(WorkerListDto {
        workers: workers
            .into_iter()
            .map(|w| WorkerDto::new(w, now))
            .collect(),
    }))
}
