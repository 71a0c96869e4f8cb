//! The per-process families (counters and histograms by queue and kind) and the cache of
//! one (queue, kind)'s handles, so that counting a job is an atomic increment and never a
//! label lookup with freshly allocated strings.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The labels of every per-job series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub queue: String,
    pub kind: String,
}

/// The label of the cron lateness histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabels {
    pub schedule: String,
}

/// Upper bounds of every duration histogram, in seconds: 1 ms to 1 h, so a scheduling
/// glitch (ms) and a backlog (minutes) both fall inside a bucket.
pub const BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

/// The most distinct (queue, kind) pairs given their own series; later ones are counted
/// under `queue="_other", kind="_other"`, so a client enqueueing random kinds cannot grow
/// the server's memory (or the scrape) without bound.
pub const MAX_SERIES: usize = 5000;

const OTHER: &str = "_other";

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The handles of one (queue, kind): clones of the families' metrics (they share their
/// values with the registered ones).
#[derive(Debug)]
pub struct Series {
    pub enqueued: Counter,
    pub completed: Counter,
    pub failed: Counter,
    pub retried: Counter,
    pub dead: Counter,
    pub rescued: Counter,
    /// From when the job was due (its enqueue, or its `run_at` for delayed and retried
    /// jobs) to its claim.
    pub wait: Histogram,
    /// From the handler's start (the claim when the worker reports none) to its outcome.
    pub run: Histogram,
    /// Due → claim, only for jobs that were due later than enqueued (delayed, retried).
    pub delayed_lateness: Histogram,
}

/// Every per-process family, and the (queue, kind) → handles cache.
#[derive(Debug)]
pub struct Families {
    enqueued: Family<JobLabels, Counter>,
    completed: Family<JobLabels, Counter>,
    failed: Family<JobLabels, Counter>,
    retried: Family<JobLabels, Counter>,
    dead: Family<JobLabels, Counter>,
    rescued: Family<JobLabels, Counter>,
    wait: HistogramFamily<JobLabels>,
    run: HistogramFamily<JobLabels>,
    delayed_lateness: HistogramFamily<JobLabels>,
    pub cron_lateness: HistogramFamily<ScheduleLabels>,
    /// queue → kind → handles. Read-locked on the hot path; write-locked only when a new
    /// pair is first seen.
    cache: RwLock<HashMap<String, HashMap<String, Arc<Series>>>>,
}

impl Families {
    pub fn register(r: &mut Registry) -> Families {
        let f = Families {
            enqueued: Family::default(),
            completed: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            dead: Family::default(),
            rescued: Family::default(),
            wait: Family::new_with_constructor(histogram),
            run: Family::new_with_constructor(histogram),
            delayed_lateness: Family::new_with_constructor(histogram),
            cron_lateness: Family::new_with_constructor(histogram),
            cache: RwLock::new(HashMap::new()),
        };
        r.register(
            "jobs_enqueued",
            "Jobs stored by this process (REST enqueue, workflows, cron runs, fan-out), duplicates of a unique key not counted",
            f.enqueued.clone(),
        );
        r.register(
            "jobs_completed",
            "Attempts that succeeded, reported through this process",
            f.completed.clone(),
        );
        r.register(
            "jobs_failed",
            "Attempts that failed (then retried or dead), reported through this process",
            f.failed.clone(),
        );
        r.register(
            "jobs_retried",
            "Failed attempts that scheduled a retry",
            f.retried.clone(),
        );
        r.register(
            "jobs_dead",
            "Jobs moved to the dead-letter queue by a failure or by the rescuer of this process",
            f.dead.clone(),
        );
        r.register(
            "jobs_rescued",
            "Jobs whose lease expired (or whose worker was lost), taken back by the rescuer of this process",
            f.rescued.clone(),
        );
        r.register(
            "job_wait_seconds",
            "From when a job was due (enqueued, or its run_at) to its claim",
            f.wait.clone(),
        );
        r.register(
            "job_run_seconds",
            "From an attempt's start to its reported outcome",
            f.run.clone(),
        );
        r.register(
            "delayed_job_lateness_seconds",
            "From the due time of a delayed or retried job to its claim",
            f.delayed_lateness.clone(),
        );
        r.register(
            "cron_lateness_seconds",
            "From a cron tick's due time to the first claim of its job",
            f.cron_lateness.clone(),
        );
        f
    }

    /// The handles of (queue, kind), created on first use (`_other` past [`MAX_SERIES`]).
    pub fn series(&self, queue: &str, kind: &str) -> Arc<Series> {
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = cache.get(queue).and_then(|k| k.get(kind)) {
                return Arc::clone(s);
            }
        }
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        let size: usize = cache.values().map(HashMap::len).sum();
        let (queue, kind) = if size >= MAX_SERIES {
            (OTHER, OTHER)
        } else {
            (queue, kind)
        };
        if let Some(s) = cache.get(queue).and_then(|k| k.get(kind)) {
            return Arc::clone(s);
        }
        let labels = JobLabels {
            queue: queue.to_string(),
            kind: kind.to_string(),
        };
        let s = Arc::new(Series {
            enqueued: self.enqueued.get_or_create_owned(&labels),
            completed: self.completed.get_or_create_owned(&labels),
            failed: self.failed.get_or_create_owned(&labels),
            retried: self.retried.get_or_create_owned(&labels),
            dead: self.dead.get_or_create_owned(&labels),
            rescued: self.rescued.get_or_create_owned(&labels),
            wait: self.wait.get_or_create_owned(&labels),
            run: self.run.get_or_create_owned(&labels),
            delayed_lateness: self.delayed_lateness.get_or_create_owned(&labels),
        });
        cache
            .entry(labels.queue)
            .or_default()
            .insert(labels.kind, Arc::clone(&s));
        s
    }
}

/// A duration in milliseconds as the seconds a histogram observes (never negative: clocks of
/// different processes may disagree a little).
pub fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_the_registered_values_and_are_cached() {
        let mut r = Registry::default();
        let f = Families::register(&mut r);
        let a = f.series("q", "k");
        a.completed.inc();
        assert!(Arc::ptr_eq(&a, &f.series("q", "k")));
        assert_eq!(
            f.completed
                .get_or_create(&JobLabels {
                    queue: "q".into(),
                    kind: "k".into()
                })
                .get(),
            1
        );
    }

    #[test]
    fn pairs_past_the_cap_share_one_series() {
        let mut r = Registry::default();
        let f = Families::register(&mut r);
        for i in 0..MAX_SERIES {
            f.series("q", &format!("k{i}"));
        }
        let a = f.series("q", "one-more");
        let b = f.series("other-queue", "another");
        assert!(Arc::ptr_eq(&a, &b));
        // Pairs seen before the cap keep their own.
        assert!(!Arc::ptr_eq(&a, &f.series("q", "k0")));
    }
}
