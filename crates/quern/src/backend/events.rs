//! Job events (see [`crate::model::JobEvent`]): the params and answers of `event_list`,
//! `event_read` and `event_prune`.

use std::time::Duration;

use crate::model::{JobEvent, JobId, JobState};

/// `event_list`: one job's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventListParams {
    pub job: JobId,
}

/// `event_read`: the event stream after a cursor, optionally filtered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventReadParams {
    /// Read what follows this cursor (a [`JobEvent::cursor`] or [`EventPage::cursor`]);
    /// `None` reads from the oldest event kept. A cursor the store cannot read is an
    /// `InvalidArgument` error.
    pub after: Option<String>,
    /// Only events of this queue.
    pub queue: Option<String>,
    /// Only events of jobs of this kind.
    pub kind: Option<String>,
    /// Only events whose `to` state is this one.
    pub state: Option<JobState>,
    /// At most this many events (0 reads none but still answers the cursor).
    pub limit: usize,
}

/// What `event_read` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<JobEvent>,
    /// Where to continue from: past the last event returned, and past events skipped by the
    /// filter. Pass it as the next call's `after`.
    pub cursor: Option<String>,
}

/// `event_prune`: the retention caps. Both may be given; an event over either goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventPruneParams {
    /// Keep at most this many events (SQLite: in the store; Redis: per queue, approximately,
    /// by whole stream nodes).
    pub max_events: Option<u64>,
    /// Drop events older than this (by their `at`).
    pub max_age: Option<Duration>,
}

/// Events kept per queue on Redis (and in the store on SQLite) when no retention is
/// configured: every append trims to about this many.
pub const DEFAULT_EVENT_CAP: u64 = 100_000;
