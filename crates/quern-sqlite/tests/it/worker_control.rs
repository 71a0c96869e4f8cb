//! Worker control on a real SQLite file: heartbeats under a short lease, cancellation of a
//! running job, graceful shutdown, per-queue caps, and the worker registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use quern::maintenance::RescuerConfig;
use quern::{Client, Context, Handler, JobState, NewJob, Payload, TaskError};

use crate::worker::{Gauge, WAIT, open, until, worker};

/// A raw handler from a closure, as executors and foreign payloads use.
struct FnHandler<F>(F);

#[quern::async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Context, Payload) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<Payload>, TaskError>> + Send + 'static,
{
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        (self.0)(ctx, payload).await
    }
}

fn handler<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(Context, Payload) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<Payload>, TaskError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

#[tokio::test]
async fn heartbeats_keep_jobs_longer_than_the_lease_alive() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let h = handler(|_, _| async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Ok(None)
    });
    // A 1 s lease and an eager rescuer: without heartbeats the job would be re-delivered.
    let w = worker(&b)
        .handler("long", h)
        .lease(Duration::from_secs(1))
        .rescuer(Some(RescuerConfig::with_interval(Duration::from_millis(
            100,
        ))))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = client
        .enqueue_job(NewJob::json("long", serde_json::json!(null)).unwrap())
        .await
        .unwrap();
    let job = client.wait(out.id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 1));
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_running_job_reaches_its_handler() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let h = handler(move |ctx: Context, _| {
        let tx = tx.clone();
        async move {
            tokio::select! {
                _ = ctx.cancelled() => {
                    tx.send(ctx.job_id()).unwrap();
                    // Whatever the handler reports now must not overwrite the cancel.
                    Err(TaskError::fatal("stopped"))
                }
                _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(None),
            }
        }
    });
    let w = worker(&b)
        .handler("wait", h)
        .lease(Duration::from_secs(1))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = client
        .enqueue_job(NewJob::json("wait", serde_json::json!(null)).unwrap())
        .await
        .unwrap();
    until(&client, out.id, |j| j.state == JobState::Running).await;
    let cancelled_at = std::time::Instant::now();
    client
        .cancel(out.id, Some("no longer needed".into()))
        .await
        .unwrap();
    let seen = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, out.id);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(3),
        "noticed at the next heartbeat (a third of the 1 s lease), took {:?}",
        cancelled_at.elapsed()
    );
    // Give the worker a moment to (wrongly) report an outcome, then check it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = client.get(out.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        job.errors
            .iter()
            .all(|e| e.kind != quern::model::ErrorKind::Fatal)
    );
    assert_eq!(w.running(), 0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_quick_jobs_and_gives_back_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let started = Arc::new(AtomicU32::new(0));
    let s = started.clone();
    // Input = milliseconds to work; a stubborn handler ignores cancellation.
    let h = handler(move |_ctx, p: Payload| {
        s.fetch_add(1, Ordering::SeqCst);
        async move {
            let ms: u64 = p.decode().unwrap();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(None)
        }
    });
    let w = worker(&b)
        .handler("work", h)
        .concurrency(2)
        .prefetch(1)
        .shutdown_grace(Duration::from_millis(700))
        .cancel_grace(Duration::from_millis(100))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let quick = client
        .enqueue_job(NewJob::json("work", serde_json::json!(300)).unwrap())
        .await
        .unwrap()
        .id;
    let stuck = client
        .enqueue_job(NewJob::json("work", serde_json::json!(60_000)).unwrap())
        .await
        .unwrap()
        .id;
    until(&client, quick, |j| j.state == JobState::Running).await;
    until(&client, stuck, |j| j.state == JobState::Running).await;
    // Both slots are busy, so this one is at most prefetched, never started.
    let waiting = client
        .enqueue_job(NewJob::json("work", serde_json::json!(1)).unwrap())
        .await
        .unwrap()
        .id;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let t = std::time::Instant::now();
    w.shutdown().await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "shutdown took {took:?}"
    );

    let q = client.get(quick).await.unwrap().unwrap();
    assert_eq!(
        q.state,
        JobState::Succeeded,
        "finished within the grace period"
    );
    for id in [stuck, waiting] {
        let j = client.get(id).await.unwrap().unwrap();
        assert_eq!(j.state, JobState::Queued, "given back: {j:?}");
        assert_eq!(j.attempt, 0, "the interrupted attempt is not counted");
        assert!(j.lease.is_none());
        assert!(j.errors.is_empty(), "{:?}", j.errors);
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "the third job never started"
    );
    assert!(b.worker_list().await.unwrap().is_empty(), "deregistered");

    // Another worker picks the given-back jobs up at once (no lease expiry to wait for).
    let h = handler(|_, _| async { Ok(None) });
    let w2 = worker(&b)
        .handler("work", h)
        .rescuer(None)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for id in [stuck, waiting] {
        let j = client.wait(id, WAIT).await.unwrap();
        assert_eq!((j.state, j.attempt), (JobState::Succeeded, 1));
    }
    w2.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_queue_caps_bound_one_queue_while_others_use_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let reports = Arc::new(Gauge::default());
    let others = Arc::new(Gauge::default());
    let (r, o) = (reports.clone(), others.clone());
    let h = handler(move |ctx: Context, _| {
        let g = if ctx.job().queue == "reports" {
            r.clone()
        } else {
            o.clone()
        };
        async move {
            g.enter();
            tokio::time::sleep(Duration::from_millis(60)).await;
            g.exit();
            Ok(None)
        }
    });
    let mut jobs = Vec::new();
    for i in 0..40 {
        let q = if i % 2 == 0 { "reports" } else { "default" };
        jobs.push(NewJob::json("k", serde_json::json!(i)).unwrap().queue(q));
    }
    let ids: Vec<_> = client
        .enqueue_batch(jobs, Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    let w = worker(&b)
        .handler("k", h)
        .queues([("reports", 10), ("default", 1)])
        .concurrency(8)
        .queue_concurrency("reports", 2)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for id in ids {
        assert_eq!(
            client.wait(id, WAIT).await.unwrap().state,
            JobState::Succeeded
        );
    }
    assert_eq!(reports.max(), 2, "the cap is reached and never exceeded");
    assert!(
        others.max() >= 4,
        "the other queue uses the free slots (max {})",
        others.max()
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn workers_register_and_report_what_they_run() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let h = handler(|_, _| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(None)
    });
    let w = worker(&b)
        .handler("k", h)
        .id("w-registry")
        .capabilities(["gpu"])
        .queues([("default", 1), ("gpu", 1)])
        .worker_heartbeat(Duration::from_millis(100))
        .shutdown_grace(Duration::from_millis(10))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = client
        .enqueue_job(NewJob::json("k", serde_json::json!(null)).unwrap())
        .await
        .unwrap();
    until(&client, out.id, |j| j.state == JobState::Running).await;
    let give_up = tokio::time::Instant::now() + WAIT;
    let me = loop {
        let list = b.worker_list().await.unwrap();
        assert_eq!(list.len(), 1);
        if list[0].running == 1 {
            break list[0].clone();
        }
        assert!(tokio::time::Instant::now() < give_up, "{list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(me.id, "w-registry");
    assert_eq!(me.capabilities, ["gpu"]);
    assert_eq!(me.queues, ["default", "gpu"]);
    assert_eq!(me.pid, std::process::id());
    let job = client.get(out.id).await.unwrap().unwrap();
    assert_eq!(job.lease.unwrap().worker_id, "w-registry");
    w.shutdown().await.unwrap();
    assert!(b.worker_list().await.unwrap().is_empty());
}
