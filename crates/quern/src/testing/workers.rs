//! Worker registry: register, heartbeat, list (most recently seen first), deregister.

use std::time::Duration;

use super::*;
use crate::backend::{WorkerHeartbeatParams, WorkerInfo};

fn info(h: &Harness, id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        hostname: "host-1".into(),
        pid: 4242,
        queues: vec!["default".into(), "mail".into()],
        capabilities: vec!["gpu".into()],
        concurrency: 8,
        started_at: h.now(),
        last_seen_at: h.now(),
        running: 0,
        heartbeat_interval_ms: Some(10_000),
    }
}

async fn list(h: &Harness) -> Vec<WorkerInfo> {
    h.backend.worker_list().await.unwrap()
}

/// A registered worker is listed exactly as registered; deregistered, it is gone.
pub async fn register_list_deregister(h: Harness) {
    assert!(list(&h).await.is_empty(), "{}: none at first", h.case);
    let w = info(&h, "w1");
    h.backend.worker_register(w.clone()).await.unwrap();
    assert_eq!(list(&h).await, vec![w], "{}", h.case);
    h.backend.worker_deregister("w1".into()).await.unwrap();
    assert!(list(&h).await.is_empty(), "{}: deregistered", h.case);
}

/// A heartbeat records the time (from the clock) and the running count.
pub async fn heartbeat_updates_last_seen(h: Harness) {
    let w = info(&h, "w1");
    h.backend.worker_register(w.clone()).await.unwrap();
    h.advance(Duration::from_secs(5));
    h.backend
        .worker_heartbeat(WorkerHeartbeatParams {
            id: "w1".into(),
            running: 3,
        })
        .await
        .unwrap();
    let got = list(&h).await;
    assert_eq!(got.len(), 1, "{}", h.case);
    assert_eq!(got[0].last_seen_at, h.now(), "{}: last seen now", h.case);
    assert_eq!(got[0].running, 3, "{}", h.case);
    assert_eq!(got[0].started_at, w.started_at, "{}: start kept", h.case);
    assert_eq!(got[0].queues, w.queues, "{}", h.case);
}

/// The list is ordered by last heartbeat, newest first.
pub async fn list_is_most_recent_first(h: Harness) {
    h.backend.worker_register(info(&h, "w1")).await.unwrap();
    h.advance(Duration::from_secs(1));
    h.backend.worker_register(info(&h, "w2")).await.unwrap();
    h.advance(Duration::from_secs(1));
    h.backend.worker_register(info(&h, "w3")).await.unwrap();
    let ids = |v: Vec<WorkerInfo>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(ids(list(&h).await), ["w3", "w2", "w1"], "{}", h.case);
    h.advance(Duration::from_secs(1));
    h.backend
        .worker_heartbeat(WorkerHeartbeatParams {
            id: "w1".into(),
            running: 1,
        })
        .await
        .unwrap();
    assert_eq!(ids(list(&h).await), ["w1", "w3", "w2"], "{}", h.case);
}

/// Registering an id again replaces its record.
pub async fn re_register_replaces(h: Harness) {
    h.backend.worker_register(info(&h, "w1")).await.unwrap();
    h.advance(Duration::from_secs(1));
    let mut w = info(&h, "w1");
    w.queues = vec!["reports".into()];
    w.concurrency = 2;
    h.backend.worker_register(w.clone()).await.unwrap();
    assert_eq!(
        list(&h).await,
        vec![w],
        "{}: one record, the new one",
        h.case
    );
}

/// A heartbeat for a worker that is not registered (removed as lost, or never registered)
/// is refused, so the worker knows to register again.
pub async fn heartbeat_of_unknown_worker_is_refused(h: Harness) {
    let res = h
        .backend
        .worker_heartbeat(WorkerHeartbeatParams {
            id: "nobody".into(),
            running: 0,
        })
        .await;
    expect_err!(h, res, e if is_input_error(&e), "unknown worker");
    assert!(list(&h).await.is_empty(), "{}: nothing registered", h.case);
}
