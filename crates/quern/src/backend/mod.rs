//! The storage seam.
//!
//! **This trait is an internal seam, not a stable API.** It exists so that the client, the
//! worker and the CLI can run on any store picked at run time from a URL
//! (`Arc<dyn Backend>`). Its methods may change in any release; applications should use
//! [`Client`](crate::Client) and [`Worker`](crate::Worker) instead.
//!
//! Rules every implementation follows (and the conformance suite in `quern::testing` checks):
//! - Every state transition is atomic: one SQLite transaction, one Redis script. Never a
//!   read-modify-write across round trips.
//! - Calls that change a running job carry a [`LeaseToken`]; a stale token gets
//!   [`Error::LeaseLost`](crate::Error::LeaseLost) and changes nothing.
//! - Time comes from the backend's injected [`Clock`](crate::Clock), never from the system
//!   clock directly.
//! - Methods are noun-first (`job_claim`, `queue_pause`) and take one params struct.
//! - Batch methods (`job_complete`, `job_fail`, `job_heartbeat`) return one result per item,
//!   in order; one stale item does not fail the others.
//! - Workflow records are changed only by compare-and-set on their revision
//!   (`workflow_update`), so concurrent engines never overwrite each other's decisions.

mod alert_state;
mod delete;
pub mod dlq;
mod events;
mod finished;
mod import;
mod logs;
mod params;
mod prune_bytes;
mod rollups;
mod split;
mod store_maintain;

pub use alert_state::*;
use async_trait::async_trait;
pub use delete::*;
pub use events::*;
pub use finished::*;
pub use import::*;
pub use logs::*;
pub use params::*;
pub use prune_bytes::*;
pub use rollups::*;
pub use split::{ClaimSplit, weighted_order};
pub use store_maintain::*;

use crate::Result;
use crate::model::{Job, JobId, ScheduleRun, StoredSchedule, WorkflowRecord};

/// The answer of the default `workflow_*` methods.
fn no_workflows<B: Backend + ?Sized>(b: &B) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {} backend does not support workflows",
        b.capabilities().name
    ))
}

/// The answer of the default `schedule_*` methods.
fn no_schedules<B: Backend + ?Sized>(b: &B) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {} backend does not support schedules",
        b.capabilities().name
    ))
}

/// The answer of the default `job_log*` methods.
fn no_logs<B: Backend + ?Sized>(b: &B) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {} backend does not store job logs",
        b.capabilities().name
    ))
}

/// The answer of the default `event_*` methods.
fn no_events<B: Backend + ?Sized>(b: &B) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {} backend does not record job events",
        b.capabilities().name
    ))
}

/// The answer of the default `job_finished` and `stats_minutes` methods.
fn no_stats<B: Backend + ?Sized>(b: &B) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {} backend keeps no stats of finished jobs",
        b.capabilities().name
    ))
}

/// A job store. See the module docs: an internal seam, not a stable API.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    // --- jobs -----------------------------------------------------------------------------

    /// Stores new jobs. A job whose unique key matches a live job in its queue is not stored;
    /// its outcome carries the existing id and `duplicate = true`. A job whose dependencies
    /// are not all satisfied starts `blocked` (or `skipped` if they can never be); one with a
    /// future `run_at` starts `scheduled`; otherwise `queued`.
    async fn job_enqueue(&self, params: EnqueueParams) -> Result<EnqueueResults>;

    /// Leases up to `limit` ready jobs (see [`ClaimParams`] for the admission rules).
    async fn job_claim(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>>;

    /// `job_claim`, also saying when a throttled queue admits its next job
    /// ([`ClaimOutcome::next_admission`]): a throttled queue is not "empty", and a worker
    /// sleeps until that time instead of polling. The default (a backend without queue
    /// limits) never reports one.
    async fn job_claim_outcome(&self, params: ClaimParams) -> Result<ClaimOutcome> {
        Ok(ClaimOutcome {
            jobs: self.job_claim(params).await?,
            next_admission: None,
        })
    }

    /// Extends leases; stores progress and checkpoints. Per item: the new lease deadline, or
    /// `LeaseLost`.
    async fn job_heartbeat(&self, params: HeartbeatParams) -> Result<Vec<Result<crate::Millis>>>;

    /// Marks jobs succeeded and, in the same transaction, unblocks (or skips) their
    /// dependents.
    async fn job_complete(&self, params: CompleteParams) -> Result<Vec<Result<()>>>;

    /// Records failed attempts: retry (→ `scheduled`), dead, snooze or cancel. Dependents of
    /// jobs that end dead or cancelled are skipped, transitively, in the same transaction.
    async fn job_fail(&self, params: FailParams) -> Result<Vec<Result<()>>>;

    /// Gives leases back (→ `queued`) without counting the attempt.
    async fn job_release(&self, params: ReleaseParams) -> Result<Vec<Result<()>>>;

    /// Cancels a job that is not yet terminal (a running job's lease is revoked, so its worker
    /// gets `LeaseLost` at its next heartbeat). Dependents are skipped. Returns the job as
    /// stored after the change.
    async fn job_cancel(&self, params: CancelParams) -> Result<Job>;

    /// Changes the priority of a job that is waiting to run (scheduled, queued or blocked;
    /// see [`JobState::is_waiting`](crate::model::JobState::is_waiting)) and nothing else, in
    /// one step: a queued job takes its new place in the claim order at once, a scheduled or
    /// blocked one keeps its state and is ordered by the new priority once it is ready.
    /// Returns the job as stored after the change. A running or finished job is
    /// `InvalidTransition` and an unknown id `JobNotFound`; neither changes anything.
    async fn job_reprioritize(&self, params: JobReprioritizeParams) -> Result<Job>;

    /// One job, or `None`.
    async fn job_get(&self, params: JobGetParams) -> Result<Option<Job>>;

    /// Several jobs, one entry per id in the same order (`None` for an unknown id). The
    /// default calls `job_get` for each; backends override it with one round trip (the
    /// workflow engine reads thousands of fan-out results this way).
    async fn job_get_many(&self, params: JobGetManyParams) -> Result<Vec<Option<Job>>> {
        let ids = params.ids.as_slice();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.job_get(JobGetParams { id: *id }).await?);
        }
        Ok(out)
    }

    /// Jobs matching a filter, newest first.
    async fn job_list(&self, params: ListParams) -> Result<JobPage>;

    /// Moves dead (and, by id, cancelled or skipped) jobs back to `queued` (or `blocked`
    /// while their dependencies are still pending). Returns the ids moved. By id it is all or
    /// nothing: an unknown id (`JobNotFound`), a job in another state (`InvalidTransition`), or
    /// a job whose trigger can no longer be met because its dependencies ended without
    /// success (an input error; retry those first) fails the call and moves none.
    async fn job_retry(&self, params: RetryParams) -> Result<Vec<JobId>>;

    /// Deletes old finished jobs and drops expired results.
    async fn job_prune(&self, params: PruneParams) -> Result<PruneReport>;

    /// Re-delivers jobs whose lease expired: `queued` again (the attempt stays counted), or
    /// `dead` when it was the last attempt (dependents skipped).
    async fn lease_rescue(&self, params: RescueParams) -> Result<RescueReport>;

    /// Waits until one of the queues may have claimable work (an enqueue, a due scheduled
    /// job, a resume) or the timeout passes. Spurious wake-ups are allowed; missing work is
    /// not (poll at least every `timeout`).
    async fn work_wait(&self, params: WaitParams) -> Result<()>;

    // --- workflows ------------------------------------------------------------------------
    // A backend that reports `capabilities().workflows` implements all five (and the `Skip`
    // and `Spawn` failure actions); the defaults answer `Unsupported` for one that does not.

    /// Stores a workflow record (state `running`, phase `tasks`, revision 1) and all of its
    /// task jobs in one transaction: either everything is stored or nothing is. Refused
    /// (nothing stored) when the id is taken, the record is invalid, a job is invalid or
    /// does not carry the workflow's id, or a task maps to a job not in `jobs`.
    async fn workflow_create(&self, params: WorkflowCreateParams) -> Result<WorkflowRecord> {
        let _ = params;
        Err(no_workflows(self))
    }

    /// One workflow record, or `None`.
    async fn workflow_get(&self, params: WorkflowParams) -> Result<Option<WorkflowRecord>> {
        let _ = params;
        Err(no_workflows(self))
    }

    /// Workflow records, newest first (by id), optionally only those in one state. Finding
    /// the running ones must not cost a scan of every workflow.
    async fn workflow_list(&self, params: WorkflowListParams) -> Result<WorkflowPage> {
        let _ = params;
        Err(no_workflows(self))
    }

    /// Changes a workflow record, compare-and-set on its revision, with the job changes
    /// that go with it, atomically (see [`WorkflowUpdateParams`]). Returns the record as
    /// stored after the change. `WorkflowNotFound` for an unknown id; `Conflict` when the
    /// revision moved.
    async fn workflow_update(&self, params: WorkflowUpdateParams) -> Result<WorkflowRecord> {
        let _ = params;
        Err(no_workflows(self))
    }

    /// How many of the workflow's jobs (tasks, fan-out instances, compensations) are in
    /// each state. Costs O(jobs of the workflow) at most, never a scan of all jobs.
    /// `WorkflowNotFound` for an unknown id.
    async fn workflow_counts(&self, params: WorkflowParams) -> Result<crate::model::StateCounts> {
        let _ = params;
        Err(no_workflows(self))
    }

    // --- schedules ------------------------------------------------------------------------
    // A backend that reports `capabilities().schedules` implements all seven; the defaults
    // answer `Unsupported` for one that does not. Every spec is checked with
    // `ScheduleSpec::validate` before anything is stored.

    /// Stores a schedule (revision 1, watermark now) or replaces the spec of the stored one
    /// with this name (revision + 1, watermark moved to now if it was earlier; runs, history
    /// and `last_*` kept). The spec already stored changes nothing.
    async fn schedule_upsert(&self, params: ScheduleUpsertParams) -> Result<ScheduleUpserted> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// One schedule, or `None`.
    async fn schedule_get(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// Every schedule, by name.
    async fn schedule_list(&self) -> Result<Vec<StoredSchedule>> {
        Err(no_schedules(self))
    }

    /// Removes a schedule and its history (its jobs stay); returns it as it was, or `None`
    /// when no schedule had the name.
    async fn schedule_delete(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// Pauses a schedule: no scheduled run fires until it is resumed (revision + 1 unless
    /// already paused). `ScheduleNotFound` for an unknown name.
    async fn schedule_pause(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// Resumes a paused schedule: the watermark moves to now, so ticks that passed while it
    /// was paused never fire (revision + 1 unless not paused). `ScheduleNotFound` for an
    /// unknown name.
    async fn schedule_resume(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// Records one run and enqueues its job, atomically, at most once per tick however many
    /// callers race (see [`FireOutcome`]). `ScheduleNotFound` for an unknown name; an invalid
    /// job is refused and nothing is recorded.
    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        let _ = params;
        Err(no_schedules(self))
    }

    /// A schedule's latest runs, newest first (by tick, then record order).
    /// `ScheduleNotFound` for an unknown name.
    async fn schedule_runs(&self, params: ScheduleRunsParams) -> Result<Vec<ScheduleRun>> {
        let _ = params;
        Err(no_schedules(self))
    }

    // --- job logs (operations) -------------------------------------------------------------
    // A backend that reports `capabilities().logs` implements both; the defaults answer
    // `Unsupported`. Lines live with their job: deleting or pruning a job deletes its lines.
    // See `backend/logs.rs` for the caps (per job, oldest lines dropped first).

    /// Appends lines to the logs of several jobs, each item's lines in order, then applies
    /// `limits` to each job touched: while a job keeps more than `max_lines` lines or more than
    /// `max_bytes` bytes of message text, its oldest line is dropped and counted in its
    /// `dropped`. Lines for a job that does not exist (never stored, or pruned) are dropped
    /// silently: a worker's log writer may flush after the job was pruned. Not fenced by a
    /// lease: a line is a record of what an attempt did, kept even when that attempt lost
    /// its lease. Costs O(lines appended + lines dropped).
    async fn job_log_append(&self, params: LogAppendParams) -> Result<()> {
        let _ = params;
        Err(no_logs(self))
    }

    /// A job's kept lines with `seq > after`, oldest first, at most `limit`, and how many
    /// were dropped by the caps. `JobNotFound` for an unknown job. Costs O(lines returned).
    async fn job_logs(&self, params: JobLogsParams) -> Result<JobLogPage> {
        let _ = params;
        Err(no_logs(self))
    }

    // --- stats (operations) ----------------------------------------------------------------
    // A backend that reports `capabilities().stats` implements it; the default answers
    // `Unsupported`. `quern::stats::summarize` turns the answer into the report.

    /// Every job in a terminal state with `finished_at >= since` (and in `queue`, of `kind`,
    /// when given), in no particular order. Reads only such jobs, through an index of
    /// finished jobs by time (SQLite `jobs_finished`, Redis the per-state sets by
    /// `finished_at`), never a scan of all jobs: it costs O(jobs finished since the cutoff)
    /// — on Redis each of those jobs' hashes is read, and a `kind` filter is applied after.
    async fn job_finished(&self, params: FinishedParams) -> Result<Vec<FinishedJob>> {
        let _ = params;
        Err(no_stats(self))
    }

    /// Outcomes per queue and minute since `params.since` (see [`MinuteCounts`]), sorted by
    /// minute then queue. Counted by the store in the transition itself (one upsert per
    /// batch and queue-minute on SQLite, one `HINCRBY` per script and queue on Redis) and
    /// kept [`ROLLUP_KEEP_MS`]; reading costs O(queues × minutes with outcomes), never a
    /// read of jobs. A backend with `capabilities().stats` implements it.
    async fn stats_minutes(&self, params: MinutesParams) -> Result<Vec<MinuteCounts>> {
        let _ = params;
        Err(no_stats(self))
    }

    // --- alerts and DLQ delete (operations) -----------------------------------------------
    // Both stores implement these; the defaults answer `Unsupported`.

    /// Every stored alert rule state (see [`AlertStateRecord`]), in no particular order.
    async fn alert_state_list(&self) -> Result<Vec<AlertStateRecord>> {
        Err(crate::Error::Unsupported(format!(
            "the {} backend does not store alert states",
            self.capabilities().name
        )))
    }

    /// Stores one rule's state by compare-and-set: returns the new version, or `None` (and
    /// changes nothing) when the stored version is not `params.expect`.
    async fn alert_state_put(&self, params: AlertStatePutParams) -> Result<Option<u64>> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend does not store alert states",
            self.capabilities().name
        )))
    }

    /// Deletes finished jobs by id, all or nothing (see [`JobDeleteParams`]), with their
    /// logs, dependency edges and unique keys, exactly as the pruner does.
    async fn job_delete(&self, params: JobDeleteParams) -> Result<JobDeleteReport> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend cannot delete jobs",
            self.capabilities().name
        )))
    }

    // --- job events (operations) ----------------------------------------------------------
    // Both stores implement these; the defaults answer `Unsupported`. Every transition
    // appends its stream record atomically with itself; a timeline is derived when read
    // (see `model::JobEvent` and `model::job_timeline`).

    /// A job's events, oldest first: `model::job_timeline` over the job and the lines its
    /// store keeps with it (one job read, never a scan). An unknown job has none.
    async fn event_list(&self, params: EventListParams) -> Result<Vec<crate::model::JobEvent>> {
        let _ = params;
        Err(no_events(self))
    }

    /// Events after a cursor, oldest first, filtered (see [`EventReadParams`]).
    async fn event_read(&self, params: EventReadParams) -> Result<EventPage> {
        let _ = params;
        Err(no_events(self))
    }

    /// Applies the retention caps; returns how many events were dropped (Redis: an
    /// estimate for the count cap, which trims whole stream nodes).
    async fn event_prune(&self, params: EventPruneParams) -> Result<u64> {
        let _ = params;
        Err(no_events(self))
    }

    // --- store upkeep (operations) ---------------------------------------------------------

    /// Periodic upkeep of the store's own files (`maintenance::StoreUpkeep` calls it):
    /// statistics for the query planner, copying a write-ahead log back. A store does what
    /// applies to it and reports what it did; the default, for a store that needs none
    /// (Redis), does nothing and succeeds.
    async fn store_maintain(&self, params: StoreMaintainParams) -> Result<StoreMaintainReport> {
        let _ = params;
        Ok(StoreMaintainReport::default())
    }

    // --- import (backup, restore, migrate) -------------------------------------------------
    // One method so that restore and migrate can write back what the reads above return.

    /// Stores records verbatim, in any state, indexed as natively stored ones (see
    /// [`ImportParams`] for the order, the dependency rule and what happens to `running`
    /// jobs, and [`ImportMode`] for ids already stored). Returns what was stored and what
    /// was skipped. Not atomic across calls; on a backend whose state transitions are
    /// scripts, one call may be several steps, but nothing is written before every id of the
    /// call was checked in `Refuse` mode. The default answers `Unsupported`.
    async fn store_import(&self, params: ImportParams) -> Result<ImportReport> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend does not support import",
            self.capabilities().name
        )))
    }

    /// The store's size budget and its use, when one is configured (Redis `max_memory`);
    /// `None` otherwise. Cheap: it answers from a sample at most a few hundred ms old.
    async fn store_budget(&self) -> Result<Option<StoreBudget>> {
        Ok(None)
    }

    // --- queues ---------------------------------------------------------------------------

    /// Every known queue with its counts.
    async fn queue_list(&self) -> Result<Vec<crate::backend::QueueInfo>>;

    /// One queue; `QueueNotFound` if it was never used.
    async fn queue_stats(&self, params: QueueParams) -> Result<QueueInfo>;

    /// Stops claims from a queue (jobs stay `queued`). `QueueNotFound` if it was never used.
    async fn queue_pause(&self, params: QueueParams) -> Result<()>;

    /// Resumes a paused queue.
    async fn queue_resume(&self, params: QueueParams) -> Result<()>;

    /// A queue's settings and the current use of its limits. `QueueNotFound` if the queue
    /// was never used nor configured.
    async fn queue_get(&self, params: QueueParams) -> Result<crate::model::QueueUsage> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend has no queue settings",
            self.capabilities().name
        )))
    }

    /// Changes some of a queue's settings in one step (creating the queue if it was never
    /// used, so limits can be set before the first job) and returns them as stored. Checked
    /// with `QueueSettings::validate` first: a bad value is refused and changes nothing.
    /// Changing the rate limit starts it with a full bucket.
    async fn queue_update(&self, params: QueueUpdateParams) -> Result<crate::model::QueueSettings> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend has no queue settings",
            self.capabilities().name
        )))
    }

    // --- workers --------------------------------------------------------------------------

    /// Registers (or re-registers) a worker.
    async fn worker_register(&self, info: WorkerInfo) -> Result<()>;

    /// Records that a worker is alive.
    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> Result<()>;

    /// Removes a worker (clean shutdown).
    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> Result<()>;

    /// Registered workers, most recently seen first.
    async fn worker_list(&self) -> Result<Vec<WorkerInfo>>;

    // --- leader lease ---------------------------------------------------------------------

    /// Takes the named lease if it is free, expired, or already ours (then it is extended).
    /// Returns whether we hold it now.
    async fn leader_acquire(&self, params: LeaderParams) -> Result<bool>;

    /// Extends the lease if we still hold it. Returns whether we do.
    async fn leader_renew(&self, params: LeaderParams) -> Result<bool>;

    /// Gives the lease up if we hold it.
    async fn leader_release(&self, params: LeaderParams) -> Result<()>;

    /// The current holder, if the lease is held and not expired.
    async fn leader_get(&self, params: LeaderGetParams) -> Result<Option<LeaderInfo>>;

    // --- retention by bytes ---------------------------------------------------------------

    /// Deletes the oldest finished jobs (by `finished_at`, as `job_prune` deletes them) while
    /// the finished jobs' bytes are over `max_bytes`, at most `limit` per call. Reads a
    /// maintained total, so a call within the budget reads no job. See [`PruneBytesParams`]
    /// for what counts. The default answers `Unsupported`.
    async fn job_prune_bytes(&self, params: PruneBytesParams) -> Result<PruneBytesReport> {
        let _ = params;
        Err(crate::Error::Unsupported(format!(
            "the {} backend has no retention by bytes",
            self.capabilities().name
        )))
    }
}
