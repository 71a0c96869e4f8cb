//! Job events: a job's timeline and the entries of the `GET /v1/events` stream.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::JobStateDto;

/// One state transition of a job. In the event stream this is the `data:` of an
/// `event: job` message (without `cursor`, which is its `id:`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventDto {
    /// Never sent: in the stream the cursor is the message's `id:`, and a timeline's
    /// events are the job's own list (no stream position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub job: String,
    pub queue: String,
    pub kind: String,
    /// `null` when the job was just stored.
    pub from: Option<JobStateDto>,
    /// `null` when the job was deleted.
    pub to: Option<JobStateDto>,
    pub attempt: u32,
    /// Unix ms, by the store's clock.
    pub at: i64,
    /// Who asked for the change: `token@address` for an API request, `cli` for the CLI,
    /// `null` for the system's own work (claims, completions, maintenance).
    pub actor: Option<String>,
}

impl EventDto {
    pub fn new(e: &quern::model::JobEvent, with_cursor: bool) -> Self {
        EventDto {
            cursor: with_cursor.then(|| e.cursor.clone()),
            job: e.job.to_string(),
            queue: e.queue.clone(),
            kind: e.kind.clone(),
            from: e.from.map(Into::into),
            to: e.to.map(Into::into),
            attempt: e.attempt,
            at: e.at,
            actor: e.actor.clone(),
        }
    }
}

/// `GET /v1/jobs/{id}/events`.
/// One message of the `GET /v1/events` stream, as `text/event-stream` frames it (the
/// fields of an SSE message; `:` comment lines that keep the connection alive carry none).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SseMessageDto {
    /// Always `job`.
    pub event: String,
    /// The message's cursor: send it back as `Last-Event-ID` (or `?after=`) to resume after
    /// this message.
    pub id: String,
    /// An [`EventDto`] as JSON text.
    pub data: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TimelineDto {
    pub job: String,
    /// Oldest first.
    pub events: Vec<EventDto>,
}

/// Filters and position of `GET /v1/events`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventStreamQuery {
    /// Only events of this queue.
    pub queue: Option<String>,
    /// Only events of jobs of this kind.
    pub kind: Option<String>,
    /// Only events into this state (`to`).
    pub state: Option<JobStateDto>,
    /// Start after this cursor (an event's `id:`); the `Last-Event-ID` header wins when both
    /// are sent. Without either, the stream starts at the oldest event kept.
    pub after: Option<String>,
    /// `false`: send the events kept after the position, then end. Default `true`: keep the
    /// stream open and send new events as they happen — when the request accepts
    /// `text/event-stream` (as `EventSource` does); otherwise the backlog is sent and the
    /// response ends.
    pub follow: Option<bool>,
}
