//! The jobs this process claimed and has not seen an outcome for: what a completion (which
//! carries only a lease token) is counted under, and when the attempt started.
//!
//! A std `Mutex` is enough: every critical section is a few map operations for one batch
//! and never spans an `.await`. Entries leave with the outcome, a release or a rescue seen
//! here; one whose outcome went through another process (a lease completed through another
//! server, or rescued by another node) is dropped once its lease has been expired for
//! [`STALE_AFTER_MS`] (heartbeats seen here move the deadline), so the table stays bounded
//! by the leases this process handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quern::{JobId, Millis};

use super::series::Series;

/// How long after its lease deadline an entry with no outcome is forgotten.
pub const STALE_AFTER_MS: Millis = 60_000;

/// One claimed job.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The claim's fencing epoch: an outcome under another epoch is not this claim's.
    pub epoch: u64,
    pub series: Arc<Series>,
    pub max_attempts: u32,
    pub claimed_at: Millis,
    /// The lease deadline as last seen (claim or heartbeat).
    pub expires_at: Millis,
}

#[derive(Debug, Default)]
pub struct InFlight {
    jobs: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    map: HashMap<JobId, Claimed>,
    /// Sweep when the table grows past this (doubles after each sweep, floor 10 000).
    sweep_at: usize,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, now: Millis, items: impl IntoIterator<Item = (JobId, Claimed)>) {
        let mut t = self.lock();
        t.map.extend(items);
        if t.map.len() > t.sweep_at.max(10_000) {
            t.map.retain(|_, c| c.expires_at + STALE_AFTER_MS >= now);
            t.sweep_at = t.map.len() * 2;
        }
    }

    /// Takes the entry of each `(id, epoch)` that matches; `None` where none does.
    pub fn take(&self, keys: impl IntoIterator<Item = (JobId, u64)>) -> Vec<Option<Claimed>> {
        let mut t = self.lock();
        keys.into_iter()
            .map(|(id, epoch)| match t.map.get(&id) {
                Some(c) if c.epoch == epoch => t.map.remove(&id),
                _ => None,
            })
            .collect()
    }

    /// Takes the entries of jobs by id whatever their epoch (a rescue names jobs only).
    pub fn take_ids<'a>(&self, ids: impl IntoIterator<Item = &'a JobId>) -> Vec<Option<Claimed>> {
        let mut t = self.lock();
        ids.into_iter().map(|id| t.map.remove(id)).collect()
    }

    /// Moves the deadlines of the matching entries (a heartbeat's answers).
    pub fn extend(&self, items: impl IntoIterator<Item = (JobId, u64, Millis)>) {
        let mut t = self.lock();
        for (id, epoch, deadline) in items {
            if let Some(c) = t.map.get_mut(&id)
                && c.epoch == epoch
            {
                c.expires_at = deadline;
            }
        }
    }

    /// Drops entries whose lease has been expired for [`STALE_AFTER_MS`].
    pub fn sweep(&self, now: Millis) {
        self.lock()
            .map
            .retain(|_, c| c.expires_at + STALE_AFTER_MS >= now);
    }
}
