//! Batch forms of the worker protocol: heartbeat, complete, fail and release many leases in
//! one call (and one backend call). Each item is fenced by its own token and answered on its
//! own: a stale one gets `lease_lost` and changes nothing, the others stand.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use quern::backend::{
    CompleteParams, FailAction, FailParams, HeartbeatItem, HeartbeatParams, ReleaseParams,
    WorkerHeartbeatParams,
};
use quern::pipeline::{Attempt, AttemptEnd, Next, Stop};
use quern::{LeaseToken, Payload};

use crate::dto::{
    BatchAckResponse, BatchCompleteRequest, BatchFailRequest, BatchHeartbeatRequest,
    BatchItemResult, BatchReleaseRequest,
};
use crate::error::{ApiError, ApiResult, ErrorDetail};
use crate::extract::Body;
use crate::state::AppState;

/// The most items one batch call takes.
pub const MAX_ITEMS: usize = 1000;

fn check_len(n: usize) -> ApiResult<()> {
    if n == 0 || n > MAX_ITEMS {
        return Err(ApiError::invalid(format!(
            "a batch holds 1 to {MAX_ITEMS} items, not {n}"
        )));
    }
    Ok(())
}

fn token(s: &str) -> ApiResult<LeaseToken> {
    s.parse()
        .map_err(|_| ApiError::invalid(format!("{s:?} is not a lease token")))
}

fn tokens<'a>(items: impl Iterator<Item = &'a str>) -> ApiResult<Vec<LeaseToken>> {
    items.map(token).collect()
}

fn item(id: quern::JobId, r: quern::Result<()>) -> BatchItemResult {
    match r {
        Ok(()) => BatchItemResult {
            id: id.to_string(),
            ok: true,
            deadline: None,
            error: None,
        },
        Err(e) => failed(id, e.into()),
    }
}

fn failed(id: quern::JobId, e: ApiError) -> BatchItemResult {
    BatchItemResult {
        id: id.to_string(),
        ok: false,
        deadline: None,
        error: Some(ErrorDetail {
            code: e.code.to_string(),
            message: e.message,
            details: None,
        }),
    }
}

fn answer(results: Vec<BatchItemResult>, stop: bool) -> Json<BatchAckResponse> {
    Json(BatchAckResponse { results, stop })
}

/// Extend many leases.
#[utoipa::path(post, path = "/v1/batch/heartbeat", operation_id = "batch_heartbeat", tag = "worker protocol",
    request_body = BatchHeartbeatRequest,
    responses((status = 200, description = "One answer per item, in order", body = BatchAckResponse)))]
pub async fn heartbeat(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BatchHeartbeatRequest>,
) -> ApiResult<Json<BatchAckResponse>> {
    check_len(req.items.len())?;
    let lease = super::protocol::lease_length(&s, req.lease_ms)?;
    let mut items = Vec::with_capacity(req.items.len());
    for i in req.items {
        let progress = i.progress.map(|p| quern::model::Progress {
            percent: p.percent,
            message: p.message,
        });
        if progress
            .as_ref()
            .is_some_and(|p| !(0.0..=100.0).contains(&p.percent))
        {
            return Err(ApiError::invalid("progress.percent must be 0 to 100"));
        }
        items.push(HeartbeatItem {
            token: token(&i.token)?,
            progress,
            checkpoint: i
                .checkpoint
                .as_ref()
                .map(|v| Payload::from_json_value(v, s.client.codec()))
                .transpose()?,
        });
    }
    let ids: Vec<quern::JobId> = items.iter().map(|i| i.token.job_id).collect();
    let answers = s
        .backend
        .job_heartbeat(HeartbeatParams { items, lease })
        .await?;
    if let Some(w) = req.worker_id {
        let _ = s
            .backend
            .worker_heartbeat(WorkerHeartbeatParams {
                id: w,
                running: req.running.unwrap_or(ids.len() as u32),
            })
            .await;
    }
    let results = ids
        .into_iter()
        .zip(answers)
        .map(|(id, r)| match r {
            Ok(deadline) => BatchItemResult {
                id: id.to_string(),
                ok: true,
                deadline: Some(deadline),
                error: None,
            },
            Err(e) => failed(id, e.into()),
        })
        .collect();
    Ok(answer(results, s.shutdown.is_cancelled()))
}

/// The jobs behind `tokens` (for their retry policies and claim times), in order; a pruned
/// one is `None`.
async fn jobs_of(s: &AppState, tokens: &[LeaseToken]) -> ApiResult<Vec<Option<quern::Job>>> {
    let ids: Vec<quern::JobId> = tokens.iter().map(|t| t.job_id).collect();
    Ok(s.backend.job_get_many(ids.into()).await?)
}

/// Report many successes.
#[utoipa::path(post, path = "/v1/batch/complete", operation_id = "batch_complete", tag = "worker protocol",
    request_body = BatchCompleteRequest,
    responses((status = 200, description = "One answer per item, in order", body = BatchAckResponse)))]
pub async fn complete(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BatchCompleteRequest>,
) -> ApiResult<Json<BatchAckResponse>> {
    check_len(req.items.len())?;
    let toks = tokens(req.items.iter().map(|i| i.token.as_str()))?;
    let mut results_in = Vec::with_capacity(toks.len());
    for i in &req.items {
        results_in.push(
            i.result
                .as_ref()
                .map(|v| Payload::from_json_value(v, s.client.codec()))
                .transpose()?,
        );
    }
    let jobs = jobs_of(&s, &toks).await?;
    let now = quern::clock::system_now_ms();
    let mut out: Vec<Option<BatchItemResult>> = vec![None; toks.len()];
    let mut completions = Vec::new();
    let mut at = Vec::new();
    for (k, ((t, result), job)) in toks.iter().zip(results_in).zip(jobs).enumerate() {
        let Some(job) = job else {
            out[k] = Some(failed(t.job_id, quern::Error::JobNotFound(t.job_id).into()));
            continue;
        };
        let terms = s.pipeline.terms(&job, None).await;
        let end = AttemptEnd {
            token: t.clone(),
            attempt: Attempt::Succeeded(result),
            stop: Stop::No,
            started_at: job.claimed_at,
        };
        if let Next::Complete(c) = s.pipeline.after(&terms, end, now) {
            completions.push(c);
            at.push(k);
        }
    }
    if !completions.is_empty() {
        let answers = s
            .backend
            .job_complete(CompleteParams { items: completions })
            .await?;
        for (k, r) in at.into_iter().zip(answers) {
            out[k] = Some(item(toks[k].job_id, r));
        }
    }
    Ok(answer(out.into_iter().flatten().collect(), false))
}

/// Report many failures.
#[utoipa::path(post, path = "/v1/batch/fail", operation_id = "batch_fail", tag = "worker protocol",
    request_body = BatchFailRequest,
    responses((status = 200, description = "One answer per item, in order", body = BatchAckResponse)))]
pub async fn fail(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BatchFailRequest>,
) -> ApiResult<Json<BatchAckResponse>> {
    check_len(req.items.len())?;
    if req
        .items
        .iter()
        .any(|i| i.retry_after_ms.is_some() && !i.retryable)
    {
        return Err(ApiError::invalid("retry_after_ms needs retryable: true"));
    }
    let toks = tokens(req.items.iter().map(|i| i.token.as_str()))?;
    let mut errors = Vec::with_capacity(req.items.len());
    for i in &req.items {
        errors.push(super::protocol::task_error(
            i.error.clone(),
            i.retryable,
            i.rate_limited,
            i.retry_after_ms,
        )?);
    }
    let jobs = jobs_of(&s, &toks).await?;
    let now = quern::clock::system_now_ms();
    let mut out: Vec<Option<BatchItemResult>> = vec![None; toks.len()];
    let mut failures = Vec::new();
    let mut at = Vec::new();
    for (k, (((t, i), job), error)) in toks.iter().zip(req.items).zip(jobs).zip(errors).enumerate()
    {
        let Some(job) = job else {
            out[k] = Some(failed(t.job_id, quern::Error::JobNotFound(t.job_id).into()));
            continue;
        };
        let terms = s.pipeline.terms(&job, None).await;
        let end = AttemptEnd {
            token: t.clone(),
            attempt: Attempt::Failed(error),
            stop: Stop::No,
            started_at: job.claimed_at,
        };
        if let Next::Fail(mut f) = s.pipeline.after(&terms, end, now) {
            if let (Some(ms), FailAction::Retry { retry_at }) = (i.retry_after_ms, &mut f.action) {
                *retry_at = Some(now.saturating_add(ms.min(i64::MAX as u64 / 2) as i64));
            }
            failures.push(f);
            at.push(k);
        }
    }
    if !failures.is_empty() {
        let answers = s.backend.job_fail(FailParams { items: failures }).await?;
        for (k, r) in at.into_iter().zip(answers) {
            out[k] = Some(item(toks[k].job_id, r));
        }
    }
    Ok(answer(out.into_iter().flatten().collect(), false))
}

/// Give many leases back without counting their attempts.
#[utoipa::path(post, path = "/v1/batch/release", operation_id = "batch_release", tag = "worker protocol",
    request_body = BatchReleaseRequest,
    responses((status = 200, description = "One answer per item, in order", body = BatchAckResponse)))]
pub async fn release(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BatchReleaseRequest>,
) -> ApiResult<Json<BatchAckResponse>> {
    check_len(req.tokens.len())?;
    let toks = tokens(req.tokens.iter().map(String::as_str))?;
    let answers = s
        .backend
        .job_release(ReleaseParams {
            tokens: toks.clone(),
        })
        .await?;
    let results = toks
        .iter()
        .zip(answers)
        .map(|(t, r)| item(t.job_id, r))
        .collect();
    Ok(answer(results, false))
}
