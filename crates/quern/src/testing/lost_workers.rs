//! Lost workers: a worker whose registry heartbeat stopped for three of its stated intervals
//! is lost; `lease_rescue` with its id re-delivers the jobs it holds before their leases
//! expire, and the core [`Rescuer`] finds lost workers, rescues
//! their jobs, leaves live workers alone and forgets lost ones after its retention.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::backend::WorkerState::{Alive, Lost};
use crate::backend::{
    ClaimParams, ClaimedJob, QueueWeight, RescueParams, RescueReport, WorkerHeartbeatParams,
    WorkerInfo, WorkerState,
};
use crate::maintenance::{Rescuer, RescuerConfig};
use crate::model::{ErrorKind, JobState};
use crate::{Error, SharedClock};

/// The heartbeat interval the cases' workers state.
const BEAT: Duration = Duration::from_secs(1);

fn worker(h: &Harness, id: &str, interval: Option<Duration>) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        hostname: "host-1".into(),
        pid: 7,
        queues: vec!["default".into()],
        capabilities: Vec::new(),
        concurrency: 4,
        started_at: h.now(),
        last_seen_at: h.now(),
        running: 0,
        heartbeat_interval_ms: interval.map(|d| d.as_millis() as u64),
    }
}

async fn register(h: &Harness, id: &str) {
    h.backend
        .worker_register(worker(h, id, Some(BEAT)))
        .await
        .unwrap_or_else(|e| panic!("{}: register {id}: {e}", h.case));
}

async fn beat(h: &Harness, id: &str) {
    h.backend
        .worker_heartbeat(WorkerHeartbeatParams {
            id: id.into(),
            running: 1,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: heartbeat {id}: {e}", h.case));
}

/// Enqueues one job (with `max_attempts`) and claims it as worker `id` with the suite's lease.
async fn claim_as(h: &Harness, id: &str, max_attempts: u32) -> ClaimedJob {
    let job_id = h.enqueue(job("held").max_attempts(max_attempts)).await.id;
    let mut got = h
        .backend
        .job_claim(ClaimParams {
            worker_id: id.into(),
            queues: vec![QueueWeight::new("default", 1)],
            limit: 1,
            lease: LEASE,
            more_urgent_than: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: claim as {id}: {e}", h.case));
    assert_eq!(got.len(), 1, "{}: claimed as {id}", h.case);
    let c = got.remove(0);
    assert_eq!(c.job.id, job_id, "{}", h.case);
    c
}

async fn state_of(h: &Harness, id: &str) -> Option<WorkerState> {
    let now = h.now();
    h.backend
        .worker_list()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.id == id)
        .map(|w| w.state(now))
}

/// Asserts what the registry says of worker `id` now: `Alive`, `Lost`, or `None` for no
/// record. The cases check a worker's state after each step, so the lookup and the message
/// are written once.
async fn assert_worker(h: &Harness, id: &str, want: impl Into<Option<WorkerState>>, why: &str) {
    let want = want.into();
    assert_eq!(
        state_of(h, id).await,
        want,
        "{}: {why}: worker {id}",
        h.case
    );
}

/// `lease_rescue` naming `lost` as the lost workers, with room for every job the cases hold.
async fn rescue_lost(h: &Harness, lost: &str) -> RescueReport {
    h.backend
        .lease_rescue(RescueParams {
            limit: 100,
            lost_workers: vec![lost.into()],
        })
        .await
        .unwrap_or_else(|e| panic!("{}: rescue {lost}: {e}", h.case))
}

fn rescuer(h: &Harness) -> Rescuer {
    let clock: SharedClock = h.clock.clone();
    Rescuer::new(Arc::clone(&h.backend), clock, RescuerConfig::default())
}

/// The stated interval is stored with the record; the worker is alive up to three intervals
/// after its last heartbeat and lost after that, alive again once it heartbeats. A record
/// without an interval is never judged lost.
pub async fn lost_after_three_missed_heartbeats(h: Harness) {
    register(&h, "w1").await;
    h.backend
        .worker_register(worker(&h, "legacy", None))
        .await
        .unwrap();
    let listed = h.backend.worker_list().await.unwrap();
    let w1 = listed.iter().find(|w| w.id == "w1").expect("w1 listed");
    assert_eq!(
        w1.heartbeat_interval_ms,
        Some(1000),
        "{}: interval stored",
        h.case
    );
    assert_eq!(w1.lost_after(), Some(3 * BEAT), "{}", h.case);

    h.advance(3 * BEAT);
    assert_worker(&h, "w1", Alive, "3 beats").await;
    h.advance(Duration::from_millis(1));
    assert_worker(&h, "w1", Lost, "past 3 beats").await;
    beat(&h, "w1").await;
    assert_worker(&h, "w1", Alive, "seen again").await;
    h.advance(Duration::from_secs(86_400));
    assert_worker(&h, "legacy", Alive, "unknown interval is never lost").await;
}

/// `lease_rescue` with a lost worker's id re-delivers the jobs it holds although their leases
/// are still valid: queued with the attempt counted and a `worker_lost` entry, or dead on the
/// last attempt. Leases of other workers stay.
pub async fn lost_worker_leases_are_rescued_early(h: Harness) {
    let held = claim_as(&h, "gone", 5).await;
    let last = claim_as(&h, "gone", 1).await;
    let other = claim_as(&h, "alive", 5).await;
    h.advance(Duration::from_secs(5));
    let r = rescue_lost(&h, "gone").await;
    assert_eq!(r.requeued, vec![held.job.id], "{}: requeued {r:?}", h.case);
    assert_eq!(r.dead, vec![last.job.id], "{}: dead {r:?}", h.case);
    let j = h.get(held.job.id).await;
    assert_eq!((j.state, j.attempt), (JobState::Queued, 1), "{}", h.case);
    assert!(j.lease.is_none(), "{}: lease cleared", h.case);
    let e = j.errors.last().expect("an error record");
    assert_eq!(
        (e.kind, e.attempt),
        (ErrorKind::WorkerLost, 1),
        "{}",
        h.case
    );
    h.assert_state(last.job.id, JobState::Dead, "last attempt")
        .await;
    h.assert_state(other.job.id, JobState::Running, "another worker's job")
        .await;
    assert!(
        h.heartbeat(&other.token).await.is_ok(),
        "{}: its lease holds",
        h.case
    );
    expect_err!(
        h,
        h.heartbeat(&held.token).await,
        Error::LeaseLost { .. },
        "stale token"
    );
    let again = h.claim_id("default", held.job.id).await;
    assert_eq!(again.job.attempt, 2, "{}: next attempt", h.case);
    let r = rescue_lost(&h, "gone").await;
    assert_eq!(
        r.requeued,
        Vec::new(),
        "{}: the new claim is the suite's worker's, not the lost one's",
        h.case
    );
}

/// The rescuer finds a worker lost by its stated interval and re-delivers its jobs long
/// before the lease would expire; a worker that keeps heartbeating, and its job, are left
/// alone.
pub async fn rescuer_rescues_lost_workers_and_spares_live_ones(h: Harness) {
    register(&h, "dead").await;
    register(&h, "live").await;
    let orphan = claim_as(&h, "dead", 5).await;
    let kept = claim_as(&h, "live", 5).await;
    let r = rescuer(&h).run_once().await.unwrap();
    assert!(
        r.lost_workers.is_empty() && r.requeued.is_empty(),
        "{}: {r:?}",
        h.case
    );
    for _ in 0..4 {
        h.advance(BEAT);
        beat(&h, "live").await;
    }
    assert!(
        h.now() - orphan.job.claimed_at.unwrap() < ms(LEASE),
        "{}: lease valid",
        h.case
    );
    let r = rescuer(&h).run_once().await.unwrap();
    assert_eq!(
        r.lost_workers,
        vec!["dead".to_string()],
        "{}: {r:?}",
        h.case
    );
    assert_eq!(r.requeued, vec![orphan.job.id], "{}: {r:?}", h.case);
    h.assert_state(kept.job.id, JobState::Running, "the live worker's job")
        .await;
    assert_worker(&h, "live", Alive, "it keeps heartbeating").await;
    assert_worker(&h, "dead", Lost, "lost until its retention passes").await;
}

/// A lost worker's record is removed once it has not been seen for the rescuer's retention
/// (1 h by default); a live one stays.
pub async fn lost_workers_are_forgotten_after_retention(h: Harness) {
    register(&h, "dead").await;
    register(&h, "live").await;
    h.advance(Duration::from_secs(3599));
    beat(&h, "live").await;
    let r = rescuer(&h).run_once().await.unwrap();
    assert!(
        r.forgotten_workers.is_empty(),
        "{}: too early: {r:?}",
        h.case
    );
    assert_worker(&h, "dead", Lost, "not seen for less than the retention").await;
    h.advance(Duration::from_secs(1));
    let r = rescuer(&h).run_once().await.unwrap();
    assert_eq!(
        r.forgotten_workers,
        vec!["dead".to_string()],
        "{}: {r:?}",
        h.case
    );
    assert_worker(&h, "dead", None, "removed").await;
    assert_worker(&h, "live", Alive, "it keeps heartbeating").await;
}
