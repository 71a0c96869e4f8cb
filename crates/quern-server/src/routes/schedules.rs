//! `/v1/schedules` (recurring schedules, through `quern::Schedules`) and
//! `/v1/queues/{name}/settings` (queue limits).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use quern::backend::QueueUpdateParams;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::{
    QueueSettingsDto, QueueSettingsPatch, ScheduleDetailDto, ScheduleDto, ScheduleListDto,
    ScheduleRequest, ScheduleRunDto, ScheduleUpsertDto, TriggerDto,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Query};
use crate::state::AppState;

fn now() -> i64 {
    quern::clock::system_now_ms()
}

/// Every schedule, by name.
#[utoipa::path(get, path = "/v1/schedules", operation_id = "schedules_list", tag = "schedules",
    responses((status = 200, body = ScheduleListDto)))]
pub async fn list(State(s): State<Arc<AppState>>) -> ApiResult<Json<ScheduleListDto>> {
    let now = now();
    let list = s.client.schedules().list().await?;
    Ok(Json(ScheduleListDto {
        schedules: list.into_iter().map(|x| ScheduleDto::new(x, now)).collect(),
    }))
}

/// How many runs `GET /v1/schedules/{name}` returns.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub runs: Option<usize>,
}

/// One schedule with its latest runs, newest first.
#[utoipa::path(get, path = "/v1/schedules/{name}", operation_id = "schedules_get", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name"), RunsQuery),
    responses((status = 200, body = ScheduleDetailDto), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<ScheduleDetailDto>> {
    let n = q.runs.unwrap_or(20);
    if !(1..=100).contains(&n) {
        return Err(ApiError::invalid(format!(
            "runs {n} is out of range (1 to 100)"
        )));
    }
    let schedules = s.client.schedules();
    let stored = schedules.get(&name).await?;
    let runs = schedules.runs(&name, n).await?;
    Ok(Json(ScheduleDetailDto {
        schedule: ScheduleDto::new(stored, now()),
        runs: runs.into_iter().map(ScheduleRunDto::from).collect(),
    }))
}

/// Store a schedule, or change the one with this name (an unchanged one stays as it is).
#[utoipa::path(put, path = "/v1/schedules/{name}", operation_id = "schedules_put", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Added", body = ScheduleUpsertDto),
        (status = 200, description = "Changed or unchanged", body = ScheduleUpsertDto),
    ))]
pub async fn put(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Body(req): Body<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleUpsertDto>)> {
    let spec = req.into_spec(name)?;
    let up = s.client.schedules().upsert(spec).await?;
    let (status, done) = match (up.created, up.changed) {
        (true, _) => (StatusCode::CREATED, "added"),
        (false, true) => (StatusCode::OK, "changed"),
        (false, false) => (StatusCode::OK, "unchanged"),
    };
    Ok((
        status,
        Json(ScheduleUpsertDto {
            done: done.into(),
            schedule: ScheduleDto::new(up.schedule, now()),
        }),
    ))
}

/// Remove a schedule and its history (a tick's job enqueued ahead is cancelled; jobs of
/// earlier runs stay).
#[utoipa::path(delete, path = "/v1/schedules/{name}", operation_id = "schedules_delete", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = ScheduleDto), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleDto>> {
    let gone = s.client.schedules().remove(&name).await?;
    Ok(Json(ScheduleDto::new(gone, now())))
}

/// Stop a schedule's ticks until it is resumed.
#[utoipa::path(post, path = "/v1/schedules/{name}/pause", operation_id = "schedules_pause", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = ScheduleDto), (status = 404, body = ErrorBody)))]
pub async fn pause(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleDto>> {
    Ok(Json(ScheduleDto::new(
        s.client.schedules().pause(&name).await?,
        now(),
    )))
}

/// Resume a paused schedule (ticks missed while paused do not run).
#[utoipa::path(post, path = "/v1/schedules/{name}/resume", operation_id = "schedules_resume", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = ScheduleDto), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleDto>> {
    Ok(Json(ScheduleDto::new(
        s.client.schedules().resume(&name).await?,
        now(),
    )))
}

/// Enqueue the schedule's job now, outside the schedule.
#[utoipa::path(post, path = "/v1/schedules/{name}/trigger", operation_id = "schedules_trigger", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 201, body = TriggerDto), (status = 404, body = ErrorBody)))]
pub async fn trigger(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<TriggerDto>)> {
    let id = s.client.schedules().trigger(&name).await?;
    Ok((
        StatusCode::CREATED,
        Json(TriggerDto {
            job_id: id.to_string(),
        }),
    ))
}

/// A queue's limits and their use now.
#[utoipa::path(get, path = "/v1/queues/{name}/settings", operation_id = "queues_settings_get", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueSettingsDto), (status = 404, body = ErrorBody)))]
pub async fn settings_get(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueSettingsDto>> {
    let u = s.backend.queue_get((&name).into()).await?;
    Ok(Json(QueueSettingsDto::new(name, u)))
}

/// Change some of a queue's limits, for every worker, at once (creating the queue if it has
/// never been used).
#[utoipa::path(patch, path = "/v1/queues/{name}/settings", operation_id = "queues_settings_patch", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = QueueSettingsPatch,
    responses((status = 200, body = QueueSettingsDto)))]
pub async fn settings_patch(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Body(p): Body<QueueSettingsPatch>,
) -> ApiResult<Json<QueueSettingsDto>> {
    let mut rate = match p.rate {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(
            text.parse::<quern::model::RateLimit>()
                .map_err(ApiError::from)?,
        )),
    };
    if let Some(b) = p.burst {
        let mut r = match rate {
            Some(Some(r)) => r,
            _ => {
                return Err(ApiError::invalid("burst needs a rate in the same request"));
            }
        };
        r.burst = b;
        rate = Some(Some(r));
    }
    let order = p
        .order
        .as_deref()
        .map(str::parse::<quern::model::ClaimOrder>)
        .transpose()?;
    let aging = match &p.aging {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(a.parse()?)),
    };
    let group_rate = match (&p.group_rate, p.group_burst) {
        (None | Some(None), Some(_)) => {
            return Err(
                quern::Error::InvalidArgument("group_burst: needs a group_rate".into()).into(),
            );
        }
        (None, None) => None,
        (Some(None), None) => Some(None),
        (Some(Some(t)), b) => {
            let mut r: quern::model::RateLimit = t.parse().map_err(|_| {
                quern::Error::InvalidArgument(format!(
                    "group_rate: {t:?} is not COUNT/PERIOD (examples: 20/s, 600/m, 5/30s)"
                ))
            })?;
            if let Some(b) = b {
                r.burst = b;
            }
            r.validate_as("group_rate")?;
            Some(Some(r))
        }
    };
    let mut kinds = std::collections::BTreeMap::new();
    for (pat, k) in &p.kinds {
        let l = match k {
            None => {
                quern::model::validate_kind_pattern(pat)?;
                None
            }
            Some(k) => Some(k.parse(pat)?),
        };
        kinds.insert(pat.clone(), l);
    }
    s.backend
        .queue_update(QueueUpdateParams {
            queue: name.clone(),
            concurrency: p.concurrency,
            rate,
            weight: p.weight,
            order,
            aging,
            group_concurrency: p.group_concurrency,
            kinds,
            group_rate,
            ..Default::default()
        })
        .await?;
    let u = s.backend.queue_get((&name).into()).await?;
    Ok(Json(QueueSettingsDto::new(name, u)))
}
