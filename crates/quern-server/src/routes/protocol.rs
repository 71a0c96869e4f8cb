//! The HTTP worker protocol: register, lease (long poll), heartbeat, complete, fail,
//! release. Every call about a job carries the lease token it was leased with; a stale one
//! gets 409 `lease_lost` and changes nothing (the backend checks it in the same step that
//! changes the job).
//!
//! A leased job goes through the same post-claim pipeline as a job claimed by the Rust
//! `Worker` (`quern::pipeline`): a workflow task is prepared first (templates rendered,
//! `when:` checked, `for_each` fanned out or in, `max_parallel` applied), and a job whose
//! outcome that step decides (a skip, a fan-out) is settled here and never handed out. The
//! outcome a worker reports becomes the backend call through `Pipeline::after`, with the
//! job's retry policy (or the default one).
//!
//! The server keeps nothing between calls: a lease taken from one server may be completed
//! through another. A remote worker's record is refreshed by its lease and heartbeat calls;
//! one not heard from for three of its heartbeat intervals is lost and its leases rescued.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use quern::backend::{
    ClaimParams, ClaimedJob, CompleteParams, FailAction, FailParams, HeartbeatItem,
    HeartbeatParams, QueueWeight, ReleaseParams, WaitParams, WorkerHeartbeatParams, WorkerInfo,
};
use quern::pipeline::{Attempt, AttemptEnd, Next, Stop};
use quern::{LeaseToken, Payload, TaskError};

use crate::dto::{
    AckResponse, CompleteRequest, FailRequest, HeartbeatRequest, HeartbeatResponse, JobStateDto,
    LeaseRequest, LeaseResponse, LeasedJobDto, RegisterRequest, RegisterResponse, ReleaseRequest,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, parse_job_id};
use crate::state::AppState;

/// The most jobs one lease call hands out.
pub const MAX_LEASE: usize = 100;

fn now() -> quern::Millis {
    quern::clock::system_now_ms()
}

fn check_queues(queues: &[String]) -> ApiResult<()> {
    if queues.is_empty() {
        return Err(ApiError::invalid("queues must name at least one queue"));
    }
    for q in queues {
        if let Some(p) = quern::model::queue_name_problem(q) {
            return Err(ApiError::invalid(format!("queue {q:?}: {p}")));
        }
    }
    Ok(())
}

pub(super) fn lease_length(s: &AppState, ms: Option<u64>) -> ApiResult<Duration> {
    match ms {
        None => Ok(s.config.default_lease),
        Some(ms) if (100..=86_400_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(ApiError::invalid(format!(
            "lease_ms {ms} is out of range (100 to 86400000)"
        ))),
    }
}

/// A token from a request, which must be for the job in the path.
fn token_for(id: &str, token: &str) -> ApiResult<LeaseToken> {
    let job_id = parse_job_id(id)?;
    let t: LeaseToken = token
        .parse()
        .map_err(|_| ApiError::invalid(format!("{token:?} is not a lease token")))?;
    if t.job_id != job_id {
        return Err(ApiError::invalid(format!(
            "the token is for job {}, not {job_id}",
            t.job_id
        )));
    }
    Ok(t)
}

/// Register a worker (again, under the same id, replaces its record).
#[utoipa::path(post, path = "/v1/workers", operation_id = "protocol_register", tag = "worker protocol", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse)))]
pub async fn register(
    State(s): State<Arc<AppState>>,
    Body(req): Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<RegisterResponse>)> {
    check_queues(&req.queues)?;
    let interval = match req.heartbeat_interval_ms {
        None => s.config.default_worker_heartbeat,
        Some(ms) if (100..=3_600_000).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(ApiError::invalid(format!(
                "heartbeat_interval_ms {ms} is out of range (100 to 3600000)"
            )));
        }
    };
    let id = match req.id {
        Some(id) if id.is_empty() || id.len() > 200 => {
            return Err(ApiError::invalid("id must be 1 to 200 characters"));
        }
        Some(id) => id,
        None => format!("http-{}", quern::JobId::new()),
    };
    let concurrency = req.concurrency.unwrap_or(1);
    if concurrency == 0 {
        return Err(ApiError::invalid("concurrency must be at least 1"));
    }
    let t = now();
    s.backend
        .worker_register(WorkerInfo {
            id: id.clone(),
            hostname: req.hostname.unwrap_or_else(|| "unknown".into()),
            pid: req.pid.unwrap_or(0),
            queues: req.queues,
            capabilities: req.capabilities,
            concurrency,
            started_at: t,
            last_seen_at: t,
            running: 0,
            heartbeat_interval_ms: Some(interval.as_millis() as u64),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            worker_id: id,
            heartbeat_interval_ms: interval.as_millis() as u64,
        }),
    ))
}

/// Lease up to `max` jobs from `queues`, waiting up to `wait_ms` for one (long poll).
#[utoipa::path(post, path = "/v1/lease", operation_id = "protocol_lease", tag = "worker protocol", request_body = LeaseRequest,
    responses(
        (status = 200, description = "Leased jobs; none when the wait ran out", body = LeaseResponse),
        (status = 404, description = "The worker is not registered", body = ErrorBody),
    ))]
pub async fn lease(
    State(s): State<Arc<AppState>>,
    Body(req): Body<LeaseRequest>,
) -> ApiResult<Json<LeaseResponse>> {
    check_queues(&req.queues)?;
    let max = req.max.unwrap_or(1);
    if !(1..=MAX_LEASE).contains(&max) {
        return Err(ApiError::invalid(format!(
            "max {max} is out of range (1 to {MAX_LEASE})"
        )));
    }
    let wait = Duration::from_millis(req.wait_ms.unwrap_or(0));
    if wait > s.config.max_lease_wait {
        return Err(ApiError::invalid(format!(
            "wait_ms is over the limit of {} ms",
            s.config.max_lease_wait.as_millis()
        )));
    }
    let lease = lease_length(&s, req.lease_ms)?;
    // The worker's record says it is alive; an unknown worker must register first (its
    // record is what lets the rescuer bring its jobs back early if it dies).
    s.backend
        .worker_heartbeat(WorkerHeartbeatParams {
            id: req.worker_id.clone(),
            running: req.running.unwrap_or(0),
        })
        .await
        .map_err(|e| match e {
            quern::Error::InvalidArgument(_) => ApiError::not_found(
                "worker_not_found",
                format!(
                    "worker {:?} is not registered (POST /v1/workers first)",
                    req.worker_id
                ),
            ),
            other => other.into(),
        })?;
    let until = tokio::time::Instant::now() + wait;
    let weights: Vec<QueueWeight> = req.queues.iter().map(|q| QueueWeight::new(q, 1)).collect();
    let mut out = Vec::new();
    loop {
        let claimed = s
            .backend
            .job_claim(ClaimParams {
                worker_id: req.worker_id.clone(),
                queues: weights.clone(),
                limit: max - out.len(),
                lease,
                more_urgent_than: None,
            })
            .await?;
        for c in claimed {
            if let Some(j) = prepare(&s, c, lease).await? {
                out.push(j);
            }
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !out.is_empty() || left.is_zero() || s.shutdown.is_cancelled() {
            break;
        }
        tokio::select! {
            r = s.backend.work_wait(WaitParams {
                queues: req.queues.clone(),
                timeout: left,
                more_urgent_than: None,
            }) => r?,
            () = s.shutdown.cancelled() => break,
        }
    }
    Ok(Json(LeaseResponse { jobs: out }))
}

/// Runs the pipeline's first step on a claimed job: the job to hand out, or `None` when the
/// step decided its outcome (then settled here).
async fn prepare(s: &AppState, c: ClaimedJob, lease: Duration) -> ApiResult<Option<LeasedJobDto>> {
    let ClaimedJob { mut job, token } = c;
    if let Some(attempt) = s.pipeline.before(&mut job).await {
        let terms = s.pipeline.terms(&job, None).await;
        let next = s.pipeline.after(
            &terms,
            AttemptEnd {
                token,
                attempt,
                stop: Stop::No,
                started_at: None,
            },
            now(),
        );
        match apply(s, next).await {
            Ok(()) | Err(quern::Error::LeaseLost { .. }) => {}
            // The other jobs of this lease call are still handed out; this one's lease runs
            // out and it is delivered again.
            Err(e) => tracing::warn!(job_id = %job.id, error = %e, "cannot settle a prepared job"),
        }
        return Ok(None);
    }
    let deadline = job
        .lease
        .as_ref()
        .map(|l| l.expires_at)
        .unwrap_or_else(|| now() + lease.as_millis() as i64);
    Ok(Some(LeasedJobDto {
        id: job.id.to_string(),
        kind: job.kind.clone(),
        queue: job.queue.clone(),
        priority: job.priority.get(),
        token: token.to_string(),
        attempt: token.attempt,
        max_attempts: job.max_attempts,
        deadline,
        payload: job.payload.to_json_value()?,
        checkpoint: job
            .checkpoint
            .as_ref()
            .map(Payload::to_json_value)
            .transpose()?,
        timeout_ms: job.timeout.map(|d| d.as_millis() as u64),
        workflow_id: job.workflow_id.clone(),
        payload_version: job.version,
        traceparent: job.trace.as_ref().map(|t| t.traceparent.clone()),
        tracestate: job.trace.as_ref().and_then(|t| t.tracestate.clone()),
    }))
}

/// Makes the backend call the pipeline decided on.
async fn apply(s: &AppState, next: Next) -> quern::Result<()> {
    let one = |mut r: Vec<quern::Result<()>>| match r.pop() {
        Some(r) => r,
        None => Err(quern::Error::Storage("the store answered no item".into())),
    };
    match next {
        Next::Discard => Ok(()),
        Next::Release(token) => one(s
            .backend
            .job_release(ReleaseParams {
                tokens: vec![token],
            })
            .await?),
        Next::Complete(c) => one(s
            .backend
            .job_complete(CompleteParams { items: vec![c] })
            .await?),
        Next::Fail(f) => one(s.backend.job_fail(FailParams { items: vec![f] }).await?),
    }
}

/// Extend a lease; store progress and a checkpoint.
#[utoipa::path(post, path = "/v1/jobs/{id}/heartbeat", operation_id = "protocol_heartbeat", tag = "worker protocol",
    params(("id" = String, Path, description = "Job id")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, body = HeartbeatResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`lease_lost`: re-delivered, cancelled or finished; stop working on it", body = ErrorBody),
    ))]
pub async fn heartbeat(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<HeartbeatRequest>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let token = token_for(&id, &req.token)?;
    let lease = lease_length(&s, req.lease_ms)?;
    let progress = req.progress.map(|p| quern::model::Progress {
        percent: p.percent,
        message: p.message,
    });
    if progress
        .as_ref()
        .is_some_and(|p| !(0.0..=100.0).contains(&p.percent))
    {
        return Err(ApiError::invalid("progress.percent must be 0 to 100"));
    }
    let checkpoint = req
        .checkpoint
        .as_ref()
        .map(|v| Payload::from_json_value(v, s.client.codec()))
        .transpose()?;
    let mut r = s
        .backend
        .job_heartbeat(HeartbeatParams {
            items: vec![HeartbeatItem {
                token: token.clone(),
                progress,
                checkpoint,
            }],
            lease,
        })
        .await?;
    let deadline = r
        .pop()
        .ok_or_else(|| quern::Error::Storage("the store answered no item".into()))??;
    // The worker holding this lease is alive: refresh its record so the rescuer does not
    // take a long job away from a worker that is busy with it rather than leasing.
    if let Ok(Some(job)) = s.client.get(token.job_id).await
        && let Some(l) = job.lease
    {
        let _ = s
            .backend
            .worker_heartbeat(WorkerHeartbeatParams {
                id: l.worker_id,
                running: req.running.unwrap_or(1),
            })
            .await;
    }
    Ok(Json(HeartbeatResponse {
        deadline,
        stop: s.shutdown.is_cancelled(),
    }))
}

/// The job under `token` (for its retry policy and claim time); a pruned one is 404.
async fn leased_job(s: &AppState, token: &LeaseToken) -> ApiResult<quern::Job> {
    super::jobs::job_or_404(s, token.job_id).await
}

async fn state_after(s: &AppState, id: quern::JobId) -> ApiResult<JobStateDto> {
    Ok(super::jobs::job_or_404(s, id).await?.state.into())
}

/// Report success.
#[utoipa::path(post, path = "/v1/jobs/{id}/complete", operation_id = "protocol_complete", tag = "worker protocol",
    params(("id" = String, Path, description = "Job id")),
    request_body = CompleteRequest,
    responses(
        (status = 200, body = AckResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`lease_lost`: nothing changed", body = ErrorBody),
    ))]
pub async fn complete(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<CompleteRequest>,
) -> ApiResult<Json<AckResponse>> {
    let token = token_for(&id, &req.token)?;
    let result = req
        .result
        .as_ref()
        .map(|v| Payload::from_json_value(v, s.client.codec()))
        .transpose()?;
    let job = leased_job(&s, &token).await?;
    let end = AttemptEnd {
        token: token.clone(),
        attempt: Attempt::Succeeded(result),
        stop: Stop::No,
        started_at: job.claimed_at,
    };
    let terms = s.pipeline.terms(&job, None).await;
    apply(&s, s.pipeline.after(&terms, end, now())).await?;
    Ok(Json(AckResponse {
        id: token.job_id.to_string(),
        state: state_after(&s, token.job_id).await?,
    }))
}

/// Report a failure: retried by the job's retry policy (or after `retry_after_ms`) while
/// attempts remain, or dead at once when `retryable` is false.
#[utoipa::path(post, path = "/v1/jobs/{id}/fail", operation_id = "protocol_fail", tag = "worker protocol",
    params(("id" = String, Path, description = "Job id")),
    request_body = FailRequest,
    responses(
        (status = 200, body = AckResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`lease_lost`: nothing changed", body = ErrorBody),
    ))]
pub async fn fail(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<FailRequest>,
) -> ApiResult<Json<AckResponse>> {
    let token = token_for(&id, &req.token)?;
    if req.retry_after_ms.is_some() && !req.retryable {
        return Err(ApiError::invalid("retry_after_ms needs retryable: true"));
    }
    let error = task_error(
        req.error,
        req.retryable,
        req.rate_limited,
        req.retry_after_ms,
    )?;
    let job = leased_job(&s, &token).await?;
    let end = AttemptEnd {
        token: token.clone(),
        attempt: Attempt::Failed(error),
        stop: Stop::No,
        started_at: job.claimed_at,
    };
    let t = now();
    let terms = s.pipeline.terms(&job, None).await;
    let mut next = s.pipeline.after(&terms, end, t);
    if let (Some(ms), Next::Fail(f)) = (req.retry_after_ms, &mut next)
        && let FailAction::Retry { retry_at } = &mut f.action
    {
        *retry_at = Some(t.saturating_add(ms.min(i64::MAX as u64 / 2) as i64));
    }
    apply(&s, next).await?;
    Ok(Json(AckResponse {
        id: token.job_id.to_string(),
        state: state_after(&s, token.job_id).await?,
    }))
}

/// The handler outcome a failure report stands for: rate limited (which needs
/// `retry_after_ms`), retryable or fatal.
pub(crate) fn task_error(
    error: String,
    retryable: bool,
    rate_limited: bool,
    retry_after_ms: Option<u64>,
) -> ApiResult<TaskError> {
    if rate_limited {
        let ms =
            retry_after_ms.ok_or_else(|| ApiError::invalid("rate_limited needs retry_after_ms"))?;
        if !retryable {
            return Err(ApiError::invalid("rate_limited needs retryable: true"));
        }
        return Ok(TaskError::RateLimited {
            retry_after: std::time::Duration::from_millis(ms.min(i64::MAX as u64 / 2)),
        });
    }
    Ok(if retryable {
        TaskError::Retryable(error)
    } else {
        TaskError::Fatal(error)
    })
}

/// Give the job back without counting the attempt (the worker is stopping).
#[utoipa::path(post, path = "/v1/jobs/{id}/release", operation_id = "protocol_release", tag = "worker protocol",
    params(("id" = String, Path, description = "Job id")),
    request_body = ReleaseRequest,
    responses(
        (status = 200, body = AckResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`lease_lost`: nothing changed", body = ErrorBody),
    ))]
pub async fn release(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<ReleaseRequest>,
) -> ApiResult<Json<AckResponse>> {
    let token = token_for(&id, &req.token)?;
    apply(&s, Next::Release(token.clone())).await?;
    Ok(Json(AckResponse {
        id: token.job_id.to_string(),
        state: state_after(&s, token.job_id).await?,
    }))
}
