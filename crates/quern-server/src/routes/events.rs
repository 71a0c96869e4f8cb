//! Job events: `GET /v1/jobs/{id}/events` (a job's timeline) and `GET /v1/events`, the
//! Server-Sent Events stream (`event: job`, `id:` the cursor, `data:` an [`EventDto`]),
//! resumable with `Last-Event-ID` or `?after=`. The server keeps nothing: the position is
//! the cursor the client sends back, so a reconnect may go to any server of the store.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use quern::backend::{EventListParams, EventPage, EventReadParams};
use tokio::sync::mpsc;

use crate::dto::{EventDto, EventStreamQuery, SseMessageDto, TimelineDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Query, parse_job_id};
use crate::state::AppState;

/// Events read per store call.
const PAGE: usize = 500;
/// Most events a request that does not follow gets (the rest: resume from its last id).
const BACKLOG_MAX: usize = 10_000;
/// How often a following stream asks the store for new events.
const POLL: Duration = Duration::from_millis(200);
/// The keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A job's events, oldest first.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", operation_id = "jobs_events", tag = "events",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = TimelineDto),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn timeline(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<TimelineDto>> {
    let id = parse_job_id(&id)?;
    super::jobs::job_or_404(&s, id).await?;
    let events = s.backend.event_list(EventListParams { job: id }).await?;
    Ok(Json(TimelineDto {
        job: id.to_string(),
        events: events.iter().map(|e| EventDto::new(e, false)).collect(),
    }))
}

/// The event stream (Server-Sent Events).
#[utoipa::path(get, path = "/v1/events", operation_id = "events_stream", tag = "events",
    params(
        EventStreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (sent by EventSource on reconnect)"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "`event: job` messages: `id:` the cursor, `data:` an Event as JSON; `:` comments keep the connection alive",
            body = SseMessageDto),
        (status = 400, description = "The cursor is not one of this store's", body = ErrorBody),
    ))]
pub async fn stream(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<EventStreamQuery>,
) -> ApiResult<Response> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|v| !v.is_empty())
        .or(q.after);
    let accepts_stream = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    let follow = q.follow.unwrap_or(true) && accepts_stream;
    let params = EventReadParams {
        after,
        queue: q.queue,
        kind: q.kind,
        state: q.state.map(Into::into),
        limit: PAGE,
    };
    // The first page is read here, so a bad cursor is an error answer, not a broken stream.
    let first = s
        .backend
        .event_read(params.clone())
        .await
        .map_err(|e| match e {
            quern::Error::InvalidArgument(m) => ApiError::bad_request("invalid_cursor", m),
            e => e.into(),
        })?;
    let (tx, mut rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(pump(Arc::clone(&s), params, first, follow, tx));
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let sse = Sse::new(body);
    Ok(if follow {
        sse.keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response()
    } else {
        sse.into_response()
    })
}

fn message(e: &quern::model::JobEvent) -> Event {
    let data = serde_json::to_string(&EventDto::new(e, false)).expect("an event serializes");
    Event::default()
        .event("job")
        .id(e.cursor.clone())
        .data(data)
}

/// Sends pages until the backlog is out (not following) or the client goes away or the
/// server shuts down (following). A store error ends the stream; the client resumes from
/// its last id.
async fn pump(
    s: Arc<AppState>,
    mut params: EventReadParams,
    first: EventPage,
    follow: bool,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut page = first;
    let mut sent = 0usize;
    loop {
        let full = page.events.len() == params.limit;
        for e in &page.events {
            if tx.send(Ok(message(e))).await.is_err() {
                return;
            }
        }
        sent += page.events.len();
        if page.cursor.is_some() {
            params.after = page.cursor.take();
        }
        if !follow && (!full || sent >= BACKLOG_MAX) {
            return;
        }
        if !full {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = s.shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
        }
        page = match s.backend.event_read(params.clone()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "event stream read failed; ending the stream");
                return;
            }
        };
    }
}
