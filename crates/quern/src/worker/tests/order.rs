//! The order a worker starts the jobs it holds: most urgent first, even when a more urgent
//! job arrives after a prefetched backlog.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Env, LONG, handler, succeed_all};
use crate::{JobState, NewJob, Priority};

/// Handler start times and priorities, in start order.
type Starts = Arc<Mutex<Vec<(crate::Millis, u8)>>>;

fn recording(env: &Env, starts: &Starts, ms: u64) -> Arc<dyn super::Handler> {
    let clock = env.clock.clone();
    let starts = starts.clone();
    handler(move |ctx, _| {
        let clock = clock.clone();
        let starts = starts.clone();
        async move {
            let p = ctx.job().priority.get();
            starts.lock().unwrap().push((clock.now_ms(), p));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(None)
        }
    })
}

/// A worker with one slot, running 30 ms recording jobs, prefetching up to 8 once the first
/// has finished (a generous prefetch wait, so the backlog is the cap's).
async fn one_slot(env: &Env, starts: &Starts) -> crate::WorkerHandle {
    env.worker()
        .handler("k", recording(env, starts, 30))
        .concurrency(1)
        .prefetch(8)
        .prefetch_wait(Duration::from_secs(10))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

fn job(p: u8) -> NewJob {
    NewJob::json("k", serde_json::json!(p))
        .unwrap()
        .priority(Priority::new(p).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_critical_job_takes_the_next_slot_ahead_of_a_prefetched_backlog() {
    let env = Env::new();
    let starts: Starts = Arc::default();
    // One slot and a generous prefetch: once the first 30 ms job has finished, the worker
    // holds the running job plus up to 8 more of priority 9.
    let w = one_slot(&env, &starts).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(env.client.enqueue_job(job(9)).await.unwrap().id);
    }
    // Let the backlog build up: a few jobs done, the worker full.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = env
        .client
        .list(Default::default())
        .await
        .unwrap()
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .count();
    assert!(
        held > 2,
        "the worker should hold a prefetched backlog, holds {held}"
    );
    let critical_at = env.now();
    let critical = env.client.enqueue_job(job(0)).await.unwrap().id;
    let c = env.client.wait(critical, LONG).await.unwrap();
    assert_eq!(c.state, JobState::Succeeded);
    succeed_all(&env, ids).await;
    w.shutdown().await.unwrap();

    let starts = starts.lock().unwrap().clone();
    let (pos, (started, _)) = starts
        .iter()
        .enumerate()
        .find(|(_, (_, p))| *p == 0)
        .expect("the critical job ran");
    // It starts as soon as the running job's slot frees (at most one 30 ms job later), not
    // after the prefetched 9s.
    assert!(
        *started - critical_at <= 30,
        "critical job waited {} ms for a slot",
        *started - critical_at
    );
    let before = starts[..pos]
        .iter()
        .filter(|(t, _)| *t >= critical_at)
        .count();
    assert!(
        before <= 1,
        "{before} jobs started after the critical one was enqueued: {starts:?}"
    );
    // The prefetched jobs it displaced were given back, not lost: all 21 ran once.
    assert_eq!(starts.len(), 21, "{starts:?}");
}

#[tokio::test(start_paused = true)]
async fn prefetched_jobs_start_most_urgent_first() {
    let env = Env::new();
    let starts: Starts = Arc::default();
    // A first job finishes before the rest are enqueued, so the worker prefetches from then
    // on; the rest arrive in ten enqueues of two, least urgent first.
    let w = one_slot(&env, &starts).await;
    let first = env.client.enqueue_job(job(5)).await.unwrap().id;
    env.client.wait(first, LONG).await.unwrap();
    // A long job keeps the slot busy while the others arrive.
    let mut ids = Vec::new();
    for p in (0..10u8).rev() {
        for _ in 0..2 {
            ids.push(env.client.enqueue_job(job(p)).await.unwrap().id);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    succeed_all(&env, ids).await;
    w.shutdown().await.unwrap();
    let order: Vec<u8> = starts
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, p)| *p)
        .collect();
    // The first of the twenty (a 9) may start alone before the others arrive; after it,
    // strictly by priority.
    let rest = &order[1..];
    let mut sorted = rest.to_vec();
    sorted.sort();
    assert_eq!(rest, &sorted[..], "start order {order:?}");
}
