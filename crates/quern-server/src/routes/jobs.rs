//! `/v1/jobs`: enqueue (one or a batch), get, list, cancel, retry, reprioritize, logs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use quern::backend::{BatchMode, JobFilter, JobLogsParams, ListParams, RetryParams, RetryTarget};
use quern::{JobId, Priority};

use crate::dto::{
    BatchItemDto, BatchModeDto, BatchRequest, BatchResponse, CancelRequest, EnqueueRequest,
    EnqueuedDto, JobDto, JobListQuery, JobLogsDto, JobLogsQuery, JobPageDto, ReprioritizeRequest,
    cursor, page_size,
};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::extract::{Body, Query, parse_job_id};
use crate::state::AppState;

/// The most jobs one batch may carry.
pub const MAX_BATCH: usize = 10_000;

/// Enqueue one job.
#[utoipa::path(post, path = "/v1/jobs", operation_id = "jobs_enqueue", tag = "jobs", request_body = EnqueueRequest,
    responses(
        (status = 201, description = "Stored", body = EnqueuedDto),
        (status = 200, description = "A live job with the same unique key exists; its id", body = EnqueuedDto),
        (status = 422, description = "Invalid job (or a malformed `traceparent`); nothing stored", body = ErrorBody),
    ),
    params(
        ("traceparent" = Option<String>, Header, description = "W3C trace context stored with the job when the body has no `traceparent`"),
        ("tracestate" = Option<String>, Header, description = "W3C tracestate to go with the `traceparent` header"),
    ))]
pub async fn enqueue(
    State(s): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    Body(mut req): Body<EnqueueRequest>,
) -> ApiResult<(StatusCode, Json<EnqueuedDto>)> {
    if req.traceparent.is_none() {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| {
                    v.to_str().map(String::from).map_err(|_| {
                        ApiError::invalid(format!("the {name} header is not printable text"))
                    })
                })
                .transpose()
        };
        if let Some(tp) = header("traceparent")? {
            req.traceparent = Some(tp);
            req.tracestate = req.tracestate.take().or(header("tracestate")?);
        }
    }
    let job = req.into_job(s.client.codec(), &s.limits())?;
    let outcome = s.client.enqueue_job(job).await.map_err(without_index)?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(outcome.into())))
}

/// A refused job's error without the backend's "batch item 0" (the client sent one job).
fn without_index(e: quern::Error) -> ApiError {
    match e {
        quern::Error::InvalidJob { reason, .. } => quern::Error::InvalidJob {
            index: None,
            reason,
        },
        other => other,
    }
    .into()
}

fn detail(e: ApiError) -> ErrorDetail {
    ErrorDetail {
        code: e.code.to_string(),
        message: e.message,
        details: None,
    }
}

/// Enqueue many jobs: `atomic` (all or nothing) or `best_effort` (each on its own).
#[utoipa::path(post, path = "/v1/jobs/batch", operation_id = "jobs_batch", tag = "jobs", request_body = BatchRequest,
    responses(
        (status = 200, description = "Per-job outcomes, in request order", body = BatchResponse),
        (status = 422, description = "Atomic mode: an invalid job; nothing stored", body = ErrorBody),
    ))]
pub async fn batch(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BatchRequest>,
) -> ApiResult<Json<BatchResponse>> {
    if req.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "a batch holds at most {MAX_BATCH} jobs, not {}",
            req.jobs.len()
        )));
    }
    let atomic = req.mode == BatchModeDto::Atomic;
    // Every job is built and checked before anything is stored.
    let mut results: Vec<Option<BatchItemDto>> = Vec::with_capacity(req.jobs.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (i, r) in req.jobs.into_iter().enumerate() {
        match r.into_job(s.client.codec(), &s.limits()) {
            Ok(job) => {
                valid.push(job);
                positions.push(i);
                results.push(None);
            }
            Err(e) if atomic => {
                return Err(ApiError {
                    message: format!("jobs[{i}]: {} (nothing was enqueued)", e.message),
                    ..e
                });
            }
            Err(e) => results.push(Some(BatchItemDto {
                index: i,
                job: None,
                error: Some(detail(e)),
            })),
        }
    }
    let mode = if atomic {
        BatchMode::Atomic
    } else {
        BatchMode::BestEffort
    };
    let stored = s
        .client
        .enqueue_batch(valid, mode)
        .await
        .map_err(|e| match e {
            quern::Error::InvalidJob {
                index: Some(k),
                reason,
            } if k < positions.len() => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_job",
                format!("jobs[{}]: {reason} (nothing was enqueued)", positions[k]),
            ),
            other => other.into(),
        })?;
    for (pos, r) in positions.into_iter().zip(stored) {
        results[pos] = Some(match r {
            Ok(o) => BatchItemDto {
                index: pos,
                job: Some(o.into()),
                error: None,
            },
            Err(e) => BatchItemDto {
                index: pos,
                job: None,
                error: Some(detail(without_index(e))),
            },
        });
    }
    let results: Vec<BatchItemDto> = results.into_iter().flatten().collect();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    Ok(Json(BatchResponse {
        enqueued: results.len() - failed,
        failed,
        results,
    }))
}

pub(crate) async fn job_or_404(s: &AppState, id: JobId) -> ApiResult<quern::Job> {
    s.client
        .get(id)
        .await?
        .ok_or_else(|| quern::Error::JobNotFound(id).into())
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "jobs_get", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = JobDto),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDto>> {
    let id = parse_job_id(&id)?;
    Ok(Json(JobDto::from(&job_or_404(&s, id).await?)))
}

/// A job's log: the lines its handlers wrote (`ctx.log`, a shell command's stderr), oldest
/// first, after a cursor; the oldest lines past the per-job caps are dropped and counted.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", operation_id = "jobs_logs", tag = "jobs",
    params(("id" = String, Path, description = "Job id"), JobLogsQuery),
    responses(
        (status = 200, body = JobLogsDto),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn logs(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<JobLogsQuery>,
) -> ApiResult<Json<JobLogsDto>> {
    let id = parse_job_id(&id)?;
    let after = q.after.unwrap_or(0);
    let page = s
        .backend
        .job_logs(JobLogsParams {
            id,
            after,
            limit: page_size(q.limit)?,
        })
        .await?;
    Ok(Json(JobLogsDto::new(page, after)))
}

/// Jobs, newest first, filtered, one page at a time.
#[utoipa::path(get, path = "/v1/jobs", operation_id = "jobs_list", tag = "jobs", params(JobListQuery),
    responses((status = 200, body = JobPageDto)))]
pub async fn list(
    State(s): State<Arc<AppState>>,
    Query(q): Query<JobListQuery>,
) -> ApiResult<Json<JobPageDto>> {
    let page = s
        .client
        .list(ListParams {
            filter: JobFilter {
                queue: q.queue,
                state: q.state.map(Into::into),
                kind: q.kind,
                workflow_id: q.workflow_id,
            },
            limit: page_size(q.limit)?,
            before: cursor(q.cursor.as_deref())?,
        })
        .await?;
    Ok(Json(page.into()))
}

/// Cancel a job that has not finished (a running job's worker is told to stop).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "jobs_cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    request_body(content = CancelRequest, description = "Optional"),
    responses(
        (status = 200, description = "The job after the change", body = JobDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job has finished", body = ErrorBody),
    ))]
pub async fn cancel(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<CancelRequest>,
) -> ApiResult<Json<JobDto>> {
    let id = parse_job_id(&id)?;
    let reason = req.reason.or_else(|| Some("cancelled over the API".into()));
    Ok(Json(JobDto::from(&s.client.cancel(id, reason).await?)))
}

/// Run a dead, cancelled or skipped job again (its attempts start over).
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", operation_id = "jobs_retry", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job after the change", body = JobDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job is not dead, cancelled or skipped", body = ErrorBody),
    ))]
pub async fn retry(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDto>> {
    let id = parse_job_id(&id)?;
    let moved = s
        .backend
        .job_retry(RetryParams {
            target: RetryTarget::Ids(vec![id]),
            limit: 1,
        })
        .await?;
    if moved.is_empty() {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("job {id} was not retried"),
        ));
    }
    Ok(Json(JobDto::from(&job_or_404(&s, id).await?)))
}

/// Give a waiting job (scheduled, queued or blocked) a new priority.
#[utoipa::path(post, path = "/v1/jobs/{id}/reprioritize", operation_id = "jobs_reprioritize", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    request_body = ReprioritizeRequest,
    responses(
        (status = 200, description = "The job after the change", body = JobDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job is running or finished", body = ErrorBody),
    ))]
pub async fn reprioritize(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<ReprioritizeRequest>,
) -> ApiResult<Json<JobDto>> {
    let id = parse_job_id(&id)?;
    let p = Priority::new(req.priority)
        .ok_or_else(|| ApiError::invalid(format!("priority {} is not 0 to 9", req.priority)))?;
    Ok(Json(JobDto::from(&s.client.reprioritize(id, p).await?)))
}
