//! The gauges read from the store at scrape time, the same on every server: jobs by queue
//! and state (the queues' own counts, never a count over all jobs), paused queues, the age
//! of the oldest ready job, the worker registry (count, slots, utilisation), and each
//! queue's limiter (running against its cap, rate tokens left).
//!
//! Cost of a scrape: `queue_list` and `worker_list` once, and `queue_get` once per queue on
//! a store with queue limits.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use quern::backend::WorkerState;
use quern::model::JobState;
use quern::{Backend, Millis};

use super::series::seconds;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueState {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerStateLabel {
    state: String,
}

type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Reads the store and returns a registry holding one scrape's gauges.
pub async fn read(backend: &dyn Backend, now: Millis) -> quern::Result<Registry> {
    let queues = backend.queue_list().await?;
    let workers = backend.worker_list().await?;
    let limits = backend.capabilities().queue_limits;

    let jobs = Family::<QueueState, Gauge>::default();
    let paused = Family::<QueueLabel, Gauge>::default();
    let oldest = Family::<QueueLabel, F64Gauge>::default();
    let queue_workers = Family::<QueueLabel, Gauge>::default();
    let running = Family::<QueueLabel, Gauge>::default();
    let cap = Family::<QueueLabel, Gauge>::default();
    let tokens = Family::<QueueLabel, F64Gauge>::default();
    let rate = Family::<QueueLabel, F64Gauge>::default();

    for q in &queues {
        let ql = QueueLabel {
            queue: q.name.clone(),
        };
        for s in JobState::ALL {
            jobs.get_or_create(&QueueState {
                queue: q.name.clone(),
                state: s.as_str().to_string(),
            })
            .set(i64::try_from(q.counts.get(s)).unwrap_or(i64::MAX));
        }
        paused.get_or_create(&ql).set(i64::from(q.paused));
        if let Some(at) = q.oldest_queued_at {
            oldest.get_or_create(&ql).set(seconds(now - at));
        }
        let serving = workers
            .iter()
            .filter(|w| w.state(now) == WorkerState::Alive && w.queues.contains(&q.name))
            .count();
        queue_workers
            .get_or_create(&ql)
            .set(i64::try_from(serving).unwrap_or(i64::MAX));
        if limits {
            let u = match backend.queue_get((&q.name).into()).await {
                Ok(u) => u,
                // Deleted between the list and this read: nothing to report.
                Err(quern::Error::QueueNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            running
                .get_or_create(&ql)
                .set(i64::try_from(u.running).unwrap_or(i64::MAX));
            if let Some(c) = u.settings.concurrency {
                cap.get_or_create(&ql).set(i64::from(c));
            }
            if let Some(r) = &u.settings.rate {
                rate.get_or_create(&ql)
                    .set(f64::from(r.count) / r.per.as_secs_f64().max(1e-9));
            }
            if let Some(t) = u.tokens {
                tokens.get_or_create(&ql).set(t);
            }
        }
    }

    let by_state = Family::<WorkerStateLabel, Gauge>::default();
    let (mut slots, mut busy) = (0i64, 0i64);
    for state in [WorkerState::Alive, WorkerState::Lost] {
        by_state
            .get_or_create(&WorkerStateLabel {
                state: state.as_str().to_string(),
            })
            .set(0);
    }
    for w in &workers {
        let state = w.state(now);
        by_state
            .get_or_create(&WorkerStateLabel {
                state: state.as_str().to_string(),
            })
            .inc();
        if state == WorkerState::Alive {
            slots += i64::from(w.concurrency);
            busy += i64::from(w.running);
        }
    }
    let slots_g = Gauge::<i64>::default();
    slots_g.set(slots);
    let busy_g = Gauge::<i64>::default();
    busy_g.set(busy);
    let util = F64Gauge::default();
    util.set(if slots > 0 {
        busy as f64 / slots as f64
    } else {
        0.0
    });

    let mut r = Registry::with_prefix("quern");
    r.register(
        "queue_jobs",
        "Jobs in each state, by queue (from the store)",
        jobs,
    );
    r.register("queue_paused", "1 while the queue is paused", paused);
    r.register(
        "queue_oldest_queued_age_seconds",
        "Age of the queue's oldest ready job",
        oldest,
    );
    r.register(
        "queue_workers",
        "Live workers that serve the queue",
        queue_workers,
    );
    r.register(
        "queue_running",
        "Jobs of the queue running now (active leases), on a store with queue limits",
        running,
    );
    r.register(
        "queue_concurrency_limit",
        "The queue's concurrency cap, when it has one",
        cap,
    );
    r.register(
        "queue_rate_limit_per_second",
        "The queue's rate limit in jobs per second, when it has one",
        rate,
    );
    r.register(
        "queue_rate_tokens",
        "Rate tokens the queue has left now, when it has a rate limit",
        tokens,
    );
    r.register(
        "workers",
        "Registered workers by state (alive, lost)",
        by_state,
    );
    r.register(
        "worker_slots",
        "Slots (concurrency) of the live workers",
        slots_g,
    );
    r.register(
        "worker_slots_busy",
        "Jobs the live workers report running",
        busy_g,
    );
    r.register(
        "worker_slot_utilisation",
        "Busy slots over slots of the live workers (0 when there are none)",
        util,
    );
    Ok(r)
}
