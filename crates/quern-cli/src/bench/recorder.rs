//! The benchmark's job handler: records which jobs ran (to count lost and duplicated ones) and,
//! in the latency run, how long each waited from the enqueue call to the handler start.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use quern::{Context, Handler, JobId, Payload, TaskError};
use tokio::sync::Notify;

/// The kind benchmark jobs are enqueued as.
pub const KIND: &str = "quern.bench";

/// Shared between the handler and the measuring code.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Times each job id reached the handler.
    seen: Mutex<HashMap<JobId, u32>>,
    /// Distinct jobs seen.
    distinct: AtomicUsize,
    /// `distinct` value at which `done` is notified.
    target: AtomicUsize,
    done: Notify,
    /// Enqueue-call-start → handler-start, in milliseconds (latency run only).
    latencies: Mutex<Vec<f64>>,
    /// Whether to read the `ts` field of each payload.
    measure_latency: bool,
}

impl Recorder {
    pub fn new(target: usize, measure_latency: bool) -> Self {
        Recorder {
            target: AtomicUsize::new(target),
            measure_latency,
            ..Default::default()
        }
    }

    pub fn distinct(&self) -> usize {
        self.distinct.load(Ordering::Acquire)
    }

    /// Resolves once `target` distinct jobs were seen.
    pub async fn wait_done(&self) {
        loop {
            let notified = self.done.notified();
            if self.distinct() >= self.target.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Jobs delivered more than once (extra deliveries counted).
    pub fn duplicates(&self) -> u64 {
        let seen = self.seen.lock().expect("recorder lock");
        seen.values().map(|n| u64::from(n.saturating_sub(1))).sum()
    }

    /// Of `ids`, how many never reached the handler.
    pub fn missing(&self, ids: &[JobId]) -> u64 {
        let seen = self.seen.lock().expect("recorder lock");
        ids.iter().filter(|id| !seen.contains_key(id)).count() as u64
    }

    pub fn take_latencies(&self) -> Vec<f64> {
        std::mem::take(&mut *self.latencies.lock().expect("recorder lock"))
    }

    fn record(&self, id: JobId, latency: Option<f64>) {
        if let Some(l) = latency {
            self.latencies.lock().expect("recorder lock").push(l);
        }
        let first = {
            let mut seen = self.seen.lock().expect("recorder lock");
            let n = seen.entry(id).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            let d = self.distinct.fetch_add(1, Ordering::AcqRel) + 1;
            if d >= self.target.load(Ordering::Acquire) {
                self.done.notify_waiters();
            }
        }
    }
}

/// Wall-clock milliseconds with sub-millisecond precision (producer and worker share the
/// process, so they share this clock).
pub fn now_ms_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Records the job and succeeds; does nothing else, so the run measures the queue.
#[derive(Debug)]
pub struct BenchHandler(pub std::sync::Arc<Recorder>);

#[derive(serde::Deserialize)]
struct Stamp {
    ts: f64,
}

#[async_trait]
impl Handler for BenchHandler {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let started = now_ms_f64();
        let latency = if self.0.measure_latency {
            payload.decode::<Stamp>().ok().map(|s| started - s.ts)
        } else {
            None
        };
        self.0.record(ctx.job_id(), latency);
        Ok(None)
    }
}

/// The value at quantile `q` of sorted `v`, taken the same way as the peers' scripts.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    sorted[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_the_peer_scripts() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 501.0);
        assert_eq!(quantile(&v, 0.99), 991.0);
        assert_eq!(quantile(&v, 0.999), 1000.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn counts_duplicates_and_missing() {
        let r = Recorder::new(2, false);
        let (a, b, c) = (JobId::new(), JobId::new(), JobId::new());
        r.record(a, None);
        r.record(a, None);
        r.record(b, None);
        assert_eq!(r.distinct(), 2);
        assert_eq!(r.duplicates(), 1);
        assert_eq!(r.missing(&[a, b, c]), 1);
    }
}
