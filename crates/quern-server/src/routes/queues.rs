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

/// The most jobs one replay by filter moves.
const MAX_REPLAY: usize = 10_000;

/// Replay dead jobs (back to queued, attempts starting over): by ids, all or nothing, or by
/// filter; `dry_run` counts and changes nothing.
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
    let limit = req.limit.unwrap_or(1000);
    if !(1..=MAX_REPLAY).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit {limit} is out of range (1 to {MAX_REPLAY})"
        )));
    }
    let target = match req.ids {
        Some(_) if req.queue.is_some() || req.kind.is_some() => {
            return Err(ApiError::invalid(
                "give ids or a filter (queue, kind), not both",
            ));
        }
        Some(ids) => {
            if ids.is_empty() || ids.len() > MAX_REPLAY {
                return Err(ApiError::invalid(format!(
                    "ids must hold 1 to {MAX_REPLAY} job ids"
                )));
            }
            let ids = ids
                .iter()
                .map(|i| crate::extract::parse_job_id(i))
                .collect::<Result<Vec<_>, _>>()?;
            // Only dead jobs are in the DLQ (`POST /v1/jobs/{id}/retry` takes cancelled and
            // skipped ones too); every id is checked before anything moves.
            let jobs = s.backend.job_get_many((&ids).into()).await?;
            for (id, job) in ids.iter().zip(&jobs) {
                match job {
                    None => return Err(quern::Error::JobNotFound(*id).into()),
                    Some(j) if j.state != JobState::Dead => {
                        return Err(quern::Error::InvalidTransition {
                            id: *id,
                            from: j.state,
                            action: "replay",
                        }
                        .into());
                    }
                    Some(_) => {}
                }
            }
            RetryTarget::Ids(ids)
        }
        None => RetryTarget::Dead {
            queue: req.queue,
            kind: req.kind,
        },
    };
    if req.dry_run {
        let ids = match target {
            RetryTarget::Ids(ids) => ids,
            RetryTarget::Dead { queue, kind } => dead_ids(&s, queue, kind, limit).await?,
        };
        return Ok(Json(ReplayResponse {
            dry_run: true,
            count: ids.len(),
            ids,
        }));
    }
    let ids = s.backend.job_retry(RetryParams { target, limit }).await?;
    Ok(Json(ReplayResponse {
        dry_run: false,
        count: ids.len(),
        ids,
    }))
}

/// The dead jobs a replay by filter would move (up to `limit`).
async fn dead_ids(
    s: &AppState,
    queue: Option<String>,
    kind: Option<String>,
    limit: usize,
) -> ApiResult<Vec<quern::JobId>> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .client
            .list(ListParams {
                filter: JobFilter {
                    queue: queue.clone(),
                    state: Some(JobState::Dead),
                    kind: kind.clone(),
                    workflow_id: None,
                },
                limit: (limit - ids.len()).min(1000),
                before,
            })
            .await?;
        ids.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(n) if ids.len() < limit => before = Some(n),
            _ => return Ok(ids),
        }
    }
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
