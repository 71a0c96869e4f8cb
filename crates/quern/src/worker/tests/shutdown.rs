//! Graceful shutdown: finish what can finish, give back the rest without counting attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Env, handler};
use crate::{Backend as _, JobState, NewJob};

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_quick_jobs_and_releases_slow_ones() {
    let env = Env::new();
    let saw_cancel = Arc::new(AtomicU32::new(0));
    let s = saw_cancel.clone();
    let h = handler(move |ctx, p| {
        let s = s.clone();
        async move {
            let secs: u64 = p.decode().unwrap();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => Ok(None),
                _ = ctx.cancelled() => {
                    s.fetch_add(1, Ordering::SeqCst);
                    Err(crate::TaskError::retryable("interrupted"))
                }
            }
        }
    });
    let w = env
        .worker()
        .handler("sleep", h)
        .concurrency(4)
        .shutdown_grace(Duration::from_secs(10))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let quick = env
        .client
        .enqueue_job(NewJob::json("sleep", serde_json::json!(5)).unwrap())
        .await
        .unwrap()
        .id;
    let slow = env
        .client
        .enqueue_job(NewJob::json("sleep", serde_json::json!(3600)).unwrap())
        .await
        .unwrap()
        .id;
    for id in [quick, slow] {
        while env.client.get(id).await.unwrap().unwrap().state != JobState::Running {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let started = tokio::time::Instant::now();
    w.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(13),
        "took {took:?}"
    );

    let q = env.client.get(quick).await.unwrap().unwrap();
    assert_eq!(
        q.state,
        JobState::Succeeded,
        "finished within the grace period"
    );
    let s = env.client.get(slow).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Queued, "given back");
    assert_eq!(s.attempt, 0, "the interrupted attempt is not counted");
    assert!(
        s.errors.is_empty(),
        "an interruption is not an error: {:?}",
        s.errors
    );
    assert_eq!(
        saw_cancel.load(Ordering::SeqCst),
        1,
        "the handler was told to stop"
    );
    assert!(
        env.backend.worker_list().await.unwrap().is_empty(),
        "deregistered"
    );
}

#[tokio::test(start_paused = true)]
async fn prefetched_jobs_are_given_back_at_once() {
    let env = Env::new();
    // Input = milliseconds of work.
    let h = handler(|_, p: crate::Payload| async move {
        tokio::time::sleep(Duration::from_millis(p.decode().unwrap())).await;
        Ok(None)
    });
    let w = env
        .worker()
        .handler("k", h)
        .concurrency(1)
        .prefetch(2)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // Short jobs first, so the worker learns that prefetching is worth it.
    for _ in 0..3 {
        let id = env
            .client
            .enqueue_job(NewJob::json("k", serde_json::json!(1)).unwrap())
            .await
            .unwrap()
            .id;
        env.client.wait(id, Duration::from_secs(60)).await.unwrap();
    }
    let jobs = (0..3)
        .map(|_| NewJob::json("k", serde_json::json!(5000)).unwrap())
        .collect();
    let ids: Vec<_> = env
        .client
        .enqueue_batch(jobs, Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let running =
        |jobs: &[crate::Job]| jobs.iter().filter(|j| j.state == JobState::Running).count();
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(env.client.get(*id).await.unwrap().unwrap());
    }
    assert_eq!(
        running(&jobs),
        3,
        "one running and two prefetched, all leased"
    );
    w.shutdown().await.unwrap();
    let mut states = Vec::new();
    for id in &ids {
        let j = env.client.get(*id).await.unwrap().unwrap();
        states.push((j.state, j.attempt));
    }
    states.sort();
    assert_eq!(
        states,
        [
            (JobState::Queued, 0),
            (JobState::Queued, 0),
            (JobState::Succeeded, 1)
        ],
        "the running job finished within the grace period; the prefetched two were given back unstarted"
    );
}
