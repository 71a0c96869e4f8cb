//! The worker's local run queue: claimed jobs wait here for one of `concurrency` run slots,
//! and a freed slot goes to the most urgent waiting job, in the claim order (priority, then
//! due time, then id), whatever order the jobs were claimed in or their tasks were polled in.
//!
//! The claim loop queues each claimed job itself, synchronously and in claim order
//! ([`RunQueue::enqueue`]), so two jobs of one claim never race for a free slot; the job's
//! task then awaits its [`Ticket`]. A slot is a [`RunPermit`]: dropping it hands the slot to
//! the most urgent waiter, or returns it to the free count.
//!
//! The claim loop may also take back the least urgent waiting jobs ([`RunQueue::evict`]) when
//! it swaps more urgent ones in: their tasks get [`Grant::GiveBack`] and return their leases.
//!
//! A std `Mutex` is enough: every critical section is a few map operations and never spans
//! an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::clock::Millis;
use crate::model::{Job, JobId};

/// Where a waiting job stands: its claim order.
pub(crate) type RunKey = (u8, Millis, JobId);

/// The key of a claimed job.
pub(crate) fn key_of(job: &Job) -> RunKey {
    (job.priority.get(), job.run_at, job.id)
}

/// What a waiting job is told.
#[derive(Debug)]
pub(crate) enum Grant {
    /// A slot: start now.
    Run(RunPermit),
    /// Taken back before it started (a more urgent job took its place): give the lease back.
    GiveBack,
}

#[derive(Debug)]
struct Inner {
    /// Slots nobody holds. Never above zero while jobs wait.
    free: usize,
    /// Jobs waiting for a slot, most urgent first. An entry whose receiver is gone (its task
    /// stopped waiting) is skipped when reached.
    waiting: BTreeMap<RunKey, oneshot::Sender<Grant>>,
}

/// The run queue. See the module docs.
#[derive(Debug)]
pub(crate) struct RunQueue {
    inner: Mutex<Inner>,
    concurrency: usize,
}

/// One held run slot; dropping it passes the slot on.
#[derive(Debug)]
pub(crate) struct RunPermit {
    /// `None` once the slot has been passed on by other means (see `RunQueue::release`).
    queue: Option<Arc<RunQueue>>,
}

impl Drop for RunPermit {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            q.release();
        }
    }
}

/// A queued job's place: a slot at once, or a wait for one.
#[derive(Debug)]
pub(crate) enum Ticket {
    Ready(RunPermit),
    Waiting(oneshot::Receiver<Grant>),
}

impl Ticket {
    /// Waits for the slot (or to be given back). `GiveBack` also if the queue dropped the
    /// entry, which only happens when the worker is going away.
    pub(crate) async fn wait(self) -> Grant {
        match self {
            Ticket::Ready(p) => Grant::Run(p),
            Ticket::Waiting(rx) => rx.await.unwrap_or(Grant::GiveBack),
        }
    }
}

impl RunQueue {
    pub(crate) fn new(concurrency: usize) -> Arc<Self> {
        Arc::new(RunQueue {
            inner: Mutex::new(Inner {
                free: concurrency,
                waiting: BTreeMap::new(),
            }),
            concurrency,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // No user code runs under this lock; recover the data rather than poison the worker.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a claimed job: a slot at once if one is free (then nobody waits), otherwise
    /// its place among the waiting jobs.
    pub(crate) fn enqueue(self: &Arc<Self>, key: RunKey) -> Ticket {
        let mut g = self.lock();
        if g.free > 0 {
            g.free -= 1;
            return Ticket::Ready(RunPermit {
                queue: Some(Arc::clone(self)),
            });
        }
        let (tx, rx) = oneshot::channel();
        g.waiting.insert(key, tx);
        Ticket::Waiting(rx)
    }

    /// A slot came free: the most urgent job still waiting gets it, or it is free again.
    fn release(self: &Arc<Self>) {
        loop {
            let next = {
                let mut g = self.lock();
                match g.waiting.pop_first() {
                    Some((_, tx)) => tx,
                    None => {
                        g.free += 1;
                        return;
                    }
                }
            };
            // Sent outside the lock: a permit that cannot be delivered is dropped here, and
            // its drop takes the lock again.
            let permit = RunPermit {
                queue: Some(Arc::clone(self)),
            };
            match next.send(Grant::Run(permit)) {
                Ok(()) => return,
                // That task stopped waiting: disarm the permit and offer the slot to the next.
                Err(Grant::Run(mut p)) => {
                    p.queue = None;
                }
                Err(Grant::GiveBack) => unreachable!("only Run is sent here"),
            }
        }
    }

    /// Jobs holding a slot now.
    pub(crate) fn running(&self) -> usize {
        self.concurrency - self.lock().free.min(self.concurrency)
    }

    /// The least urgent priority among the jobs waiting for a slot, and how many wait with
    /// it; `None` when none waits.
    pub(crate) fn least_urgent_waiting(&self) -> Option<(u8, usize)> {
        let g = self.lock();
        let mut live = g.waiting.iter().rev().filter(|(_, tx)| !tx.is_closed());
        let ((worst, _, _), _) = live.next()?;
        let worst = *worst;
        Some((
            worst,
            1 + live.take_while(|((p, _, _), _)| *p == worst).count(),
        ))
    }

    /// Takes back up to `n` of the least urgent waiting jobs whose priority is at least
    /// `from` (numerically), telling each to give its lease back. Returns how many.
    pub(crate) fn evict(&self, n: usize, from: u8) -> usize {
        let mut out = Vec::with_capacity(n);
        {
            let mut g = self.lock();
            while out.len() < n {
                match g.waiting.last_key_value() {
                    Some((k, _)) if k.0 >= from => {}
                    _ => break,
                }
                let Some((_, tx)) = g.waiting.pop_last() else {
                    break;
                };
                if !tx.is_closed() {
                    out.push(tx);
                }
            }
        }
        let mut evicted = 0;
        for tx in out {
            if tx.send(Grant::GiveBack).is_ok() {
                evicted += 1;
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: u8, at: Millis) -> RunKey {
        (p, at, JobId::new())
    }

    fn granted(t: &mut oneshot::Receiver<Grant>) -> Option<bool> {
        match t.try_recv() {
            Ok(Grant::Run(p)) => {
                drop(p);
                Some(true)
            }
            Ok(Grant::GiveBack) => Some(false),
            Err(_) => None,
        }
    }

    fn waiting(t: Ticket) -> oneshot::Receiver<Grant> {
        match t {
            Ticket::Waiting(rx) => rx,
            Ticket::Ready(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn a_freed_slot_goes_to_the_most_urgent_waiter_not_the_first() {
        let q = RunQueue::new(1);
        let Ticket::Ready(first) = q.enqueue(key(5, 0)) else {
            panic!("a free slot is taken at once")
        };
        // Queued in the order 9, 3, 3 (later due), 0.
        let mut nine = waiting(q.enqueue(key(9, 0)));
        let mut three_late = waiting(q.enqueue(key(3, 20)));
        let mut three = waiting(q.enqueue(key(3, 10)));
        let mut zero = waiting(q.enqueue(key(0, 50)));
        assert_eq!(q.running(), 1);
        assert_eq!(q.least_urgent_waiting(), Some((9, 1)));
        drop(first);
        // Each grant is dropped at once by `granted`, which frees the slot for the next.
        assert_eq!(granted(&mut zero), Some(true));
        assert_eq!(granted(&mut three), Some(true));
        assert_eq!(granted(&mut three_late), Some(true));
        assert_eq!(granted(&mut nine), Some(true));
        assert_eq!(q.running(), 0);
        assert!(matches!(q.enqueue(key(1, 0)), Ticket::Ready(_)));
    }

    #[test]
    fn an_abandoned_wait_passes_the_slot_on() {
        let q = RunQueue::new(1);
        let Ticket::Ready(held) = q.enqueue(key(5, 0)) else {
            panic!()
        };
        let gone = waiting(q.enqueue(key(1, 0)));
        let mut next = waiting(q.enqueue(key(2, 0)));
        drop(gone);
        drop(held);
        assert_eq!(granted(&mut next), Some(true));
        assert_eq!(q.running(), 0);
    }

    #[test]
    fn eviction_takes_the_least_urgent_at_or_above_a_priority() {
        let q = RunQueue::new(1);
        let _held = q.enqueue(key(5, 0));
        let mut a = waiting(q.enqueue(key(7, 1)));
        let mut b = waiting(q.enqueue(key(7, 2)));
        let mut c = waiting(q.enqueue(key(4, 0)));
        assert_eq!(q.least_urgent_waiting(), Some((7, 2)));
        assert_eq!(q.evict(3, 7), 2, "only the two 7s");
        assert_eq!(granted(&mut b), Some(false));
        assert_eq!(granted(&mut a), Some(false));
        assert_eq!(granted(&mut c), None, "still waiting");
        assert_eq!(q.least_urgent_waiting(), Some((4, 1)));
    }
}
