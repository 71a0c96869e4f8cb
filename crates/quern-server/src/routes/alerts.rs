//! `GET /v1/alerts`: every `[[alerts]]` rule with its stored episode state (shared by all
//! servers on the store) and a reading taken for this answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::alerts::episode::Phase;
use crate::dto::{AlertDto, AlertListDto, AlertNoticeDto, AlertStateDto};
use crate::error::ApiResult;
use crate::state::AppState;

/// The alert rules and their state.
#[utoipa::path(get, path = "/v1/alerts", operation_id = "alerts_list", tag = "alerts",
    responses((status = 200, body = AlertListDto)))]
pub async fn list(State(s): State<Arc<AppState>>) -> ApiResult<Json<AlertListDto>> {
    let views = crate::alerts::service::view(&*s.backend, &s.config.alerts).await?;
    let alerts = views
        .into_iter()
        .map(|v| {
            let (value, message) = match &v.reading {
                Ok(r) => (Some(r.value), r.message.clone()),
                Err(e) => (None, format!("cannot read the condition: {e}")),
            };
            AlertDto {
                name: v.rule.name.clone(),
                condition: v.rule.condition.as_str().to_string(),
                state: if v.firing() {
                    AlertStateDto::Firing
                } else {
                    AlertStateDto::Ok
                },
                since: v.episode.since.filter(|_| v.firing()),
                value,
                threshold: v.rule.threshold(),
                queue: v.rule.queue.clone(),
                message,
                episode: v.episode.episode,
                pending_since: v
                    .episode
                    .since
                    .filter(|_| v.episode.phase == Phase::Pending),
                last_notification: v.episode.last_notice.as_ref().map(|n| AlertNoticeDto {
                    state: n.state.as_str().to_string(),
                    at: n.at,
                    episode: n.episode,
                }),
            }
        })
        .collect();
    Ok(Json(AlertListDto { alerts }))
}
