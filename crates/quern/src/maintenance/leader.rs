//! Running a singleton service on one node at a time, gated by a named leader lease stored
//! in the backend (`leader_acquire` / `leader_renew` / `leader_release`).
//!
//! The holder renews every third of the lease's time-to-live. If renewals fail (the store is
//! unreachable) it steps down once two thirds of the TTL have passed since the last good
//! renewal, before the lease can expire and another node take over, so two leaders never
//! act at once as long as clocks tick at similar rates. A node that stops cleanly releases
//! the lease so a successor takes over at once rather than after the TTL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pause;
use crate::backend::{Backend, LeaderParams};

/// Leader lease settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The lease's name: one leader per name (for example `quern.pruner`).
    pub name: String,
    /// Who we are (the worker or server id).
    pub holder: String,
    /// How long the lease lasts without renewal; a crashed leader is replaced about this
    /// long after it died. Renewals and acquisition attempts happen every third of it.
    /// Default 15 s.
    pub ttl: Duration,
}

impl LeaderConfig {
    /// A lease `name` held by `holder`, with the default TTL.
    pub fn new(name: impl Into<String>, holder: impl Into<String>) -> Self {
        LeaderConfig {
            name: name.into(),
            holder: holder.into(),
            ttl: Duration::from_secs(15),
        }
    }

    fn params(&self) -> LeaderParams {
        LeaderParams {
            name: self.name.clone(),
            holder: self.holder.clone(),
            ttl: self.ttl,
        }
    }

    fn period(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(10))
    }
}

/// Runs `work` whenever this node holds the leader lease, until `stop` is cancelled.
///
/// `work` receives a token that is cancelled when leadership ends (lost, or `stop`); it
/// should return promptly then. If it returns on its own, leadership is kept only until
/// the next acquisition attempt, which starts it again.
pub async fn run_as_leader<F, Fut>(
    backend: Arc<dyn Backend>,
    config: LeaderConfig,
    stop: CancellationToken,
    mut work: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let period = config.period();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let held = match backend.leader_acquire(config.params()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(lease = %config.name, error = %e, "could not try to take the leader lease");
                false
            }
        };
        if held {
            tracing::info!(lease = %config.name, holder = %config.holder, "became leader");
            let term = stop.child_token();
            let run = async {
                work(term.clone()).await;
                term.cancel();
            };
            tokio::join!(run, keep(&*backend, &config, &term));
            if stop.is_cancelled() {
                if let Err(e) = backend.leader_release(config.params()).await {
                    tracing::warn!(lease = %config.name, error = %e, "could not release the leader lease");
                }
                tracing::info!(lease = %config.name, "stepped down (stopping)");
                break;
            }
        }
        if !pause(period, &stop).await {
            break;
        }
    }
}

/// Renews the lease every period until `term` is cancelled; cancels `term` when the lease
/// is lost or cannot be confirmed in time.
async fn keep(backend: &dyn Backend, config: &LeaderConfig, term: &CancellationToken) {
    let period = config.period();
    let mut last_ok = tokio::time::Instant::now();
    while pause(period, term).await {
        match backend.leader_renew(config.params()).await {
            Ok(true) => last_ok = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %config.name, "leader lease lost");
                term.cancel();
            }
            Err(e) => {
                if last_ok.elapsed() >= config.ttl.saturating_sub(period) {
                    tracing::warn!(lease = %config.name, error = %e, "cannot renew the leader lease; stepping down");
                    term.cancel();
                } else {
                    tracing::warn!(lease = %config.name, error = %e, "leader lease renewal failed; retrying");
                }
            }
        }
    }
}
