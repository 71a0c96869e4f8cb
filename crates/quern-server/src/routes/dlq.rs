//! `POST /v1/dlq/delete`, and the DLQ selection by filter that it shares with
//! `POST /v1/dlq/replay`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use quern::JobId;
use quern::backend::{JobDeleteParams, dlq};

use crate::dto::{DlqDeleteResponse, ReplayRequest};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::state::AppState;

/// The most jobs one call by filter moves or deletes.
pub const MAX_SELECT: usize = 10_000;

/// Whether the request names any filter field.
pub fn has_filter(req: &ReplayRequest) -> bool {
    req.queue.is_some()
        || req.kind.is_some()
        || req.error.is_some()
        || req.dead_before.is_some()
        || req.dead_after.is_some()
}

/// Whether the request needs more than the store's queue/kind filter.
pub fn has_detail_filter(req: &ReplayRequest) -> bool {
    req.error.is_some() || req.dead_before.is_some() || req.dead_after.is_some()
}

/// The filter's `limit`, checked.
pub fn limit(req: &ReplayRequest) -> ApiResult<usize> {
    let limit = req.limit.unwrap_or(1000);
    if !(1..=MAX_SELECT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit {limit} is out of range (1 to {MAX_SELECT})"
        )));
    }
    if let (Some(a), Some(b)) = (req.dead_after, req.dead_before)
        && a >= b
    {
        return Err(ApiError::invalid(format!(
            "dead_after ({a}) must be before dead_before ({b})"
        )));
    }
    if req.error.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::invalid("error must not be empty"));
    }
    Ok(limit)
}

/// The ids given, parsed, deduplicated and checked to be dead (all or nothing).
pub async fn dead_ids_given(
    s: &AppState,
    ids: &[String],
    action: &'static str,
) -> ApiResult<Vec<JobId>> {
    if ids.is_empty() || ids.len() > MAX_SELECT {
        return Err(ApiError::invalid(format!(
            "ids must hold 1 to {MAX_SELECT} job ids"
        )));
    }
    let parsed = ids
        .iter()
        .map(|i| crate::extract::parse_job_id(i))
        .collect::<ApiResult<Vec<JobId>>>()?;
    Ok(dlq::require_dead(&*s.backend, &parsed, action).await?)
}

/// The dead jobs matching the filter, newest first, up to `limit`: the store narrows by
/// queue and kind (its DLQ index); the error text and the death time are matched here.
pub async fn select(s: &AppState, req: &ReplayRequest, limit: usize) -> ApiResult<Vec<JobId>> {
    let keep = |j: &quern::Job| {
        let died = j.finished_at.unwrap_or(j.created_at);
        req.dead_before.is_none_or(|t| died < t)
            && req.dead_after.is_none_or(|t| died >= t)
            && req.error.as_ref().is_none_or(|text| {
                j.errors
                    .last()
                    .is_some_and(|e| e.message.contains(text.as_str()))
            })
    };
    let (queue, kind) = (req.queue.as_deref(), req.kind.as_deref());
    Ok(dlq::select_dead(&*s.backend, queue, kind, limit, keep).await?)
}

/// Delete dead jobs for good (with their logs): by ids, all or nothing, or by filter;
/// `dry_run` counts and changes nothing.
#[utoipa::path(post, path = "/v1/dlq/delete", operation_id = "queues_dlq_delete", tag = "dlq", request_body = ReplayRequest,
    responses(
        (status = 200, body = DlqDeleteResponse),
        (status = 404, description = "An id names no job; nothing deleted", body = ErrorBody),
        (status = 409, description = "An id names a job that is not dead; nothing deleted", body = ErrorBody),
    ))]
pub async fn delete(
    State(s): State<Arc<AppState>>,
    Body(req): Body<ReplayRequest>,
) -> ApiResult<Json<DlqDeleteResponse>> {
    let limit = limit(&req)?;
    let ids = match &req.ids {
        Some(_) if has_filter(&req) => {
            return Err(ApiError::invalid(
                "give ids or a filter (queue, kind, error, dead_before, dead_after), not both",
            ));
        }
        Some(ids) => dead_ids_given(&s, ids, "delete").await?,
        None => select(&s, &req, limit).await?,
    };
    if ids.is_empty() {
        return Ok(Json(DlqDeleteResponse {
            dry_run: req.dry_run,
            count: 0,
            ids,
        }));
    }
    let report = s
        .backend
        .job_delete(JobDeleteParams {
            ids: ids.clone(),
            dry_run: req.dry_run,
        })
        .await?;
    Ok(Json(DlqDeleteResponse {
        dry_run: req.dry_run,
        count: report.deleted as usize,
        ids,
    }))
}
