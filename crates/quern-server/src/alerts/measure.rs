//! What each rule reads from the store, and the number it compares. Every read is cheap:
//! the queue list (counts and the oldest ready job come with it), the worker registry, the
//! schedules, and the jobs finished within a window (through the finished-jobs index). One
//! evaluation reads each of those at most once, whatever the number of rules.

use std::time::Duration;

use quern::backend::{FinishedParams, QueueInfo, WorkerInfo, WorkerState};
use quern::model::{StoredSchedule, format_duration};
use quern::{Backend, JobState, Millis};

use super::rule::{AlertRule, Condition};

/// One rule's reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub value: f64,
    /// A sentence saying what was measured, for notices, logs and `GET /v1/alerts`.
    pub message: String,
}

/// The shared reads of one evaluation, each made on first use.
#[derive(Default)]
struct Shared {
    queues: Option<Vec<QueueInfo>>,
    workers: Option<Vec<WorkerInfo>>,
    schedules: Option<Vec<StoredSchedule>>,
}

/// Reads every rule at `now`. A rule whose read failed gets the error (it is neither fired
/// nor resolved on a failed read).
pub async fn read_all(
    backend: &dyn Backend,
    rules: &[AlertRule],
    now: Millis,
) -> Vec<Result<Reading, String>> {
    let mut shared = Shared::default();
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        out.push(
            read_one(backend, r, now, &mut shared)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    out
}

fn scope(q: &Option<String>) -> String {
    match q {
        Some(q) => format!("queue {q:?}"),
        None => "all queues".into(),
    }
}

fn secs(ms: i64) -> String {
    format_duration(Duration::from_millis(ms.max(0) as u64))
}

async fn read_one(
    backend: &dyn Backend,
    r: &AlertRule,
    now: Millis,
    shared: &mut Shared,
) -> quern::Result<Reading> {
    let threshold = r.threshold();
    match r.condition {
        Condition::QueueDepth | Condition::OldestReady => {
            if shared.queues.is_none() {
                shared.queues = Some(backend.queue_list().await?);
            }
            let queues = shared.queues.as_deref().unwrap_or_default();
            let mine = queues
                .iter()
                .filter(|q| r.queue.as_ref().is_none_or(|name| &q.name == name));
            if r.condition == Condition::QueueDepth {
                let depth: u64 = mine.map(|q| q.counts.queued).sum();
                Ok(Reading {
                    value: depth as f64,
                    message: format!(
                        "{} has {depth} ready job(s) (threshold: above {threshold})",
                        scope(&r.queue)
                    ),
                })
            } else {
                // A paused queue waits on purpose: it is left out.
                let waited = mine
                    .filter(|q| !q.paused && q.counts.queued > 0)
                    .filter_map(|q| q.oldest_queued_at)
                    .map(|t| now - t)
                    .max()
                    .unwrap_or(0)
                    .max(0);
                Ok(Reading {
                    value: waited as f64 / 1000.0,
                    message: format!(
                        "the oldest ready job of {} has waited {} (threshold: {})",
                        scope(&r.queue),
                        secs(waited),
                        secs((threshold * 1000.0) as i64)
                    ),
                })
            }
        }
        Condition::FailureRate | Condition::DlqGrowth => {
            let window = r.window();
            let finished = backend
                .job_finished(FinishedParams {
                    since: now - window.as_millis() as i64,
                    queue: r.queue.clone(),
                    kind: None,
                })
                .await?;
            let dead = finished
                .iter()
                .filter(|j| j.state == JobState::Dead)
                .count();
            if r.condition == Condition::DlqGrowth {
                return Ok(Reading {
                    value: dead as f64,
                    message: format!(
                        "{dead} job(s) of {} entered the dead-letter queue in the last {} (threshold: above {threshold})",
                        scope(&r.queue),
                        format_duration(window)
                    ),
                });
            }
            let ok = finished
                .iter()
                .filter(|j| j.state == JobState::Succeeded)
                .count();
            let total = ok + dead;
            let rate = if total == 0 {
                0.0
            } else {
                dead as f64 * 100.0 / total as f64
            };
            Ok(Reading {
                value: (rate * 100.0).round() / 100.0,
                message: format!(
                    "{dead} of {total} job(s) of {} that finished in the last {} failed ({:.1}%; threshold: above {threshold}%)",
                    scope(&r.queue),
                    format_duration(window),
                    rate
                ),
            })
        }
        Condition::NoWorkers => {
            if shared.workers.is_none() {
                shared.workers = Some(backend.worker_list().await?);
            }
            let queue = r.queue.clone().unwrap_or_default();
            let live = shared
                .workers
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|w| w.state(now) == WorkerState::Alive && w.queues.contains(&queue))
                .count();
            Ok(Reading {
                value: live as f64,
                message: format!(
                    "{live} live worker(s) serve queue {queue:?} (threshold: at least {threshold})"
                ),
            })
        }
        Condition::CronMissed => {
            if shared.schedules.is_none() {
                shared.schedules = Some(backend.schedule_list().await?);
            }
            let mut worst: Option<(i64, &str)> = None;
            for s in shared.schedules.as_deref().unwrap_or_default() {
                if r.schedule.as_ref().is_some_and(|n| *n != s.spec.name) {
                    continue;
                }
                // The first tick after the last one fired: due but not fired means late.
                let Some(due) = s.next_run(s.watermark) else {
                    continue;
                };
                let late = now - due;
                if late > 0 && worst.is_none_or(|(w, _)| late > w) {
                    worst = Some((late, s.spec.name.as_str()));
                }
            }
            let grace = secs((threshold * 1000.0) as i64);
            let message = match worst {
                Some((late, name)) => format!(
                    "schedule {name:?} has a tick overdue by {} (grace: {grace})",
                    secs(late)
                ),
                None => match &r.schedule {
                    Some(n) => format!("schedule {n:?} has no overdue tick (grace: {grace})"),
                    None => format!("no schedule has an overdue tick (grace: {grace})"),
                },
            };
            Ok(Reading {
                value: worst.map_or(0.0, |(late, _)| late as f64 / 1000.0),
                message,
            })
        }
    }
}
