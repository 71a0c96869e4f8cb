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
