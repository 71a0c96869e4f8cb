//! The table of leases a worker holds, shared by the claim loop, the job tasks, the acker
//! and the heartbeat loop.
//!
//! A std `Mutex` is enough: every critical section is a few map operations and never spans
//! an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::backend::LeaseToken;
use crate::model::JobId;

/// One held lease, from claim until the backend has acknowledged the outcome.
#[derive(Debug)]
struct Held {
    token: LeaseToken,
    queue: String,
    /// Cancelled to stop the job: a lost lease, or a forced shutdown (it is a child of the
    /// worker's force-stop token).
    cancel: CancellationToken,
    /// Set when a heartbeat got `LeaseLost`: the job belongs to someone else now, so its
    /// outcome must be discarded.
    lost: bool,
    /// True from claim until the handler returned (or the job was given up): the job
    /// occupies a claim slot. False while only the acknowledgement is pending.
    occupying: bool,
}

#[derive(Debug, Default)]
struct Table {
    held: HashMap<JobId, Held>,
    /// Jobs occupying a claim slot (claimed and not yet finished running).
    occupying: usize,
    /// The same, per queue (for per-queue caps).
    per_queue: HashMap<String, usize>,
}

/// The lease table. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    table: Mutex<Table>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock would be a bug in this module (no user code runs
        // under it); recover the data rather than poisoning the whole worker.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a freshly claimed job; it occupies a slot until [`Leases::finish_running`].
    pub(crate) fn insert(&self, token: LeaseToken, queue: &str, cancel: CancellationToken) {
        let mut t = self.lock();
        t.occupying += 1;
        *t.per_queue.entry(queue.to_string()).or_default() += 1;
        t.held.insert(
            token.job_id,
            Held {
                token,
                queue: queue.to_string(),
                cancel,
                lost: false,
                occupying: true,
            },
        );
    }

    /// The handler is done (or the job was given up before it ran): free its slot. The
    /// lease stays in the table, and keeps being heartbeated, until [`Leases::remove`].
    /// Returns whether the lease was lost meanwhile.
    pub(crate) fn finish_running(&self, id: JobId) -> bool {
        let mut t = self.lock();
        let Some(h) = t.held.get_mut(&id) else {
            return true;
        };
        let lost = h.lost;
        if h.occupying {
            h.occupying = false;
            let queue = h.queue.clone();
            t.occupying -= 1;
            if let Some(n) = t.per_queue.get_mut(&queue) {
                *n -= 1;
            }
        }
        lost
    }

    /// Forgets a lease (acknowledged, or abandoned).
    pub(crate) fn remove(&self, id: JobId) {
        let mut t = self.lock();
        if let Some(h) = t.held.remove(&id)
            && h.occupying
        {
            t.occupying -= 1;
            if let Some(n) = t.per_queue.get_mut(&h.queue) {
                *n -= 1;
            }
        }
    }

    /// Marks a lease lost and cancels its job. Returns whether the job was still running
    /// (or waiting to run); false when only its acknowledgement was pending, which races
    /// harmlessly with the heartbeat that reported the loss.
    pub(crate) fn mark_lost(&self, id: JobId) -> bool {
        let mut t = self.lock();
        match t.held.get_mut(&id) {
            Some(h) => {
                h.lost = true;
                h.cancel.cancel();
                h.occupying
            }
            None => false,
        }
    }

    /// Whether the lease was lost (or is no longer held at all).
    #[cfg(test)]
    pub(crate) fn is_lost(&self, id: JobId) -> bool {
        self.lock().held.get(&id).is_none_or(|h| h.lost)
    }

    /// Every lease to heartbeat.
    pub(crate) fn tokens(&self) -> Vec<LeaseToken> {
        self.lock()
            .held
            .values()
            .filter(|h| !h.lost)
            .map(|h| h.token.clone())
            .collect()
    }

    /// Leases held in total.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().held.len()
    }

    /// Jobs occupying a slot.
    pub(crate) fn occupying(&self) -> usize {
        self.lock().occupying
    }

    /// Jobs occupying a slot, per queue, for the given queues (0 when none).
    pub(crate) fn occupying_in<'a>(&self, queues: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
        let t = self.lock();
        queues
            .into_iter()
            .map(|q| t.per_queue.get(q).copied().unwrap_or(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> LeaseToken {
        LeaseToken {
            job_id: JobId::new(),
            epoch: 1,
            attempt: 1,
        }
    }

    #[test]
    fn slots_are_freed_once_and_leases_removed() {
        let l = Leases::default();
        let a = token();
        let b = token();
        l.insert(a.clone(), "q", CancellationToken::new());
        l.insert(b.clone(), "r", CancellationToken::new());
        assert_eq!(l.occupying(), 2);
        assert_eq!(l.occupying_in(["q", "r", "s"]), vec![1, 1, 0]);
        assert!(!l.finish_running(a.job_id));
        assert!(!l.finish_running(a.job_id));
        assert_eq!(l.occupying(), 1);
        assert_eq!(l.len(), 2, "still held until acknowledged");
        l.remove(a.job_id);
        l.remove(b.job_id);
        assert_eq!((l.len(), l.occupying()), (0, 0));
        assert_eq!(l.occupying_in(["q", "r"]), vec![0, 0]);
    }

    #[test]
    fn lost_leases_cancel_and_stop_heartbeating() {
        let l = Leases::default();
        let a = token();
        let cancel = CancellationToken::new();
        l.insert(a.clone(), "q", cancel.clone());
        assert!(l.mark_lost(a.job_id));
        assert!(cancel.is_cancelled());
        assert!(l.is_lost(a.job_id));
        assert!(l.tokens().is_empty());
        assert!(l.finish_running(a.job_id));
    }
}
