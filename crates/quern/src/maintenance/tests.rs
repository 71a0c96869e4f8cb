//! Maintenance services on the in-memory backend with tokio's clock paused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::backend::{Backend, ClaimParams, CompleteParams, Completion, QueueWeight};
use crate::model::ErrorKind;
use crate::test_util::mem::MemBackend;
use crate::{Client, JobId, JobState, NewJob, SharedClock, TokioClock};

fn setup() -> (Arc<MemBackend>, Client, SharedClock) {
    let clock: SharedClock = Arc::new(TokioClock::new());
    let backend = Arc::new(MemBackend::new(clock.clone()));
    let client = Client::new(backend.clone());
    (backend, client, clock)
}

async fn enqueue_and_claim(
    b: &MemBackend,
    c: &Client,
    n: usize,
    max_attempts: u32,
) -> Vec<crate::LeaseToken> {
    for i in 0..n {
        let job = NewJob::json("k", serde_json::json!(i))
            .unwrap()
            .max_attempts(max_attempts);
        c.enqueue_job(job).await.unwrap();
    }
    b.job_claim(ClaimParams {
        worker_id: "crashed".into(),
        queues: vec![QueueWeight::new("default", 1)],
        limit: n,
        lease: Duration::from_secs(1),
        more_urgent_than: None,
    })
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.token)
    .collect()
}

#[tokio::test(start_paused = true)]
async fn the_rescuer_requeues_expired_leases_and_kills_last_attempts() {
    let (b, c, clock) = setup();
    let again = enqueue_and_claim(&b, &c, 3, 5).await;
    let last = enqueue_and_claim(&b, &c, 1, 1).await;
    let rescuer = Rescuer::new(
        b.clone(),
        clock,
        RescuerConfig {
            batch_limit: 2,
            ..RescuerConfig::default()
        },
    );
    assert_eq!(
        rescuer.run_once().await.unwrap(),
        Default::default(),
        "leases still valid"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = rescuer.run_once().await.unwrap();
    let mut requeued = report.requeued.clone();
    requeued.sort();
    let mut expected: Vec<JobId> = again.iter().map(|t| t.job_id).collect();
    expected.sort();
    assert_eq!(requeued, expected, "several batches in one pass");
    assert_eq!(report.dead, vec![last[0].job_id]);
    let j = c.get(again[0].job_id).await.unwrap().unwrap();
    assert_eq!((j.state, j.attempt), (JobState::Queued, 1));
    assert_eq!(j.errors[0].kind, ErrorKind::LeaseExpired);
}

#[tokio::test(start_paused = true)]
async fn the_rescuer_loop_runs_on_its_interval_until_stopped() {
    let (b, c, clock) = setup();
    let t = enqueue_and_claim(&b, &c, 1, 5).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Rescuer::new(
            b.clone(),
            clock,
            RescuerConfig::with_interval(Duration::from_secs(2)),
        )
        .run(stop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        c.get(t[0].job_id).await.unwrap().unwrap().state,
        JobState::Running
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        c.get(t[0].job_id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_pruner_deletes_by_state_and_age() {
    let (b, c, clock) = setup();
    let old = enqueue_and_claim(&b, &c, 2, 5).await;
    b.job_complete(CompleteParams {
        items: old
            .iter()
            .map(|t| Completion {
                token: t.clone(),
                result: Some(crate::Payload::null()),
                result_ttl: Some(Duration::from_secs(60)),
                started_at: None,
            })
            .collect(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(7200)).await;
    let fresh = enqueue_and_claim(&b, &c, 1, 5).await;
    b.job_complete(CompleteParams {
        items: vec![Completion {
            token: fresh[0].clone(),
            result: None,
            result_ttl: None,
            started_at: None,
        }],
    })
    .await
    .unwrap();
    let cancelled = c
        .enqueue_job(NewJob::json("k", serde_json::json!(0)).unwrap())
        .await
        .unwrap()
        .id;
    c.cancel(cancelled, None).await.unwrap();

    let mut cfg = PrunerConfig::default();
    cfg.retention
        .insert(JobState::Succeeded, Duration::from_secs(3600));
    cfg.retention.insert(JobState::Cancelled, Duration::ZERO);
    let pruner = Pruner::new(b.clone(), clock, cfg);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let r = pruner.run_once().await.unwrap();
    assert_eq!(r.jobs_deleted, 3, "two old successes and the cancelled job");
    assert!(c.get(old[0].job_id).await.unwrap().is_none());
    assert!(
        c.get(fresh[0].job_id).await.unwrap().is_some(),
        "younger than its retention"
    );
    assert!(c.get(cancelled).await.unwrap().is_none());

    let mut bad = PrunerConfig::default();
    bad.retention.insert(JobState::Running, Duration::ZERO);
    assert!(bad.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn one_leader_at_a_time_and_a_quick_handover() {
    let (b, _, _) = setup();
    let active = Arc::new(AtomicUsize::new(0));
    let max_active = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(AtomicUsize::new(0));
    let spawn = |holder: &str, stop: CancellationToken| {
        let (a, m, s) = (active.clone(), max_active.clone(), starts.clone());
        let cfg = LeaderConfig {
            ttl: Duration::from_secs(3),
            ..LeaderConfig::new("singleton", holder)
        };
        tokio::spawn(run_as_leader(b.clone(), cfg, stop, move |term| {
            let (a, m, s) = (a.clone(), m.clone(), s.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                let n = a.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(n, Ordering::SeqCst);
                term.cancelled().await;
                a.fetch_sub(1, Ordering::SeqCst);
            }
        }))
    };
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let ta = spawn("a", stop_a.clone());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let tb = spawn("b", stop_b.clone());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "b never took over from a live leader"
    );
    assert_eq!(
        b.leader_get("singleton".into())
            .await
            .unwrap()
            .unwrap()
            .holder,
        "a"
    );

    stop_a.cancel();
    ta.await.unwrap();
    // a released the lease on the way out, so b takes over within one retry period.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(
        b.leader_get("singleton".into())
            .await
            .unwrap()
            .unwrap()
            .holder,
        "b"
    );
    assert_eq!(max_active.load(Ordering::SeqCst), 1);
    stop_b.cancel();
    tb.await.unwrap();
    assert!(b.leader_get("singleton".into()).await.unwrap().is_none());
}

/// The supervisor starts what is configured, in order (the workflow monitor only on a
/// backend with workflows), and stop gives the singletons' leader leases back.
#[tokio::test(start_paused = true)]
async fn the_supervisor_starts_services_in_order_and_stop_releases_leases() {
    let (b, _c, clock) = setup();
    let m = Maintenance::start(
        b.clone(),
        clock,
        "node-1",
        MaintenanceConfig {
            rescuer: Some(RescuerConfig::default()),
            scheduler: Some(SchedulerConfig::default()),
            pruner: Some(PrunerConfig::default()),
            workflow_monitor: Some(WorkflowMonitorConfig::default()),
            store_upkeep: Some(crate::maintenance::StoreUpkeepConfig {
                analyze_every: Some(Duration::from_secs(3600)),
                checkpoint_every: None,
            }),
        },
    );
    // The memory double has no workflows and no schedules, so the monitor and the
    // scheduler are left out.
    assert_eq!(m.services(), vec!["rescuer", "pruner", "store upkeep"]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let held = b.leader_get(Pruner::LEADER_NAME.into()).await.unwrap();
    assert_eq!(held.map(|l| l.holder), Some("node-1".to_string()));
    m.stop().await;
    assert_eq!(
        b.leader_get(Pruner::LEADER_NAME.into()).await.unwrap(),
        None,
        "the pruner's lease is given back on stop"
    );
    let none = Maintenance::start(
        b,
        Arc::new(TokioClock::new()),
        "n",
        MaintenanceConfig::default(),
    );
    assert!(none.services().is_empty());
    none.stop().await;
}
