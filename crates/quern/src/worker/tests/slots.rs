//! Concurrency, prefetch, per-queue caps and acknowledgement batching.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Env, Gauge, handler, succeed_all};
use crate::{JobState, NewJob};

#[tokio::test(start_paused = true)]
async fn never_runs_or_holds_more_than_allowed() {
    let env = Env::new();
    let g = Arc::new(Gauge::default());
    let g2 = g.clone();
    let h = handler(move |_, _| {
        let g = g2.clone();
        async move {
            g.enter();
            tokio::time::sleep(Duration::from_millis(100)).await;
            g.exit();
            Ok(None)
        }
    });
    let w = env
        .worker()
        .handler("k", h)
        .concurrency(3)
        .prefetch(0)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            env.client
                .enqueue_job(NewJob::json("k", serde_json::json!(i)).unwrap())
                .await
                .unwrap()
                .id,
        );
    }
    // Sample how many leases the worker holds while draining: never more than it can run.
    let mut max_leased = 0;
    for _ in 0..30 {
        let page = env.client.list(Default::default()).await.unwrap();
        let leased = page
            .jobs
            .iter()
            .filter(|j| j.state == JobState::Running)
            .count();
        max_leased = max_leased.max(leased);
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    succeed_all(&env, ids).await;
    assert_eq!(g.max(), 3);
    assert!(
        max_leased <= 3,
        "held {max_leased} leases with concurrency 3 and no prefetch"
    );
    w.shutdown().await.unwrap();
}

/// Drains `n` jobs of `ms` each at concurrency 4 with up to 8 prefetched; returns the most
/// leases held at once (sampled every 7 ms).
async fn max_leases_held(ms: u64, n: usize) -> usize {
    let env = Env::new();
    let h = handler(move |_, _| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(None)
    });
    let w = env
        .worker()
        .handler("k", h)
        .concurrency(4)
        .prefetch(8)
        .prefetch_wait(Duration::from_millis(50))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let jobs = (0..n)
        .map(|i| NewJob::json("k", serde_json::json!(i)).unwrap())
        .collect();
    let ids: Vec<_> = env
        .client
        .enqueue_batch(jobs, Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    let mut max_leased = 0;
    let filter = crate::backend::ListParams {
        filter: crate::backend::JobFilter {
            state: Some(JobState::Running),
            ..Default::default()
        },
        ..Default::default()
    };
    while env.client.get(ids[n - 1]).await.unwrap().unwrap().state != JobState::Succeeded {
        let leased = env.client.list(filter.clone()).await.unwrap().jobs.len();
        max_leased = max_leased.max(leased);
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    succeed_all(&env, ids).await;
    w.shutdown().await.unwrap();
    max_leased
}

#[tokio::test(start_paused = true)]
async fn prefetch_adapts_to_job_length() {
    // 2 ms jobs: 4 × 50 ms / 2 ms = 100 would fit, so the full 8 are prefetched.
    assert_eq!(max_leases_held(2, 200).await, 12);
    // 100 ms jobs: 4 × 50 / 100 = 2 prefetched at most.
    assert_eq!(max_leases_held(100, 40).await, 6);
    // 1 s jobs: none; the worker never holds a lease it cannot start now.
    assert_eq!(max_leases_held(1000, 12).await, 4);
}

#[tokio::test(start_paused = true)]
async fn per_queue_caps_hold_while_other_queues_use_the_rest() {
    let env = Env::new();
    let capped = Arc::new(Gauge::default());
    let free = Arc::new(Gauge::default());
    let (c, f) = (capped.clone(), free.clone());
    let h = handler(move |ctx, _| {
        let g = if ctx.job().queue == "reports" {
            c.clone()
        } else {
            f.clone()
        };
        async move {
            g.enter();
            tokio::time::sleep(Duration::from_millis(50)).await;
            g.exit();
            Ok(None)
        }
    });
    let w = env
        .worker()
        .handler("k", h)
        .queues([("reports", 5), ("default", 1)])
        .concurrency(8)
        .queue_concurrency("reports", 2)
        .prefetch(4)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        let q = if i % 2 == 0 { "reports" } else { "default" };
        let job = NewJob::json("k", serde_json::json!(i)).unwrap().queue(q);
        ids.push(env.client.enqueue_job(job).await.unwrap().id);
    }
    succeed_all(&env, ids).await;
    assert_eq!(capped.max(), 2, "the cap is reached and never exceeded");
    assert!(
        free.max() >= 5,
        "other queues use the remaining slots (max {})",
        free.max()
    );
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_are_batched() {
    let env = Env::new();
    let h = handler(|_, _| async { Ok(None) });
    let w = env
        .worker()
        .handler("k", h)
        .concurrency(16)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let jobs: Vec<_> = (0..500)
        .map(|i| NewJob::json("k", serde_json::json!(i)).unwrap())
        .collect();
    let ids: Vec<_> = env
        .client
        .enqueue_batch(jobs, Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    succeed_all(&env, ids).await;
    let calls = env.backend.calls.complete.load(Ordering::SeqCst);
    let items = env.backend.calls.complete_items.load(Ordering::SeqCst);
    assert_eq!(items, 500);
    assert!(calls < 100, "{calls} complete calls for 500 jobs");
    let claims = env.backend.calls.claim.load(Ordering::SeqCst);
    assert!(claims < 100, "{claims} claim calls for 500 jobs");
    w.shutdown().await.unwrap();
}

#[test]
fn bad_settings_are_rejected() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let env = Env::new();
        let h = || handler(|_, _| async { Ok(None) });
        let err = |b: crate::WorkerBuilder| b.build().unwrap_err().to_string();
        assert!(err(env.worker()).contains("at least one registered handler"));
        assert!(err(env.worker().handler("k", h()).handler("k", h())).contains("registered twice"));
        assert!(
            err(env.worker().handler("k", h()).queues([("bad queue", 1)])).contains("queue name")
        );
        assert!(err(env.worker().handler("k", h()).queues([("a", 0)])).contains("weight 0"));
        assert!(err(env.worker().handler("k", h()).concurrency(0)).contains("concurrency"));
        assert!(
            err(env.worker().handler("k", h()).queue_concurrency("zzz", 1))
                .contains("does not claim")
        );
        assert!(
            err(env
                .worker()
                .handler("k", h())
                .lease(Duration::from_millis(5)))
            .contains("too short")
        );
    });
}
