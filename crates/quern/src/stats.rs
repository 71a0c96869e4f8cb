//! Throughput, outcomes, retries and wait / run-time percentiles of finished jobs, computed
//! from their stored timestamps ([`Backend::job_finished`](crate::Backend::job_finished)).
//! Pure: the same arithmetic for every backend.
//!
//! - **wait** = `started_at − run_at` of the last attempt: how long a due job waited for a
//!   worker (for a job to run at once, `run_at` is its `created_at`; for a retry, the retry's
//!   due time).
//! - **run** = `finished_at − started_at` of the last attempt.
//! - Jobs that never started (cancelled while waiting, skipped) count in the outcomes but
//!   not in the percentiles.
//! - Rates are over the jobs that ran to an outcome: success = succeeded / (succeeded +
//!   dead), failure = dead / (succeeded + dead).
//! - Percentiles are nearest-rank over every sample (exact, no histogram).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::FinishedJob;
use crate::clock::Millis;
use crate::model::JobState;

/// p50 / p95 / p99 / max of a set of durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: i64,
    pub p95: i64,
    pub p99: i64,
    pub max: i64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (sorted here); `None` when empty.
    pub fn of(mut v: Vec<i64>) -> Option<Percentiles> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[i.clamp(1, v.len()) - 1]
        };
        Some(Percentiles {
            count: v.len() as u64,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: v[v.len() - 1],
        })
    }
}

/// The figures of one group of finished jobs (one queue and kind, or all of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// The group's queue; `None` in the total.
    pub queue: Option<String>,
    /// The group's kind; `None` in the total.
    pub kind: Option<String>,
    /// Jobs that finished in the window, in any terminal state.
    pub finished: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub skipped: u64,
    /// Finished jobs per second over the window.
    pub throughput_per_s: f64,
    /// succeeded / (succeeded + dead); `None` when neither.
    pub success_rate: Option<f64>,
    /// dead / (succeeded + dead); `None` when neither.
    pub failure_rate: Option<f64>,
    /// Jobs that needed more than one attempt.
    pub retried_jobs: u64,
    /// Attempts beyond the first, summed.
    pub retries: u64,
    /// Wait for a worker (`started_at − run_at`), ms.
    pub wait_ms: Option<Percentiles>,
    /// Run time (`finished_at − started_at`), ms.
    pub run_ms: Option<Percentiles>,
}

/// What `quern stats` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// The window: jobs with `since <= finished_at`, read at `until`.
    pub since: Millis,
    pub until: Millis,
    /// Every job of the window.
    pub total: GroupStats,
    /// One per (queue, kind), by queue then kind.
    pub groups: Vec<GroupStats>,
}

/// Summarizes the jobs that finished between `since` and `until`.
pub fn summarize(jobs: &[FinishedJob], since: Millis, until: Millis) -> StatsReport {
    let mut by: BTreeMap<(&str, &str), Vec<&FinishedJob>> = BTreeMap::new();
    for j in jobs {
        by.entry((j.queue.as_str(), j.kind.as_str()))
            .or_default()
            .push(j);
    }
    let window = (until - since).max(1);
    let groups = by
        .into_iter()
        .map(|((q, k), js)| group(Some(q), Some(k), &js, window))
        .collect();
    let all: Vec<&FinishedJob> = jobs.iter().collect();
    StatsReport {
        since,
        until,
        total: group(None, None, &all, window),
        groups,
    }
}

fn group(
    queue: Option<&str>,
    kind: Option<&str>,
    js: &[&FinishedJob],
    window: Millis,
) -> GroupStats {
    let count = |s: JobState| js.iter().filter(|j| j.state == s).count() as u64;
    let (succeeded, dead) = (count(JobState::Succeeded), count(JobState::Dead));
    let ran = succeeded + dead;
    let rate = |n: u64| (ran > 0).then(|| n as f64 / ran as f64);
    let mut waits = Vec::new();
    let mut runs = Vec::new();
    for j in js {
        if let Some(st) = j.started_at {
            waits.push((st - j.run_at).max(0));
            runs.push((j.finished_at - st).max(0));
        }
    }
    GroupStats {
        queue: queue.map(str::to_string),
        kind: kind.map(str::to_string),
        finished: js.len() as u64,
        succeeded,
        dead,
        cancelled: count(JobState::Cancelled),
        skipped: count(JobState::Skipped),
        throughput_per_s: js.len() as f64 * 1000.0 / window as f64,
        success_rate: rate(succeeded),
        failure_rate: rate(dead),
        retried_jobs: js.iter().filter(|j| j.attempt > 1).count() as u64,
        retries: js
            .iter()
            .map(|j| u64::from(j.attempt.saturating_sub(1)))
            .sum(),
        wait_ms: Percentiles::of(waits),
        run_ms: Percentiles::of(runs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobId;

    fn fj(
        queue: &str,
        kind: &str,
        state: JobState,
        attempt: u32,
        wait: i64,
        run: Option<i64>,
    ) -> FinishedJob {
        let run_at = 1_000;
        let started_at = run.map(|_| run_at + wait);
        FinishedJob {
            id: JobId::new(),
            queue: queue.into(),
            kind: kind.into(),
            state,
            attempt,
            created_at: run_at,
            run_at,
            started_at,
            finished_at: started_at.unwrap_or(run_at) + run.unwrap_or(0),
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).collect()).unwrap();
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max),
            (100, 50, 95, 99, 100)
        );
        let p = Percentiles::of(vec![7]).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (7, 7, 7));
        let p = Percentiles::of(vec![30, 10, 20]).unwrap();
        assert_eq!((p.p50, p.p95), (20, 30));
        assert_eq!(Percentiles::of(Vec::new()), None);
    }

    #[test]
    fn groups_by_queue_and_kind_with_rates_retries_and_percentiles() {
        let jobs = vec![
            fj("a", "x", JobState::Succeeded, 1, 10, Some(100)),
            fj("a", "x", JobState::Succeeded, 3, 30, Some(300)),
            fj("a", "x", JobState::Dead, 5, 20, Some(200)),
            fj("a", "x", JobState::Cancelled, 0, 0, None),
            fj("b", "x", JobState::Succeeded, 1, 5, Some(50)),
        ];
        let r = summarize(&jobs, 0, 10_000);
        assert_eq!(r.total.finished, 5);
        assert_eq!(r.total.throughput_per_s, 0.5);
        assert_eq!(r.groups.len(), 2);
        let a = &r.groups[0];
        assert_eq!(
            (a.queue.as_deref(), a.kind.as_deref()),
            (Some("a"), Some("x"))
        );
        assert_eq!((a.succeeded, a.dead, a.cancelled, a.skipped), (2, 1, 1, 0));
        assert_eq!(a.success_rate, Some(2.0 / 3.0));
        assert_eq!(a.failure_rate, Some(1.0 / 3.0));
        assert_eq!((a.retried_jobs, a.retries), (2, 6));
        let w = a.wait_ms.unwrap();
        assert_eq!(
            (w.count, w.p50, w.p99),
            (3, 20, 30),
            "the cancelled job never started"
        );
        let run = a.run_ms.unwrap();
        assert_eq!((run.p50, run.max), (200, 300));
        let none = summarize(&[fj("c", "y", JobState::Skipped, 0, 0, None)], 0, 1000);
        assert_eq!((none.total.success_rate, none.total.run_ms), (None, None));
    }
}
