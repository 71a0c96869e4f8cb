//! Heartbeats, lost leases and the worker record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Env, LONG, handler};
use crate::{Backend as _, JobState, NewJob, TaskError};

#[tokio::test(start_paused = true)]
async fn heartbeats_are_batched_and_keep_long_jobs_alive() {
    let env = Env::new();
    let h = handler(|_, _| async {
        tokio::time::sleep(Duration::from_secs(95)).await;
        Ok(None)
    });
    let w = env
        .worker()
        .handler("long", h)
        .lease(Duration::from_secs(30))
        .concurrency(5)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let out = env
            .client
            .enqueue_job(NewJob::json("long", serde_json::json!(i)).unwrap())
            .await
            .unwrap();
        ids.push(out.id);
    }
    // Past three leases' worth of time: without heartbeats these would have expired.
    tokio::time::sleep(Duration::from_secs(91)).await;
    for id in &ids {
        let j = env.client.get(*id).await.unwrap().unwrap();
        assert_eq!(j.state, JobState::Running);
        let left = j.lease.unwrap().expires_at - env.now();
        assert!(left > 10_000, "lease has {left} ms left");
    }
    let calls = env.backend.calls.heartbeat.load(Ordering::SeqCst);
    let items = env.backend.calls.heartbeat_items.load(Ordering::SeqCst);
    // One call per 10 s tick for all five jobs together.
    assert!((8..=10).contains(&calls), "{calls} heartbeat calls");
    assert_eq!(items, calls * 5, "every call carries every lease");
    for id in ids {
        let j = env.client.wait(id, LONG).await.unwrap();
        assert_eq!((j.state, j.attempt), (JobState::Succeeded, 1));
    }
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_running_job_reaches_the_handler_and_discards_its_outcome() {
    let env = Env::new();
    let saw = Arc::new(AtomicU32::new(0));
    let s = saw.clone();
    let h = handler(move |ctx, _| {
        let s = s.clone();
        async move {
            tokio::select! {
                _ = ctx.cancelled() => {
                    s.fetch_add(1, Ordering::SeqCst);
                    // Whatever it returns now must not overwrite the cancellation.
                    Err(TaskError::fatal("stopped"))
                }
                _ = tokio::time::sleep(LONG) => Ok(None),
            }
        }
    });
    let w = env
        .worker()
        .handler("c", h)
        .lease(Duration::from_secs(3))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = env
        .client
        .enqueue_job(NewJob::json("c", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    while env.client.get(out.id).await.unwrap().unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    env.client
        .cancel(out.id, Some("operator".into()))
        .await
        .unwrap();
    // The next heartbeat (within a third of the lease) reports the loss.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(saw.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let j = env.client.get(out.id).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    assert!(
        j.errors.is_empty(),
        "the handler's outcome was discarded: {:?}",
        j.errors
    );
    assert_eq!(w.running(), 0, "the slot was freed");
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_worker_registers_heartbeats_and_deregisters() {
    let env = Env::new();
    let h = handler(|_, _| async {
        tokio::time::sleep(LONG).await;
        Ok(None)
    });
    let w = env
        .worker()
        .handler("k", h)
        .queues([("a", 2), ("b", 1)])
        .capabilities(["gpu"])
        .worker_heartbeat(Duration::from_secs(5))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let list = env.backend.worker_list().await.unwrap();
    assert_eq!(list.len(), 1);
    let me = &list[0];
    assert_eq!(
        (me.id.as_str(), me.queues.clone()),
        ("test-worker", vec!["a".into(), "b".into()])
    );
    assert_eq!(me.capabilities, vec!["gpu".to_string()]);
    env.client
        .enqueue_job(NewJob::json("k", serde_json::json!(1)).unwrap().queue("a"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let me = env.backend.worker_list().await.unwrap().remove(0);
    assert_eq!(me.running, 1);
    assert!(env.now() - me.last_seen_at <= 5_000);
    // A lost record (a store restarted without persistence) is registered again.
    env.backend
        .worker_deregister("test-worker".into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = env.backend.worker_list().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].started_at, me.started_at,
        "the original start time is kept"
    );
    w.shutdown().await.unwrap();
    assert!(env.backend.worker_list().await.unwrap().is_empty());
}
