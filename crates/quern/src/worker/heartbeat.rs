//! Heartbeats: one batched `job_heartbeat` call for all held leases every third of the
//! lease, and a periodic `worker_heartbeat` for the worker record.
//!
//! A third of the lease means a lease survives two failed heartbeats in a row before it can
//! expire. A `LeaseLost` answer means the job is someone else's now (re-delivered after an
//! expiry, or cancelled by an operator): its context is cancelled so the handler can stop,
//! and its outcome will be discarded.

use std::sync::Arc;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::Error;
use crate::backend::{HeartbeatItem, HeartbeatParams, WorkerHeartbeatParams};

pub(super) async fn leases(s: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(s.cfg.heartbeat_every());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; leases are fresh at claim time
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        beat(&s).await;
    }
}

/// One batched heartbeat of every held lease.
pub(super) async fn beat(s: &Shared) {
    let tokens = s.leases.tokens();
    if tokens.is_empty() {
        return;
    }
    let items = tokens
        .iter()
        .map(|t| HeartbeatItem {
            token: t.clone(),
            progress: None,
            checkpoint: None,
        })
        .collect();
    let res = s
        .backend
        .job_heartbeat(HeartbeatParams {
            items,
            lease: s.cfg.lease,
        })
        .await;
    match res {
        Ok(results) => {
            for (t, r) in tokens.iter().zip(results) {
                match r {
                    Ok(_) => {}
                    Err(Error::LeaseLost { .. }) => {
                        if s.leases.mark_lost(t.job_id) {
                            tracing::warn!(
                                job_id = %t.job_id,
                                "lease lost (job cancelled or re-delivered); stopping it"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %t.job_id, error = %e, "lease heartbeat failed")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(
            n = tokens.len(),
            error = %e,
            "lease heartbeat failed; retrying at the next tick"
        ),
    }
}

pub(super) async fn worker(s: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(s.cfg.worker_heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await; // registration just recorded us as seen
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let running = u32::try_from(s.leases.occupying()).unwrap_or(u32::MAX);
        let res = s
            .backend
            .worker_heartbeat(WorkerHeartbeatParams {
                id: s.cfg.id.clone(),
                running,
            })
            .await;
        if let Err(e) = res {
            // The record may be gone (store restarted without persistence, or the worker
            // was reaped as lost after a long pause): register again, which is idempotent.
            tracing::warn!(error = %e, "worker heartbeat failed; registering again");
            if let Err(e) = s.backend.worker_register(s.worker_info(running)).await {
                tracing::warn!(error = %e, "worker re-registration failed");
            }
        }
    }
}
