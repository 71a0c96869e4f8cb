//! `store_import`: writing records back verbatim (restore, migrate), and the rules every
//! backend applies to what it imports, written once here.
//!
//! `job_enqueue` cannot restore a store: it gives every job a fresh state, attempt count,
//! timestamps and history. An import stores each job as it was read (`job_get` /
//! `job_list`), in any state, and indexes it exactly as a natively stored job of that state
//! (ready and scheduled sets, dependency counters and edges, the unique-key index, workflow
//! membership), so it is claimed, unblocked and promoted like any other.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::clock::Millis;
use crate::model::{
    ErrorKind, ErrorRecord, Job, JobState, Limits, NewJob, ScheduleRun, StoredSchedule,
    WorkflowRecord,
};

/// What an import does with an id (job id, workflow id, schedule name) already stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// An id already stored fails the call (`InvalidArgument`, naming it) before anything
    /// of the call is written.
    #[default]
    Refuse,
    /// An id already stored is left as it is and reported in [`ImportReport::skipped`];
    /// the rest is imported. Nothing stored is ever overwritten.
    SkipExisting,
}

/// A queue's own state, as an import carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueImport {
    pub name: String,
    pub paused: bool,
    /// The queue's limits. `store_import` does not apply them (they are set through
    /// `queue_update`, which checks them); `quern restore` does, on queues that have none.
    #[serde(default)]
    pub settings: crate::model::QueueSettings,
}

/// A schedule with its run history (newest first, as `schedule_runs` returns it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleImport {
    pub schedule: StoredSchedule,
    #[serde(default)]
    pub runs: Vec<ScheduleRun>,
}

/// `store_import`: records to store verbatim. Applied in this order: queues, jobs,
/// workflow records, schedules.
///
/// - **Queues** unknown to the store are created with their `paused` flag; a known queue is
///   left as it is.
/// - **Jobs** are stored with every field as given (state, attempt, epoch, timestamps,
///   errors, result and its expiry, progress, checkpoint, dependencies and trigger, unique
///   key, workflow id), after [`import_image`]: a `running` job's lease belongs to a worker
///   of the old store, so it is re-delivered as the rescuer would (see there). Each job is
///   checked as an enqueue checks it ([`check_import`]). A `blocked` job's dependencies must be
///   stored already or come earlier in `jobs` (`InvalidJob` "unknown dependency" otherwise;
///   a job in another state may name dependencies pruned before the copy); where
///   `dependencies_across_queues` is false they must be in its queue. A `blocked` job gets
///   its dependency counters from its dependencies' states in this store, and when those
///   already settle its trigger it is settled as an enqueue would settle it (queued,
///   scheduled or skipped): a copy taken while workers ran may have read the dependent
///   before its dependency finished.
/// - **Workflow records** are stored as given (revision, state, phase, tasks); on a store
///   that keeps a workflow with its jobs (Redis Cluster), import the jobs first.
/// - **Schedules** are stored as given (revision, watermark, runs, `last_*`) with their run
///   history (at most [`ScheduleRun::HISTORY`] runs are kept).
#[derive(Clone, Debug, Default)]
pub struct ImportParams {
    pub mode: ImportMode,
    pub queues: Vec<QueueImport>,
    pub jobs: Vec<Job>,
    pub workflows: Vec<WorkflowRecord>,
    pub schedules: Vec<ScheduleImport>,
}

/// Which kind of record an [`ImportSkip`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportItem {
    Job,
    Workflow,
    Schedule,
}

/// A record not imported because its id was already stored ([`ImportMode::SkipExisting`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSkip {
    pub item: ImportItem,
    /// The job id, workflow id or schedule name.
    pub id: String,
}

/// What `store_import` stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Queues created (known queues are not counted).
    pub queues: usize,
    pub jobs: usize,
    pub workflows: usize,
    pub schedules: usize,
    pub skipped: Vec<ImportSkip>,
}

impl ImportReport {
    /// Adds another call's report to this one.
    pub fn add(&mut self, other: ImportReport) {
        self.queues += other.queues;
        self.jobs += other.jobs;
        self.workflows += other.workflows;
        self.schedules += other.schedules;
        self.skipped.extend(other.skipped);
    }
}

/// The refusal of an id already stored, in [`ImportMode::Refuse`].
pub fn import_taken(item: ImportItem, id: &str) -> Error {
    let what = match item {
        ImportItem::Job => "a job with id",
        ImportItem::Workflow => "a workflow with id",
        ImportItem::Schedule => "a schedule named",
    };
    Error::InvalidArgument(format!("{what} {id} is already stored"))
}

/// Checks an imported job as an enqueue checks a new one ([`NewJob::validate`]: kind, queue
/// name, payload size, attempts, unique key, dependencies, tags), plus what only a stored
/// job has: its result and checkpoint within the payload limit.
pub fn check_import(job: &Job, limits: &Limits) -> Result<(), Error> {
    let as_new = as_new_job(job);
    as_new.validate(limits)?;
    limits.check_stored(job.result.as_ref())?;
    limits.check_stored(job.checkpoint.as_ref())?;
    Ok(())
}

/// The fields of a stored job that a new job has, as a [`NewJob`] due at the job's `run_at`
/// (for the checks of [`check_import`], and for backends that encode what enqueue writes).
pub fn as_new_job(job: &Job) -> NewJob {
    NewJob {
        id: job.id,
        kind: job.kind.clone(),
        queue: job.queue.clone(),
        priority: job.priority,
        payload: job.payload.clone(),
        max_attempts: job.max_attempts,
        retry: job.retry.clone(),
        run_at: Some(job.run_at),
        delay: None,
        timeout: job.timeout,
        unique_key: job.unique_key.clone(),
        unique_for: job.unique_for,
        depends_on: job.depends_on.clone(),
        trigger: job.trigger,
        workflow_id: job.workflow_id.clone(),
        tags: job.tags.clone(),
        meta: job.meta.clone(),
        version: job.version,
        result_ttl: job.result_ttl,
        trace: job.trace.clone(),
        group: job.group.clone(),
    }
}

/// The job as an import stores it at `now`. Every state but `running` is kept as it is. A
/// `running` job's lease names a worker of the store it was copied from, which will never
/// report to this one, so it is re-delivered as the rescuer re-delivers an expired lease:
/// `queued` with the attempt that was running counted (and a `lease_expired` entry in its
/// error history), or `dead` when that was its last attempt. The lease is dropped; the
/// epoch is kept (the next claim increments it).
pub fn import_image(mut job: Job, now: Millis) -> Job {
    if job.state != JobState::Running {
        return job;
    }
    let worker = job
        .lease
        .take()
        .map(|l| l.worker_id)
        .unwrap_or_else(|| "?".into());
    job.errors.push(ErrorRecord {
        attempt: job.attempt,
        at: now,
        kind: ErrorKind::LeaseExpired,
        message: format!(
            "running on worker {worker} when the store was copied; delivered again here"
        ),
        claimed_at: None,
        due_at: None,
        retry_at: None,
    });
    if job.attempt >= job.max_attempts {
        job.state = JobState::Dead;
        job.finished_at = Some(now);
    } else {
        job.state = JobState::Queued;
        job.finished_at = None;
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lease, NewJob};

    fn running(attempt: u32, max: u32) -> Job {
        let mut j = Job::from_new(NewJob::new("k", Default::default()), JobState::Running, 10);
        j.attempt = attempt;
        j.max_attempts = max;
        j.lease_epoch = 3;
        j.lease = Some(Lease {
            worker_id: "w1".into(),
            expires_at: 99,
        });
        j
    }

    #[test]
    fn a_running_job_is_delivered_again_with_its_attempt_counted() {
        let j = import_image(running(1, 3), 50);
        assert_eq!(j.state, JobState::Queued);
        assert_eq!((j.attempt, j.lease_epoch, j.lease.clone()), (1, 3, None));
        assert_eq!(j.errors.len(), 1);
        assert_eq!(j.errors[0].kind, ErrorKind::LeaseExpired);
        assert!(j.errors[0].message.contains("w1"), "{:?}", j.errors[0]);
        let last = import_image(running(3, 3), 50);
        assert_eq!((last.state, last.finished_at), (JobState::Dead, Some(50)));
    }

    #[test]
    fn other_states_are_kept() {
        let mut j = running(1, 3);
        j.state = JobState::Blocked;
        j.lease = None;
        assert_eq!(import_image(j.clone(), 50), j);
    }
}
