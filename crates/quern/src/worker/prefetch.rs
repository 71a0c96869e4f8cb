//! Adaptive prefetch: claim ahead only while jobs are short enough that a prefetched job
//! starts soon.
//!
//! Prefetching (claiming more jobs than free slots) saves a claim round trip per job and
//! makes claim batches bigger, which matters for short jobs; but a prefetched job holds a
//! lease while it waits, and nobody else can run it meanwhile. That is Celery's prefetch
//! problem: one long job and a worker sits on a queue of others while its peers idle.
//!
//! So the worker keeps a moving average of handler run times and allows at most as many
//! prefetched jobs as would start within `prefetch_wait` on average:
//! `concurrency × prefetch_wait / average_run_time`, capped by the configured maximum.
//! Short jobs (a few ms) get the full prefetch; jobs of seconds get none. Before the first
//! job has finished nothing is known, so nothing is prefetched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A moving average of handler run times, in microseconds.
#[derive(Debug)]
pub(crate) struct RunTimes {
    /// `u64::MAX` until the first sample.
    ewma_us: AtomicU64,
}

impl Default for RunTimes {
    fn default() -> Self {
        RunTimes {
            ewma_us: AtomicU64::new(u64::MAX),
        }
    }
}

impl RunTimes {
    /// Adds one run time (weight 1/8, so a change of job mix shows within a few dozen jobs).
    /// Concurrent updates may overwrite each other; an average does not need every sample.
    pub(crate) fn record(&self, d: Duration) {
        let sample = u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1);
        let old = self.ewma_us.load(Ordering::Relaxed);
        let new = if old == u64::MAX {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.ewma_us.store(new, Ordering::Relaxed);
    }

    /// The average, if any job has finished.
    pub(crate) fn average(&self) -> Option<Duration> {
        match self.ewma_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

/// How many jobs may be prefetched now.
pub(crate) fn allowed(
    max: usize,
    concurrency: usize,
    wait: Duration,
    avg: Option<Duration>,
) -> usize {
    let Some(avg) = avg else { return 0 };
    if max == 0 {
        return 0;
    }
    let avg_us = avg.as_micros().max(1);
    let fit = concurrency as u128 * wait.as_micros() / avg_us;
    usize::try_from(fit).unwrap_or(usize::MAX).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn short_jobs_get_full_prefetch_and_long_ones_none() {
        let wait = 50 * MS;
        assert_eq!(allowed(16, 16, wait, None), 0, "nothing known yet");
        assert_eq!(allowed(16, 16, wait, Some(Duration::from_micros(50))), 16);
        assert_eq!(allowed(16, 16, wait, Some(100 * MS)), 8);
        assert_eq!(allowed(16, 16, wait, Some(Duration::from_secs(1))), 0);
        assert_eq!(allowed(0, 16, wait, Some(Duration::ZERO)), 0);
    }

    #[test]
    fn the_average_follows_the_job_mix() {
        let r = RunTimes::default();
        assert_eq!(r.average(), None);
        r.record(Duration::from_secs(2));
        assert_eq!(r.average(), Some(Duration::from_secs(2)));
        for _ in 0..60 {
            r.record(MS);
        }
        assert!(r.average().unwrap() < 5 * MS, "{:?}", r.average());
    }
}
