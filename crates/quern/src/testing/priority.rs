//! Ordering within a queue: priority first (0 most urgent), then `run_at`, then id.

use super::*;
use crate::model::{JobId, Priority};

fn prio(n: u8) -> Priority {
    Priority::new(n).expect("0-9")
}

/// Claims jobs one at a time and returns their ids in claim order.
async fn drain_one_by_one(h: &Harness, queue: &str, n: usize) -> Vec<JobId> {
    let mut order = Vec::with_capacity(n);
    for _ in 0..n {
        order.push(h.claim_one(queue).await.job.id);
    }
    h.claim_none(queue, "all claimed").await;
    order
}

/// Jobs enqueued in mixed priority order are claimed most urgent first.
pub async fn more_urgent_first(h: Harness) {
    let levels = [5u8, 9, 0, 7, 2, 3, 8, 1, 6, 4];
    let jobs: Vec<_> = levels
        .iter()
        .map(|p| job_n("default", *p as usize).priority(prio(*p)))
        .collect();
    let by_level: std::collections::HashMap<JobId, u8> =
        jobs.iter().map(|j| (j.id, j.priority.get())).collect();
    h.enqueue_all(jobs).await;
    let order = drain_one_by_one(&h, "default", levels.len()).await;
    let got: Vec<u8> = order.iter().map(|id| by_level[id]).collect();
    assert_eq!(
        got,
        (0..10).collect::<Vec<u8>>(),
        "{}: priority order",
        h.case
    );
}

/// Equal priorities are FIFO by due time (`run_at`), and by id when due times are equal,
/// whatever order they were enqueued in.
pub async fn fifo_by_run_at_then_id(h: Harness) {
    let now = h.now();
    let ids = sorted_ids(6);
    // (id index, run_at offset): ids 0-2 share a run_at, 3-5 have distinct earlier ones.
    let plan = [
        (0usize, -1_000i64),
        (1, -1_000),
        (2, -1_000),
        (3, -3_000),
        (4, -5_000),
        (5, -2_000),
    ];
    // Enqueue in a scrambled order, one call each, so neither enqueue order nor batch order
    // can explain the result.
    for &k in &[2usize, 5, 0, 4, 1, 3] {
        let (i, off) = plan[k];
        h.enqueue(job_n("default", i).id(ids[i]).run_at(now + off))
            .await;
    }
    let order = drain_one_by_one(&h, "default", 6).await;
    let want = vec![ids[4], ids[3], ids[5], ids[0], ids[1], ids[2]];
    assert_eq!(order, want, "{}: run_at then id", h.case);
}

/// A critical job enqueued after normal ones is claimed before the remaining normal ones,
/// even though they are older.
pub async fn urgent_job_enqueued_later_jumps_ahead(h: Harness) {
    h.enqueue_many("default", 3).await;
    h.claim_one("default").await;
    h.advance(std::time::Duration::from_secs(10));
    let urgent = h
        .enqueue(job("urgent").priority(Priority::CRITICAL))
        .await
        .id;
    h.claim_id("default", urgent).await;
    // An old low-priority job still loses to a newer normal one.
    let low = h
        .enqueue(job("low").priority(Priority::LOW).run_at(h.now() - 60_000))
        .await
        .id;
    let c = h.claim_one("default").await;
    assert_ne!(c.job.id, low, "{}: priority beats age", h.case);
}

/// A multi-job claim takes the most urgent jobs.
pub async fn claim_batch_takes_the_most_urgent(h: Harness) {
    let jobs: Vec<_> = [9u8, 1, 7, 0, 5, 2]
        .iter()
        .map(|p| job_n("default", *p as usize).priority(prio(*p)))
        .collect();
    let urgent: std::collections::HashSet<JobId> = jobs
        .iter()
        .filter(|j| j.priority.get() <= 1)
        .map(|j| j.id)
        .collect();
    h.enqueue_all(jobs).await;
    let got: std::collections::HashSet<JobId> = h
        .claim("default", 2)
        .await
        .into_iter()
        .map(|c| c.job.id)
        .collect();
    assert_eq!(
        got, urgent,
        "{}: the two most urgent (priorities 0 and 1)",
        h.case
    );
}

/// A claim bounded by `more_urgent_than` takes only jobs strictly more urgent than the bound,
/// in the usual order, and leaves the rest claimable; `work_wait` with the same bound is the
/// same question (a worker holding less urgent jobs waits only for more urgent ones).
pub async fn bounded_claim_takes_only_more_urgent_jobs(h: Harness) {
    use crate::backend::{ClaimParams, QueueWeight, WaitParams};
    let levels = [5u8, 5, 2, 7, 0];
    let jobs: Vec<_> = levels
        .iter()
        .enumerate()
        .map(|(i, p)| job_n("default", i).priority(prio(*p)))
        .collect();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    h.enqueue_all(jobs).await;
    let bounded = |p: u8| ClaimParams {
        worker_id: WORKER.into(),
        queues: vec![QueueWeight::new("default", 1)],
        limit: 10,
        lease: LEASE,
        more_urgent_than: Some(prio(p)),
    };
    let got = h.backend.job_claim(bounded(5)).await.expect("claim");
    let got: Vec<JobId> = got.iter().map(|c| c.job.id).collect();
    assert_eq!(
        got,
        vec![ids[4], ids[2]],
        "{}: only 0 and 2, in order",
        h.case
    );
    let got = h.backend.job_claim(bounded(5)).await.expect("claim");
    assert!(
        got.is_empty(),
        "{}: nothing more urgent than 5 left",
        h.case
    );
    // Less urgent work does not end a bounded wait (it sleeps to its timeout). Spurious
    // wake-ups are allowed (the claims above were commits), so one of a few tries must
    // sleep through; a backend that ignores the bound returns at once every time.
    let mut slept = false;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        h.backend
            .work_wait(WaitParams {
                queues: vec!["default".into()],
                timeout: std::time::Duration::from_millis(300),
                more_urgent_than: Some(prio(5)),
            })
            .await
            .expect("wait");
        if started.elapsed() >= std::time::Duration::from_millis(250) {
            slept = true;
            break;
        }
    }
    assert!(
        slept,
        "{}: a wait bounded to priority < 5 kept returning with only 5s and a 7 ready",
        h.case
    );
    // ...but more urgent work does, at once.
    let urgent = job_n("default", 9).priority(prio(1));
    let urgent_id = urgent.id;
    h.enqueue(urgent).await;
    let started = std::time::Instant::now();
    h.backend
        .work_wait(WaitParams {
            queues: vec!["default".into()],
            timeout: std::time::Duration::from_secs(120),
            more_urgent_than: Some(prio(5)),
        })
        .await
        .expect("wait");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{}: a ready priority-1 job did not end a wait bounded to < 5",
        h.case
    );
    let got = h.backend.job_claim(bounded(5)).await.expect("claim");
    assert_eq!(got.len(), 1, "{}", h.case);
    assert_eq!(got[0].job.id, urgent_id, "{}", h.case);
    // Without a bound, the rest in the usual order.
    let order = drain_one_by_one(&h, "default", 3).await;
    assert_eq!(
        order,
        vec![ids[0], ids[1], ids[3]],
        "{}: 5, 5, then 7",
        h.case
    );
}
