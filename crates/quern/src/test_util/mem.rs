//! A small in-memory [`Backend`] for the core crate's unit tests, so worker and maintenance
//! logic can run under `tokio::time::pause()` with a `TokioClock` and no real sleeps.
//!
//! A **narrow test double**, not a backend: it is not run against the conformance suite. It
//! follows the trait's documented semantics closely enough for those tests (fencing,
//! retries, snoozes, releases, rescues, leader leases, wake-ups at enqueue and at the next
//! due time). What it does not model it says: `capabilities()` reports no workflows (so the
//! `Spawn` action and `workflow_*` answer `Unsupported`), `job_retry` answers
//! `Unsupported`, weights are ignored (queues are taken in listed order), `unique_for`
//! windows are not modelled, and `work_wait` sleeps until notified whatever work is ready.
//! Real backends are proven by the conformance suite and the integration tests in
//! `quern-sqlite` and `quern-redis`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::backend::*;
use crate::clock::{Millis, SharedClock};
use crate::model::{ErrorKind, ErrorRecord, Job, JobId, JobState, Limits, StateCounts};
use crate::{Error, Result};

/// Call counters, for asserting batching.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub claim: AtomicUsize,
    pub heartbeat: AtomicUsize,
    pub heartbeat_items: AtomicUsize,
    pub complete: AtomicUsize,
    pub complete_items: AtomicUsize,
    pub fail: AtomicUsize,
    pub release: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    paused: HashSet<String>,
    queues: HashSet<String>,
    workers: HashMap<String, WorkerInfo>,
    leaders: HashMap<String, LeaderInfo>,
}

#[derive(Debug)]
pub(crate) struct MemBackend {
    clock: SharedClock,
    state: Mutex<State>,
    wake: Notify,
    pub calls: Calls,
}

impl MemBackend {
    pub(crate) fn new(clock: SharedClock) -> Self {
        MemBackend {
            clock,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            calls: Calls::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn wake_all(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}

/// Checks a token against the stored job.
fn held<'a>(st: &'a mut State, t: &LeaseToken) -> Result<&'a mut Job> {
    match st.jobs.get_mut(&t.job_id) {
        Some(j) if j.state == JobState::Running && j.lease_epoch == t.epoch => Ok(j),
        _ => Err(Error::LeaseLost { job_id: t.job_id }),
    }
}

/// Re-evaluates blocked dependents of `done`.
/// Stores a reported handler start, between the claim time and now (as the real backends do).
fn record_started(j: &mut Job, reported: Option<Millis>, now: Millis) {
    if let Some(t) = reported {
        j.started_at = Some(t.min(now).max(j.claimed_at.unwrap_or(0)));
    }
}

fn settle_dependents(st: &mut State, now: Millis) {
    loop {
        let mut changed = false;
        let blocked: Vec<JobId> = st
            .jobs
            .values()
            .filter(|j| j.state == JobState::Blocked)
            .map(|j| j.id)
            .collect();
        for id in blocked {
            let j = &st.jobs[&id];
            let deps: Vec<JobState> = j
                .depends_on
                .iter()
                .map(|d| st.jobs.get(d).map_or(JobState::Succeeded, |x| x.state))
                .collect();
            if let Some(next) = j.trigger.resolve(&deps) {
                let j = st.jobs.get_mut(&id).unwrap();
                j.state = if next == JobState::Queued && j.run_at > now {
                    JobState::Scheduled
                } else {
                    next
                };
                if next == JobState::Skipped {
                    j.finished_at = Some(now);
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[async_trait]
impl Backend for MemBackend {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::full("memory");
        c.workflows = false;
        c.schedules = false;
        c.queue_limits = false;
        c.logs = false;
        c.stats = false;
        c
    }

    async fn job_enqueue(&self, params: EnqueueParams) -> Result<EnqueueResults> {
        let now = self.now();
        if params.mode == BatchMode::Atomic {
            for (i, new) in params.jobs.iter().enumerate() {
                if let Err(e) = new.validate(&Limits::default()) {
                    return Err(match e {
                        Error::InvalidJob { reason, .. } => Error::InvalidJob {
                            index: Some(i),
                            reason,
                        },
                        other => other,
                    });
                }
            }
        }
        let mut st = self.lock();
        let mut out = Vec::new();
        for (i, new) in params.jobs.into_iter().enumerate() {
            if let Err(e) = new.validate(&Limits::default()) {
                let e = match e {
                    Error::InvalidJob { reason, .. } => Error::InvalidJob {
                        index: Some(i),
                        reason,
                    },
                    other => other,
                };
                out.push(Err(e));
                continue;
            }
            if let Some(key) = &new.unique_key
                && let Some(existing) = st.jobs.values().find(|j| {
                    j.queue == new.queue
                        && j.unique_key.as_ref() == Some(key)
                        && !j.state.is_terminal()
                })
            {
                out.push(Ok(EnqueueOutcome {
                    id: existing.id,
                    state: existing.state,
                    duplicate: true,
                }));
                continue;
            }
            let state = if !new.depends_on.is_empty() {
                JobState::Blocked
            } else if new.due_at(now) > now {
                JobState::Scheduled
            } else {
                JobState::Queued
            };
            st.queues.insert(new.queue.clone());
            let job = Job::from_new(new, state, now);
            out.push(Ok(EnqueueOutcome {
                id: job.id,
                state,
                duplicate: false,
            }));
            st.jobs.insert(job.id, job);
        }
        settle_dependents(&mut st, now);
        drop(st);
        self.wake_all();
        Ok(out)
    }

    async fn job_claim(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>> {
        self.calls.claim.fetch_add(1, Ordering::SeqCst);
        let now = self.now();
        let mut st = self.lock();
        for j in st.jobs.values_mut() {
            if j.state == JobState::Scheduled && j.run_at <= now {
                j.state = JobState::Queued;
            }
        }
        let mut ready: Vec<(usize, u8, Millis, JobId)> = st
            .jobs
            .values()
            .filter(|j| {
                j.state == JobState::Queued
                    && !st.paused.contains(&j.queue)
                    && params.more_urgent_than.is_none_or(|p| j.priority < p)
            })
            .filter_map(|j| {
                let qi = params.queues.iter().position(|q| q.queue == j.queue)?;
                Some((qi, j.priority.get(), j.run_at, j.id))
            })
            .collect();
        ready.sort();
        let mut out = Vec::new();
        for (_, _, _, id) in ready.into_iter().take(params.limit) {
            let j = st.jobs.get_mut(&id).unwrap();
            let c = ClaimedJob::from_ready(
                j.clone(),
                &params.worker_id,
                now + params.lease.as_millis() as i64,
                now,
            );
            *j = c.job.clone();
            out.push(c);
        }
        Ok(out)
    }

    async fn job_heartbeat(&self, params: HeartbeatParams) -> Result<Vec<Result<Millis>>> {
        self.calls.heartbeat.fetch_add(1, Ordering::SeqCst);
        self.calls
            .heartbeat_items
            .fetch_add(params.items.len(), Ordering::SeqCst);
        let now = self.now();
        let mut st = self.lock();
        Ok(params
            .items
            .into_iter()
            .map(|it| {
                let j = held(&mut st, &it.token)?;
                let exp = now + params.lease.as_millis() as i64;
                if let Some(l) = j.lease.as_mut() {
                    l.expires_at = exp;
                }
                if it.progress.is_some() {
                    j.progress = it.progress;
                }
                if it.checkpoint.is_some() {
                    j.checkpoint = it.checkpoint;
                }
                Ok(exp)
            })
            .collect())
    }

    async fn job_complete(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        self.calls.complete.fetch_add(1, Ordering::SeqCst);
        self.calls
            .complete_items
            .fetch_add(params.items.len(), Ordering::SeqCst);
        let now = self.now();
        let mut st = self.lock();
        let out = params
            .items
            .into_iter()
            .map(|c| {
                let j = held(&mut st, &c.token)?;
                record_started(j, c.started_at, now);
                j.state = JobState::Succeeded;
                j.result = c.result;
                j.result_expires_at = c.result_ttl.map(|d| now + d.as_millis() as i64);
                j.finished_at = Some(now);
                j.lease = None;
                Ok(())
            })
            .collect();
        settle_dependents(&mut st, now);
        drop(st);
        self.wake_all();
        Ok(out)
    }

    async fn job_fail(&self, params: FailParams) -> Result<Vec<Result<()>>> {
        self.calls.fail.fetch_add(1, Ordering::SeqCst);
        let now = self.now();
        let mut st = self.lock();
        let out = params
            .items
            .into_iter()
            .map(|f| {
                if matches!(f.action, FailAction::Spawn { .. }) {
                    return Err(Error::Unsupported(
                        "the memory test double does not model spawn".into(),
                    ));
                }
                let j = held(&mut st, &f.token)?;
                record_started(j, f.started_at, now);
                j.lease = None;
                if !matches!(
                    f.action,
                    FailAction::Snooze { .. } | FailAction::RateLimited { .. }
                ) {
                    j.errors.push(ErrorRecord {
                        attempt: j.attempt,
                        at: now,
                        kind: f.error_kind,
                        message: f.message,
                        claimed_at: None,
                        due_at: None,
                        retry_at: None,
                    });
                }
                match f.action {
                    FailAction::Retry { retry_at: Some(at) } if j.attempt < j.max_attempts => {
                        j.state = JobState::Scheduled;
                        j.run_at = at;
                    }
                    FailAction::Retry { .. } | FailAction::Dead => {
                        j.state = JobState::Dead;
                        j.finished_at = Some(now);
                    }
                    // The memory double does not model admission holds.
                    FailAction::Snooze { run_at } | FailAction::RateLimited { run_at } => {
                        j.state = JobState::Scheduled;
                        j.run_at = run_at;
                        j.attempt -= 1;
                    }
                    FailAction::Cancel => {
                        j.state = JobState::Cancelled;
                        j.finished_at = Some(now);
                    }
                    FailAction::Skip => {
                        j.state = JobState::Skipped;
                        j.finished_at = Some(now);
                        j.attempt -= 1;
                    }
                    FailAction::Spawn { .. } => unreachable!("refused above"),
                }
                Ok(())
            })
            .collect();
        settle_dependents(&mut st, now);
        drop(st);
        self.wake_all();
        Ok(out)
    }

    async fn job_release(&self, params: ReleaseParams) -> Result<Vec<Result<()>>> {
        self.calls.release.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        let out = params
            .tokens
            .iter()
            .map(|t| {
                let j = held(&mut st, t)?;
                j.state = JobState::Queued;
                j.attempt -= 1;
                j.lease = None;
                Ok(())
            })
            .collect();
        drop(st);
        self.wake_all();
        Ok(out)
    }

    async fn job_cancel(&self, params: CancelParams) -> Result<Job> {
        let now = self.now();
        let mut st = self.lock();
        let j = st
            .jobs
            .get_mut(&params.id)
            .ok_or(Error::JobNotFound(params.id))?;
        if j.state.is_terminal() {
            return Err(Error::InvalidTransition {
                id: j.id,
                from: j.state,
                action: "cancel",
            });
        }
        j.state = JobState::Cancelled;
        j.finished_at = Some(now);
        j.lease = None;
        let job = j.clone();
        settle_dependents(&mut st, now);
        Ok(job)
    }

    async fn job_reprioritize(&self, params: JobReprioritizeParams) -> Result<Job> {
        let mut st = self.lock();
        let j = st
            .jobs
            .get_mut(&params.id)
            .ok_or(Error::JobNotFound(params.id))?;
        if !j.state.is_waiting() {
            return Err(Error::InvalidTransition {
                id: j.id,
                from: j.state,
                action: "reprioritize",
            });
        }
        j.priority = params.priority;
        let job = j.clone();
        drop(st);
        self.wake_all();
        Ok(job)
    }

    async fn job_get(&self, params: JobGetParams) -> Result<Option<Job>> {
        let id = params.id;
        Ok(self.lock().jobs.get(&id).cloned())
    }

    async fn job_list(&self, params: ListParams) -> Result<JobPage> {
        let st = self.lock();
        let f = &params.filter;
        let mut jobs: Vec<Job> = st
            .jobs
            .values()
            .filter(|j| f.queue.as_ref().is_none_or(|q| &j.queue == q))
            .filter(|j| f.state.is_none_or(|s| j.state == s))
            .filter(|j| f.kind.as_ref().is_none_or(|k| &j.kind == k))
            .filter(|j| params.before.is_none_or(|b| j.id < b))
            .cloned()
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
        if params.limit > 0 {
            jobs.truncate(params.limit);
        }
        Ok(JobPage { next: None, jobs })
    }

    async fn job_retry(&self, _params: RetryParams) -> Result<Vec<JobId>> {
        Err(Error::Unsupported(
            "the memory test double does not model retries by an operator".into(),
        ))
    }

    async fn job_prune(&self, params: PruneParams) -> Result<PruneReport> {
        let now = self.now();
        let mut st = self.lock();
        let victims: Vec<JobId> = st
            .jobs
            .values()
            .filter(|j| {
                params.states.contains(&j.state)
                    && params.deletes_from(&j.queue)
                    && j.finished_at.is_some_and(|t| t < params.finished_before)
            })
            .map(|j| j.id)
            .take(params.limit)
            .collect();
        let mut expired = 0;
        for j in st.jobs.values_mut() {
            if j.result_expires_at.is_some_and(|t| t <= now)
                && j.result.is_some()
                && params.covers(&j.queue)
            {
                if !params.dry_run {
                    j.result = None;
                }
                expired += 1;
            }
        }
        if !params.dry_run {
            for id in &victims {
                st.jobs.remove(id);
            }
        }
        Ok(PruneReport {
            jobs_deleted: victims.len() as u64,
            results_expired: expired,
        })
    }

    async fn lease_rescue(&self, params: RescueParams) -> Result<RescueReport> {
        let now = self.now();
        let mut st = self.lock();
        let mut report = RescueReport::default();
        let expired: Vec<JobId> = st
            .jobs
            .values()
            .filter(|j| {
                j.state == JobState::Running
                    && j.lease.as_ref().is_some_and(|l| {
                        l.expires_at < now || params.lost_workers.contains(&l.worker_id)
                    })
            })
            .map(|j| j.id)
            .take(params.limit)
            .collect();
        for id in expired {
            let j = st.jobs.get_mut(&id).unwrap();
            let lease = j.lease.take().expect("running jobs hold a lease");
            let (kind, message) = if lease.expires_at < now {
                (ErrorKind::LeaseExpired, "lease expired")
            } else {
                (ErrorKind::WorkerLost, "worker lost")
            };
            j.errors.push(ErrorRecord {
                attempt: j.attempt,
                at: now,
                kind,
                message: message.into(),
                claimed_at: None,
                due_at: None,
                retry_at: None,
            });
            if j.attempt >= j.max_attempts {
                j.state = JobState::Dead;
                j.finished_at = Some(now);
                report.dead.push(id);
            } else {
                j.state = JobState::Queued;
                report.requeued.push(id);
            }
        }
        settle_dependents(&mut st, now);
        drop(st);
        if !report.requeued.is_empty() {
            self.wake_all();
        }
        Ok(report)
    }

    async fn work_wait(&self, params: WaitParams) -> Result<()> {
        let now = self.now();
        // Sleeps until notified (the worker tests drive it by enqueues and time), whatever
        // `more_urgent_than` says: spurious wake-ups are allowed.
        let next_due = self
            .lock()
            .jobs
            .values()
            .filter(|j| j.state == JobState::Scheduled && params.queues.contains(&j.queue))
            .map(|j| j.run_at)
            .min();
        let mut timeout = params.timeout;
        if let Some(due) = next_due {
            timeout = timeout.min(Duration::from_millis((due - now).max(0) as u64));
        }
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
        Ok(())
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>> {
        let names: Vec<String> = self.lock().queues.iter().cloned().collect();
        let mut out = Vec::new();
        for n in names {
            out.push(self.queue_stats((&n).into()).await?);
        }
        Ok(out)
    }

    async fn queue_stats(&self, params: QueueParams) -> Result<QueueInfo> {
        let queue = params.queue.as_str();
        let st = self.lock();
        if !st.queues.contains(queue) {
            return Err(Error::QueueNotFound(queue.into()));
        }
        let mut counts = StateCounts::default();
        for j in st.jobs.values().filter(|j| j.queue == queue) {
            *counts.get_mut(j.state) += 1;
        }
        Ok(QueueInfo {
            name: queue.into(),
            paused: st.paused.contains(queue),
            counts,
            oldest_queued_at: None,
        })
    }

    async fn queue_pause(&self, params: QueueParams) -> Result<()> {
        let queue = params.queue.as_str();
        self.lock().paused.insert(queue.into());
        Ok(())
    }

    async fn queue_resume(&self, params: QueueParams) -> Result<()> {
        let queue = params.queue.as_str();
        self.lock().paused.remove(queue);
        self.wake_all();
        Ok(())
    }

    async fn worker_register(&self, info: WorkerInfo) -> Result<()> {
        self.lock().workers.insert(info.id.clone(), info);
        Ok(())
    }

    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> Result<()> {
        let now = self.now();
        let mut st = self.lock();
        let w = st
            .workers
            .get_mut(&params.id)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown worker {}", params.id)))?;
        w.last_seen_at = now;
        w.running = params.running;
        Ok(())
    }

    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> Result<()> {
        let id = params.id.as_str();
        self.lock().workers.remove(id);
        Ok(())
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>> {
        Ok(self.lock().workers.values().cloned().collect())
    }

    async fn leader_acquire(&self, p: LeaderParams) -> Result<bool> {
        let now = self.now();
        let mut st = self.lock();
        let free = st
            .leaders
            .get(&p.name)
            .is_none_or(|l| l.expires_at <= now || l.holder == p.holder);
        if free {
            st.leaders.insert(
                p.name.clone(),
                LeaderInfo {
                    name: p.name,
                    holder: p.holder,
                    expires_at: now + p.ttl.as_millis() as i64,
                },
            );
        }
        Ok(free)
    }

    async fn leader_renew(&self, p: LeaderParams) -> Result<bool> {
        let now = self.now();
        let mut st = self.lock();
        match st.leaders.get_mut(&p.name) {
            Some(l) if l.holder == p.holder && l.expires_at > now => {
                l.expires_at = now + p.ttl.as_millis() as i64;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn leader_release(&self, p: LeaderParams) -> Result<()> {
        let mut st = self.lock();
        if st
            .leaders
            .get(&p.name)
            .is_some_and(|l| l.holder == p.holder)
        {
            st.leaders.remove(&p.name);
        }
        Ok(())
    }

    async fn leader_get(&self, params: LeaderGetParams) -> Result<Option<LeaderInfo>> {
        let name = params.name.as_str();
        let now = self.now();
        Ok(self
            .lock()
            .leaders
            .get(name)
            .filter(|l| l.expires_at > now)
            .cloned())
    }
}
