//! `work_wait`: returns by its timeout at the latest, and promptly when work arrives in the
//! same process. These use real (short) timeouts, since the wait is on real time.

use std::time::{Duration, Instant};

use super::*;
use crate::backend::WaitParams;

/// With nothing to do, the wait returns (it never blocks past its timeout).
pub async fn wait_returns_after_timeout(h: Harness) {
    let started = Instant::now();
    h.backend
        .work_wait(WaitParams {
            queues: vec!["default".into()],
            timeout: Duration::from_millis(20),
            more_urgent_than: None,
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}: wait overran its 20 ms timeout: {:?}",
        h.case,
        started.elapsed()
    );
}

/// A waiter with a long timeout wakes when a job is enqueued into its queue.
pub async fn enqueue_wakes_a_waiter(h: Harness) {
    let backend = h.backend.clone();
    let waiter = tokio::spawn(async move {
        backend
            .work_wait(WaitParams {
                queues: vec!["default".into()],
                timeout: Duration::from_secs(120),
                more_urgent_than: None,
            })
            .await
    });
    // The waiter may not be waiting yet when the first job lands, and a backend may only
    // wake waiters that are already waiting; so keep enqueuing (one job per 200 ms) until it
    // wakes. A backend that only wakes on its 120 s timeout fails.
    let mut waiter = waiter;
    for _ in 0..100 {
        h.enqueue(job("wake")).await;
        if let Ok(res) = tokio::time::timeout(Duration::from_millis(200), &mut waiter).await {
            res.expect("waiter task").unwrap();
            return;
        }
    }
    panic!(
        "{}: work_wait did not wake within 20 s of enqueues (its timeout was 120 s)",
        h.case
    );
}
