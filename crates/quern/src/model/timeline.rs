//! A job's timeline, assembled at read time from what the job stores anyway plus the few
//! lines the cold paths store.
//!
//! The hot paths (enqueue, claim, complete, fail with a retry or to dead, promotion) write
//! no timeline line: their moves are **derived** from the job's own fields —
//! `created_at` and the first attempt's due time (→ queued, scheduled or blocked), each
//! [`ErrorRecord`] (its `claimed_at`: queued → running; its `at`: running → scheduled when
//! it carries a `retry_at`, → queued for a rescue, else → dead / cancelled / skipped as its
//! kind says; its `retry_at`: scheduled → queued), the last claim (`claimed_at`) and
//! `finished_at` (running → succeeded). The cold paths and every call made under an actor
//! ([`crate::model::with_actor`]) **store** an explicit line with the actor: cancel,
//! operator retry and DLQ replay, the rescue of an expired lease, a release or snooze (with
//! the claim it gives back, whose `claimed_at` the next claim overwrites), the unblocking or
//! skipping of dependents, an enqueue with dependencies.
//!
//! [`job_timeline`] merges the two in time order. A derived move that a stored line
//! already tells (the same time and the same target state, or the same time leaving
//! `running`) is dropped, as is the derived creation when a stored line records it; at
//! equal times the move that leaves the state the job is in comes first. A promotion
//! nothing tells (a snoozed job claimed again) is filled in at the claim's time.

use crate::clock::Millis;
use crate::model::{ErrorKind, Job, JobEvent, JobState};

/// Whether stored line `s` tells derived move `d`. A stored claim tells a derived one only
/// when it carries an actor (a claim made under an actor): the claim lines a release or a
/// snooze keeps are of an attempt whose `claimed_at` a later claim, perhaps in the same
/// millisecond, overwrote.
fn tells(s: &JobEvent, d: &JobEvent) -> bool {
    if s.at != d.at {
        return false;
    }
    if s.to == Some(JobState::Running) {
        return d.to == s.to && s.actor.is_some();
    }
    s.to == d.to || (d.from == Some(JobState::Running) && s.from == d.from)
}

/// What a derived move is, for the merge's rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    Creation,
    Promotion,
    Other,
}

/// `job`'s timeline, oldest first: the moves derived from its fields merged with `stored`
/// (the lines its store kept, oldest first). Each event's `cursor` is its place in the
/// timeline, `t.N`.
pub fn job_timeline(job: &Job, stored: Vec<JobEvent>) -> Vec<JobEvent> {
    let mut derived = derive(job);
    let has_creation = stored.iter().any(|s| s.from.is_none());
    derived.retain(|(origin, d)| match origin {
        Origin::Creation => !has_creation,
        _ => !stored.iter().any(|s| tells(s, d)),
    });
    // Stable: equal times keep the order they were derived in.
    derived.sort_by_key(|(_, d)| d.at);
    let mut out: Vec<JobEvent> = Vec::with_capacity(derived.len() + stored.len());
    let mut cur: Option<JobState> = None;
    let (mut d, mut s) = (
        derived.into_iter().peekable(),
        stored.into_iter().peekable(),
    );
    loop {
        let take_derived = match (d.peek(), s.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, a)), Some(b)) => {
                a.at < b.at || (a.at == b.at && a.from == cur && b.from != cur)
            }
        };
        let (origin, ev) = if take_derived {
            d.next().expect("peeked")
        } else {
            (Origin::Other, s.next().expect("peeked"))
        };
        // A derived promotion of a job no longer scheduled did not happen that way (it was
        // cancelled, say, and retried by an operator).
        if origin == Origin::Promotion && cur != Some(JobState::Scheduled) {
            continue;
        }
        // A claim of a job last seen scheduled: its promotion happened by then.
        if cur == Some(JobState::Scheduled) && ev.from == Some(JobState::Queued) {
            let attempt = out.last().map_or(0, |e| e.attempt);
            out.push(event(
                job,
                Some(JobState::Scheduled),
                JobState::Queued,
                ev.at,
                attempt,
            ));
        }
        cur = ev.to;
        out.push(ev);
    }
    for (i, e) in out.iter_mut().enumerate() {
        e.cursor = format!("t.{i}");
    }
    out
}

fn event(job: &Job, from: Option<JobState>, to: JobState, at: Millis, attempt: u32) -> JobEvent {
    JobEvent {
        cursor: String::new(),
        job: job.id,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        from,
        to: Some(to),
        attempt,
        at,
        actor: None,
    }
}

/// The moves the job's fields tell, in the order they happened.
fn derive(job: &Job) -> Vec<(Origin, JobEvent)> {
    use JobState::*;
    let mut out = Vec::new();
    let first_due = match job.errors.first() {
        None => Some(job.run_at),
        Some(e) => e.due_at,
    };
    let init = if !job.depends_on.is_empty() {
        Blocked
    } else if first_due.is_some_and(|d| d > job.created_at) {
        Scheduled
    } else {
        Queued
    };
    out.push((Origin::Creation, event(job, None, init, job.created_at, 0)));
    let mut state = init;
    let mut due = first_due;
    let mut last_at = job.created_at;
    let mut attempt = 0;
    let claim = |out: &mut Vec<(Origin, JobEvent)>,
                 state: &mut JobState,
                 due: Option<Millis>,
                 last_at: Millis,
                 attempt: u32,
                 at: Millis,
                 new_attempt: u32| {
        if *state == Scheduled {
            let when = due.unwrap_or(at).clamp(last_at, at.max(last_at));
            out.push((
                Origin::Promotion,
                event(job, Some(Scheduled), Queued, when, attempt),
            ));
        }
        out.push((
            Origin::Other,
            event(job, Some(Queued), Running, at, new_attempt),
        ));
        *state = Running;
    };
    let last = job.errors.len().saturating_sub(1);
    for (i, e) in job.errors.iter().enumerate() {
        let from = match e.claimed_at {
            Some(c) => {
                claim(&mut out, &mut state, due, last_at, attempt, c, e.attempt);
                Running
            }
            None => state,
        };
        let ended = i == last && job.state.is_terminal() && job.finished_at == Some(e.at);
        let to = match e.kind {
            ErrorKind::Cancelled => Cancelled,
            ErrorKind::Skipped => Skipped,
            _ if e.retry_at.is_some() => Scheduled,
            ErrorKind::LeaseExpired | ErrorKind::WorkerLost if !ended => Queued,
            _ => Dead,
        };
        out.push((Origin::Other, event(job, Some(from), to, e.at, e.attempt)));
        state = to;
        due = e.retry_at;
        last_at = e.at;
        attempt = e.attempt;
    }
    // The last claim, if the job is running or ran to success since (a claim given back
    // by a release or a snooze is told by the lines those store; one that failed, by its
    // error record).
    if let Some(c) = job.claimed_at
        && matches!(job.state, Running | Succeeded)
        && !job.errors.iter().any(|e| e.claimed_at == Some(c))
    {
        let a = job.attempt.max(1);
        claim(&mut out, &mut state, due, last_at, attempt, c, a);
        if job.state == Succeeded
            && let Some(f) = job.finished_at
        {
            out.push((Origin::Other, event(job, Some(Running), Succeeded, f, a)));
        }
    } else if state == Scheduled && job.state != Scheduled && !job.state.is_terminal() {
        // Promoted, not claimed yet.
        let when = due.unwrap_or(last_at).max(last_at);
        out.push((
            Origin::Promotion,
            event(job, Some(Scheduled), Queued, when, attempt),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorRecord, NewJob};

    fn moves(t: &[JobEvent]) -> Vec<(Option<JobState>, Option<JobState>, u32, Millis)> {
        t.iter().map(|e| (e.from, e.to, e.attempt, e.at)).collect()
    }

    fn err(attempt: u32, at: Millis, claimed: Millis, retry_at: Option<Millis>) -> ErrorRecord {
        ErrorRecord {
            attempt,
            at,
            kind: ErrorKind::Retryable,
            message: "x".into(),
            claimed_at: Some(claimed),
            due_at: None,
            retry_at,
        }
    }

    fn base() -> Job {
        Job::from_new(
            NewJob::json("k", serde_json::json!({})).unwrap(),
            JobState::Queued,
            100,
        )
    }

    #[test]
    fn failed_twice_then_completed_is_derived_in_order() {
        use JobState::*;
        let mut j = base();
        j.errors = vec![
            ErrorRecord {
                due_at: Some(100),
                ..err(1, 120, 110, Some(200))
            },
            err(2, 220, 210, Some(300)),
        ];
        j.run_at = 300;
        j.claimed_at = Some(310);
        j.attempt = 3;
        j.state = Succeeded;
        j.finished_at = Some(320);
        let t = job_timeline(&j, Vec::new());
        assert_eq!(
            moves(&t),
            vec![
                (None, Some(Queued), 0, 100),
                (Some(Queued), Some(Running), 1, 110),
                (Some(Running), Some(Scheduled), 1, 120),
                (Some(Scheduled), Some(Queued), 1, 200),
                (Some(Queued), Some(Running), 2, 210),
                (Some(Running), Some(Scheduled), 2, 220),
                (Some(Scheduled), Some(Queued), 2, 300),
                (Some(Queued), Some(Running), 3, 310),
                (Some(Running), Some(Succeeded), 3, 320),
            ]
        );
        assert_eq!(t[8].cursor, "t.8");
    }

    #[test]
    fn stored_lines_win_and_interleave_at_equal_times() {
        use JobState::*;
        // Enqueued, cancelled and retried by an operator, claimed and completed, all in
        // the same millisecond: the stored lines carry the actor and the order holds.
        let mut j = base();
        j.errors = vec![ErrorRecord {
            kind: ErrorKind::Cancelled,
            claimed_at: None,
            ..err(0, 100, 0, None)
        }];
        j.claimed_at = Some(100);
        j.attempt = 1;
        j.state = Succeeded;
        j.finished_at = Some(100);
        let line = |from, to, actor: &str| JobEvent {
            actor: Some(actor.into()),
            ..event(&j, from, to, 100, 0)
        };
        let stored = vec![
            line(None, Queued, "ops"),
            line(Some(Queued), Cancelled, "ops"),
            line(Some(Cancelled), Queued, "cli"),
        ];
        let t = job_timeline(&j, stored);
        let got: Vec<_> = t
            .iter()
            .map(|e| (e.from, e.to, e.actor.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (None, Some(Queued), Some("ops")),
                (Some(Queued), Some(Cancelled), Some("ops")),
                (Some(Cancelled), Some(Queued), Some("cli")),
                (Some(Queued), Some(Running), None),
                (Some(Running), Some(Succeeded), None),
            ]
        );
    }

    #[test]
    fn a_scheduled_job_and_a_dead_end() {
        use JobState::*;
        let mut j = base();
        j.run_at = 500;
        j.state = Scheduled;
        assert_eq!(
            moves(&job_timeline(&j, Vec::new())),
            vec![(None, Some(Scheduled), 0, 100)]
        );
        j.errors = vec![ErrorRecord {
            due_at: Some(500),
            kind: ErrorKind::Fatal,
            ..err(1, 520, 510, None)
        }];
        j.claimed_at = Some(510);
        j.attempt = 1;
        j.state = Dead;
        j.finished_at = Some(520);
        assert_eq!(
            moves(&job_timeline(&j, Vec::new())),
            vec![
                (None, Some(Scheduled), 0, 100),
                (Some(Scheduled), Some(Queued), 0, 500),
                (Some(Queued), Some(Running), 1, 510),
                (Some(Running), Some(Dead), 1, 520),
            ]
        );
    }
}
