//! Job events: one record per state transition, for a job's timeline, the event stream and
//! the audit trail.
//!
//! Every backend records each transition in the event stream in the same atomic step as the
//! transition (one SQLite transaction, one Redis script), where one entry per operation and
//! queue packs the jobs it moved: enqueue (→ queued, scheduled or blocked), claim
//! (→ running), complete, fail and retry, dead, cancel, the rescue of an expired lease,
//! release, replay and operator retry, the promotion of a due scheduled job, the unblocking
//! or skipping of dependents, and deletion (`to` is `None`). A job's timeline is assembled
//! when read ([`crate::model::job_timeline`]): the hot moves are derived from the job's own
//! fields and only the cold ones, and those made under an actor, are stored with the job (a
//! pruned or deleted job takes them along). A reprioritize keeps the state and is recorded
//! (with `from` = `to`) only when an actor asked for it.
//!
//! The `actor` says who asked for the change: the server records the token name and the
//! remote address of a mutating request (`name@addr`), the CLI records `cli`, and the
//! library's own work (claims, completions, the maintenance services) records none. It is
//! passed to the backend through [`with_actor`] around the call, so the backend's params
//! structs stay unchanged.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::model::{JobId, JobState};

/// One state transition of one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    /// From `event_read`: where this event sits in the store's event stream; pass it back
    /// as [`EventReadParams::after`](crate::backend::EventReadParams::after) to read what
    /// follows. Opaque: SQLite writes the row and the record in it, Redis the per-queue
    /// stream positions. From `event_list` (a timeline, kept with the job) it is only the
    /// event's place in that timeline (`t.N`), not a stream position.
    pub cursor: String,
    pub job: JobId,
    pub queue: String,
    /// The job's kind (handler name).
    pub kind: String,
    /// The state before the transition; `None` when the job was just stored.
    pub from: Option<JobState>,
    /// The state after it; `None` when the job was deleted (pruned or deleted by id).
    pub to: Option<JobState>,
    /// The job's attempt count after the transition.
    pub attempt: u32,
    /// When it happened, by the store's clock (ms since the epoch).
    pub at: Millis,
    /// Who asked for it (see the module docs); `None` for the system's own work.
    pub actor: Option<String>,
}

tokio::task_local! {
    static ACTOR: Option<String>;
}

/// Runs `fut` with `actor` recorded on every event the backend calls inside it append.
/// The server wraps each mutating request in it (the token name and remote address), the
/// CLI its commands (`cli`).
pub async fn with_actor<F: std::future::Future>(actor: Option<String>, fut: F) -> F::Output {
    ACTOR.scope(actor, fut).await
}

/// The actor set by the enclosing [`with_actor`], if any. Backends read it when a call
/// starts, before handing the work to another task or thread.
pub fn current_actor() -> Option<String> {
    ACTOR.try_with(|a| a.clone()).ok().flatten()
}

/// Longest actor text stored; a longer one is cut at a character boundary.
pub const MAX_ACTOR_BYTES: usize = 200;

/// [`current_actor`], cut to [`MAX_ACTOR_BYTES`].
pub fn current_actor_stored() -> Option<String> {
    current_actor().map(|mut a| {
        if a.len() > MAX_ACTOR_BYTES {
            let mut end = MAX_ACTOR_BYTES;
            while !a.is_char_boundary(end) {
                end -= 1;
            }
            a.truncate(end);
        }
        a
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn actor_is_scoped_to_the_future() {
        assert_eq!(current_actor(), None);
        let got = with_actor(Some("ops@127.0.0.1:5".into()), async { current_actor() }).await;
        assert_eq!(got.as_deref(), Some("ops@127.0.0.1:5"));
        assert_eq!(current_actor(), None);
        let long = "é".repeat(300);
        let cut = with_actor(Some(long), async { current_actor_stored() })
            .await
            .unwrap();
        assert!(cut.len() <= MAX_ACTOR_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
