//! The maintenance services a worker runs: the rescuer by default, the pruner on request.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Env, LONG, handler};
use crate::backend::{ClaimParams, QueueWeight};
use crate::maintenance::{PrunerConfig, RescuerConfig};
use crate::model::ErrorKind;
use crate::{Backend as _, JobState, NewJob};

#[tokio::test(start_paused = true)]
async fn the_worker_rescues_jobs_a_dead_worker_left_behind() {
    let env = Env::new();
    let out = env
        .client
        .enqueue_job(NewJob::json("k", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    // Another worker claims it and is never heard of again.
    let claimed = env
        .backend
        .job_claim(ClaimParams {
            worker_id: "gone".into(),
            queues: vec![QueueWeight::new("default", 1)],
            limit: 1,
            lease: Duration::from_secs(5),
            more_urgent_than: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let h = handler(|_, _| async { Ok(None) });
    let w = env
        .worker()
        .handler("k", h)
        .rescuer(Some(RescuerConfig::with_interval(Duration::from_secs(1))))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let start = env.now();
    let job = env.client.wait(out.id, LONG).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 2));
    assert_eq!(job.errors[0].kind, ErrorKind::LeaseExpired);
    assert!(
        job.finished_at.unwrap() - start <= 7_000,
        "within lease + interval"
    );
    w.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_worker_can_run_the_pruner() {
    let env = Env::new();
    let h = handler(|_, _| async { Ok(None) });
    let pruner = PrunerConfig {
        interval: Duration::from_secs(10),
        retention: BTreeMap::from([(JobState::Succeeded, Duration::from_secs(60))]),
        ..PrunerConfig::default()
    };
    let w = env
        .worker()
        .handler("k", h)
        .pruner(Some(pruner))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = env
        .client
        .enqueue_job(NewJob::json("k", serde_json::json!(1)).unwrap())
        .await
        .unwrap();
    env.client.wait(out.id, LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        env.client.get(out.id).await.unwrap().is_some(),
        "kept for its retention"
    );
    tokio::time::sleep(Duration::from_secs(45)).await;
    assert!(
        env.client.get(out.id).await.unwrap().is_none(),
        "pruned after it"
    );
    let leader = env
        .backend
        .leader_get("quern.pruner".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leader.holder, "test-worker");
    w.shutdown().await.unwrap();
    assert!(
        env.backend
            .leader_get("quern.pruner".into())
            .await
            .unwrap()
            .is_none(),
        "released"
    );
}
