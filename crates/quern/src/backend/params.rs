//! Parameter and result structs of the [`Backend`](super::Backend) methods: one struct per
//! call, so adding a field touches one place.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::model::{
    ErrorKind, Job, JobId, JobState, NewJob, NewWorkflow, Payload, Progress, StateCounts,
    WorkflowPhase, WorkflowRecord, WorkflowState,
};

/// How a batch enqueue treats bad items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// All or nothing: one invalid job (bad field, unknown dependency, oversized payload)
    /// fails the whole call and inserts nothing.
    #[default]
    Atomic,
    /// Each job on its own: the valid ones are stored, the invalid ones get an error each.
    BestEffort,
}

/// `job_enqueue`: store new jobs.
#[derive(Clone, Debug)]
pub struct EnqueueParams {
    pub jobs: Vec<NewJob>,
    pub mode: BatchMode,
}

/// What happened to one enqueued job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueOutcome {
    /// The stored job's id: the new job's, or the existing live job's when the unique key
    /// matched.
    pub id: JobId,
    /// The state the job is in now.
    pub state: JobState,
    /// True when nothing was inserted because the unique key matched a live job.
    pub duplicate: bool,
}

/// Result of `job_enqueue`: one entry per input job, in input order. In atomic mode every
/// entry is `Ok` (an invalid job fails the whole call instead).
pub type EnqueueResults = Vec<Result<EnqueueOutcome, crate::Error>>;

/// A queue to claim from and its weight in the claim split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueWeight {
    pub queue: String,
    /// Relative share of claims when several listed queues have ready jobs (default 1).
    pub weight: u32,
}

impl QueueWeight {
    pub fn new(queue: impl Into<String>, weight: u32) -> Self {
        QueueWeight {
            queue: queue.into(),
            weight,
        }
    }
}

/// `job_claim`: lease up to `limit` ready jobs.
///
/// Admission, decided atomically in the backend: paused queues are skipped; each job taken
/// goes to a queue drawn at random in proportion to the weights among the listed queues that
/// still have ready jobs, by the rule of [`ClaimSplit`](super::ClaimSplit) (a queue named
/// twice counts once with its first weight; a weight-0 queue is never claimed from, so a
/// claim whose queues all weigh 0 takes nothing); within a queue the order is priority, then
/// `run_at`, then id.
/// Scheduled jobs whose `run_at` has passed are promoted first, so they are claimable exactly
/// at `run_at`. A queue's limits ([`QueueSettings`](crate::model::QueueSettings)) are applied
/// in the same step: no more jobs than its concurrency cap leaves room for (running jobs
/// across every worker), and no more than its rate limit's tokens (one per job leased,
/// [`RateLimit::admit`](crate::model::RateLimit::admit)); a throttled queue's share goes to
/// the other queues as for an empty one. `work_wait` applies the same admission.
#[derive(Clone, Debug)]
pub struct ClaimParams {
    /// The claiming worker (recorded in the lease).
    pub worker_id: String,
    pub queues: Vec<QueueWeight>,
    pub limit: usize,
    /// Lease length; the job is re-delivered if not heartbeated within it.
    pub lease: Duration,
    /// Only jobs strictly more urgent than this priority (a numerically lower one) are
    /// admitted; `None` admits every priority. A worker whose slots are busy uses it to take
    /// an urgent job ahead of the less urgent ones it already holds (`work_wait` takes the
    /// same bound, so "is there work?" and "take the work" agree).
    pub more_urgent_than: Option<crate::model::Priority>,
}

/// What `job_claim_outcome` answers: the jobs leased and, when a listed queue with ready
/// jobs held some back by its rate limit, when its next job is admitted.
#[derive(Clone, Debug, Default)]
pub struct ClaimOutcome {
    pub jobs: Vec<ClaimedJob>,
    /// The earliest time a throttled listed queue admits a job again (its next token);
    /// `None` when no queue was throttled (empty, paused, only capped, or everything asked
    /// for was taken). A queue at its concurrency cap frees when a running job ends, which
    /// has no time: it is not counted here.
    pub next_admission: Option<Millis>,
}

/// The fencing token of one claim. Every call that changes a running job carries it; the
/// backend accepts the call only if the job is still `running` under this `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseToken {
    pub job_id: JobId,
    /// The job's lease epoch at claim time. Each claim increments it, so a token from an
    /// earlier claim is stale forever.
    pub epoch: u64,
    /// The attempt number this claim started (1-based). Informational: snoozes and
    /// give-backs do not count an attempt but do get a new epoch.
    pub attempt: u32,
}

impl std::fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.job_id, self.epoch, self.attempt)
    }
}

impl std::str::FromStr for LeaseToken {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        let bad = || crate::Error::InvalidArgument(format!("{s:?} is not a lease token"));
        let mut it = s.rsplitn(3, '.');
        let attempt = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let epoch = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let job_id = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        Ok(LeaseToken {
            job_id,
            epoch,
            attempt,
        })
    }
}

/// A job handed to a worker.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The job as stored after the claim (state `running`, `attempt` incremented, lease set,
    /// `checkpoint` holding the last saved checkpoint).
    pub job: Job,
    pub token: LeaseToken,
}

impl ClaimedJob {
    /// What a claim makes of a ready job, the one rule every backend's returned image
    /// follows (the store itself applies the same changes in its transaction): `running`,
    /// the attempt and the fencing epoch one up, leased to `worker_id` until `expires_at`,
    /// `claimed_at = now`, no `started_at` yet (the worker reports it with the outcome); the
    /// token carries the new epoch and attempt.
    pub fn from_ready(mut job: Job, worker_id: &str, expires_at: Millis, now: Millis) -> Self {
        job.state = crate::model::JobState::Running;
        job.attempt += 1;
        job.lease_epoch += 1;
        job.lease = Some(crate::model::Lease {
            worker_id: worker_id.to_string(),
            expires_at,
        });
        job.claimed_at = Some(now);
        job.started_at = None;
        let token = LeaseToken {
            job_id: job.id,
            epoch: job.lease_epoch,
            attempt: job.attempt,
        };
        ClaimedJob { job, token }
    }
}

/// One lease to extend, optionally with progress and a checkpoint.
#[derive(Clone, Debug)]
pub struct HeartbeatItem {
    pub token: LeaseToken,
    pub progress: Option<Progress>,
    pub checkpoint: Option<Payload>,
}

/// `job_heartbeat`: extend leases (and store progress / checkpoints).
#[derive(Clone, Debug)]
pub struct HeartbeatParams {
    pub items: Vec<HeartbeatItem>,
    /// New lease length from now.
    pub lease: Duration,
}

/// One successful completion.
#[derive(Clone, Debug)]
pub struct Completion {
    pub token: LeaseToken,
    pub result: Option<Payload>,
    /// Keep the result this long; `None` keeps it until the job is pruned.
    pub result_ttl: Option<Duration>,
    /// When the handler of this attempt started (the worker's clock), stored as the job's
    /// `started_at`; later than `claimed_at` by however long the job waited in the worker's
    /// local buffer. A time after the backend's own `now` is stored as `now`. `None` leaves
    /// `started_at` unset (no handler ran).
    pub started_at: Option<Millis>,
}

/// `job_complete`: mark jobs succeeded (in one transaction per backend call where possible)
/// and unblock their dependents in the same transaction.
#[derive(Clone, Debug)]
pub struct CompleteParams {
    pub items: Vec<Completion>,
}

/// What the handler's failure asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum FailAction {
    /// Retry at `retry_at` if attempts remain, otherwise dead. `retry_at = None` means the
    /// retry policy said "no more retries": dead.
    Retry { retry_at: Option<Millis> },
    /// Dead now.
    Dead,
    /// Run again at `run_at`, the attempt not counted.
    Snooze { run_at: Millis },
    /// A handler's [`TaskError::RateLimited`](crate::model::TaskError::RateLimited): snoozed
    /// to `run_at` (the attempt not counted, nothing in the error history), and in the same
    /// step the job's queue admits no job of its group until `run_at`, or, when the job has
    /// no group (or the "" group), no job of its kind. The hold only ever moves later.
    RateLimited { run_at: Millis },
    /// Cancelled.
    Cancel,
    /// Skipped: the job decided, when it came to run, that it must not (a workflow
    /// condition was false). `running → skipped`; the attempt is not counted; the
    /// failure's message is recorded in the error history with [`ErrorKind::Skipped`] as
    /// the reason; dependents are settled as for any skip (transitively, in the same
    /// transaction).
    Skip,
    /// Hands the work to new child jobs and waits for them (a workflow's `for_each`
    /// fan-out). In one transaction: the children are stored (as an atomic batch: one
    /// invalid child fails this item and stores nothing), and the job moves `running →
    /// blocked` with its `depends_on` replaced by the children's ids (in the given order),
    /// its trigger set to `all_done`, and its `checkpoint` set to `checkpoint` when given
    /// (so its next attempt knows it already spawned). The attempt is not counted and
    /// nothing is added to the error history. When every child is terminal the job is
    /// `queued` again in the transaction that finishes the last one (at once, if they all
    /// already are), and its next claim sees the children as its `depends_on`. Children
    /// finishing cost O(1) each, as for any dependency.
    Spawn {
        children: Vec<NewJob>,
        checkpoint: Option<Payload>,
    },
}

/// One failed (or snoozed, or self-cancelled) attempt.
#[derive(Clone, Debug)]
pub struct Failure {
    pub token: LeaseToken,
    pub action: FailAction,
    /// Recorded in the job's error history (not for snoozes).
    pub error_kind: ErrorKind,
    pub message: String,
    /// When the handler of this attempt started, as in [`Completion::started_at`]. Ignored
    /// by the workflow actions (`Skip`, `Spawn`), which run no handler.
    pub started_at: Option<Millis>,
}

/// `job_fail`.
#[derive(Clone, Debug)]
pub struct FailParams {
    pub items: Vec<Failure>,
}

/// `job_release`: give leases back without counting an attempt (graceful shutdown).
#[derive(Clone, Debug)]
pub struct ReleaseParams {
    pub tokens: Vec<LeaseToken>,
}

/// `job_cancel`.
#[derive(Clone, Debug)]
pub struct CancelParams {
    pub id: JobId,
    pub reason: Option<String>,
}

/// `job_reprioritize`: give a job that is waiting to run (scheduled, queued or blocked) a new
/// priority. It takes its place in the claim order at once (a queued job) or when it becomes
/// ready (a scheduled or blocked one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobReprioritizeParams {
    pub id: JobId,
    pub priority: crate::model::Priority,
}

/// `job_list` filters. Every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    pub queue: Option<String>,
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub workflow_id: Option<String>,
}

/// `job_list`: newest first, paged by id.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    pub filter: JobFilter,
    pub limit: usize,
    /// Continue after this id (exclusive): pass the previous page's `next`.
    pub before: Option<JobId>,
}

/// A page of `job_list`.
#[derive(Clone, Debug)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// The cursor for the next page, if there may be one.
    pub next: Option<JobId>,
}

/// Which jobs `job_retry` moves back to `queued`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryTarget {
    /// These jobs, each of which must be dead, cancelled or skipped (an error otherwise).
    Ids(Vec<JobId>),
    /// Every dead job matching (queue and kind optional): the DLQ replay.
    Dead {
        queue: Option<String>,
        kind: Option<String>,
    },
}

/// `job_retry`: replay from the DLQ / retry finished jobs. The attempt count restarts at 0;
/// the error history is kept.
#[derive(Clone, Debug)]
pub struct RetryParams {
    pub target: RetryTarget,
    /// At most this many (for filters).
    pub limit: usize,
}

/// `workflow_create`: store a workflow record and all of its task jobs, atomically.
#[derive(Clone, Debug)]
pub struct WorkflowCreateParams {
    pub workflow: NewWorkflow,
    /// The task jobs, dependencies before dependents (an atomic batch). Each must carry
    /// `workflow_id = workflow.id`.
    pub jobs: Vec<NewJob>,
}

impl WorkflowCreateParams {
    /// The checks every backend makes before it stores anything: the record is valid, every
    /// job carries this workflow's id, and every task maps to one of the jobs.
    pub fn check(&self) -> Result<(), crate::Error> {
        let w = &self.workflow;
        w.validate()?;
        check_workflow_membership(&w.id, &self.jobs)?;
        if let Some((task, job)) = w
            .tasks
            .iter()
            .find(|(_, job)| !self.jobs.iter().any(|j| j.id == **job))
        {
            return Err(crate::Error::InvalidArgument(format!(
                "task {task:?} maps to job {job}, which is not among the workflow's jobs"
            )));
        }
        Ok(())
    }
}

/// Jobs must belong to workflow `id`; reports the first that does not, by batch index.
/// (Backends check task jobs and compensation jobs with it.)
pub fn check_workflow_membership(id: &str, jobs: &[NewJob]) -> Result<(), crate::Error> {
    match jobs
        .iter()
        .position(|j| j.workflow_id.as_deref() != Some(id))
    {
        Some(i) => Err(crate::Error::InvalidJob {
            index: Some(i),
            reason: format!("a job of workflow {id} must carry workflow_id {id:?}"),
        }),
        None => Ok(()),
    }
}

/// Which of a workflow's jobs `workflow_update` cancels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelScope {
    /// Jobs that have not started: scheduled, queued and blocked (fail-fast).
    NotStarted,
    /// Every job that is not terminal; running jobs lose their lease, so their workers are
    /// told to stop at their next heartbeat (an operator's cancel).
    All,
}

/// `workflow_update`: change a workflow record, compare-and-set on its revision, together
/// with the job changes that go with the decision, all in one transaction.
///
/// The update applies only if the stored revision still equals `revision`; otherwise it
/// fails with [`Error::Conflict`](crate::Error::Conflict) and changes nothing (re-read the
/// record and decide again). On success the revision goes up by one and `updated_at` is
/// set; `finished_at` is set when the new state is final and cleared when it is `running`.
/// Effects apply in this order: `cancel`, `retry`, `compensations`, then the record fields.
#[derive(Clone, Debug)]
pub struct WorkflowUpdateParams {
    pub id: String,
    /// The revision the caller read.
    pub revision: u64,
    /// The new state, if it changes.
    pub state: Option<WorkflowState>,
    /// The new phase, if it changes.
    pub phase: Option<WorkflowPhase>,
    /// Sets the error text (`Some(None)` clears it).
    pub error: Option<Option<String>>,
    /// Cancels the workflow's jobs in this scope. Every job in scope ends `cancelled` (not
    /// `skipped` because a dependency was cancelled first); dependents outside the scope
    /// settle as for any cancel.
    pub cancel: Option<CancelScope>,
    /// Moves these jobs (each dead, cancelled or skipped, of this workflow, listed
    /// dependencies first) back as `job_retry` by id does, all or nothing.
    pub retry: Vec<JobId>,
    /// Stores these jobs (an atomic batch, each carrying this workflow's id) and appends
    /// their ids to the record's `compensations`.
    pub compensations: Vec<NewJob>,
}

impl WorkflowUpdateParams {
    /// An update of workflow `id` at `revision` that changes nothing yet.
    pub fn new(id: impl Into<String>, revision: u64) -> Self {
        WorkflowUpdateParams {
            id: id.into(),
            revision,
            state: None,
            phase: None,
            error: None,
            cancel: None,
            retry: Vec::new(),
            compensations: Vec::new(),
        }
    }
}

/// `workflow_list`: newest first, paged by id.
#[derive(Clone, Debug, Default)]
pub struct WorkflowListParams {
    /// Only workflows in this state.
    pub state: Option<WorkflowState>,
    pub limit: usize,
    /// Continue after this id (exclusive): pass the previous page's `next`.
    pub before: Option<String>,
}

/// A page of `workflow_list`.
#[derive(Clone, Debug)]
pub struct WorkflowPage {
    pub workflows: Vec<WorkflowRecord>,
    /// The cursor for the next page, if there may be one.
    pub next: Option<String>,
}

/// `lease_rescue`: re-deliver jobs whose lease expired, and those held by lost workers.
#[derive(Clone, Debug, Default)]
pub struct RescueParams {
    pub limit: usize,
    /// Workers found lost (their heartbeat stopped, [`WorkerInfo::state`]): every lease one
    /// of them holds counts as expired now, so its jobs come back without waiting for the
    /// lease to run out. Such a job's error entry has kind
    /// [`WorkerLost`](ErrorKind::WorkerLost) (or `LeaseExpired` when the lease had expired
    /// anyway). Empty: only expired leases are rescued.
    pub lost_workers: Vec<String>,
}

/// What the rescuer did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescueReport {
    /// Back to `queued` (attempt counted).
    pub requeued: Vec<JobId>,
    /// Out of attempts: `dead`.
    pub dead: Vec<JobId>,
}

/// `job_prune`: delete old finished jobs and drop expired results.
#[derive(Clone, Debug, Default)]
pub struct PruneParams {
    /// Delete terminal jobs in these states that finished before this time.
    pub finished_before: Millis,
    pub states: Vec<JobState>,
    pub limit: usize,
    /// Count only: the report says what the call would delete and drop (with the same
    /// limit), and nothing changes.
    pub dry_run: bool,
    /// Only jobs of these queues (and only their expired results); empty means every queue.
    pub queues: Vec<String>,
    /// Never jobs of these queues (their expired results are still dropped): the pruner's
    /// store-wide pass skips the queues with a retention of their own for the state.
    pub except_queues: Vec<String>,
}

impl PruneParams {
    /// Whether the call covers queue `q`.
    pub fn covers(&self, q: &str) -> bool {
        self.queues.is_empty() || self.queues.iter().any(|x| x == q)
    }

    /// Whether the call deletes finished jobs of queue `q` (it may still drop expired
    /// results of a queue it covers but does not delete jobs from).
    pub fn deletes_from(&self, q: &str) -> bool {
        self.covers(q) && !self.except_queues.iter().any(|x| x == q)
    }
}

/// What the pruner did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub jobs_deleted: u64,
    pub results_expired: u64,
}

/// A store's size budget and how much of it is used (`Backend::store_budget`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreBudget {
    /// Bytes used now (Redis: `used_memory`, sampled at most every few hundred ms; on a
    /// cluster, the fullest master's).
    pub used_bytes: u64,
    /// The configured budget (`[redis] max_memory`).
    pub budget_bytes: u64,
    /// At or over the budget: enqueue answers `Error::StoreFull`.
    pub full: bool,
}

/// A queue and its numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub paused: bool,
    pub counts: StateCounts,
    /// `run_at` of the oldest queued job (how long work has waited), if any.
    pub oldest_queued_at: Option<Millis>,
}

/// A worker as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub capabilities: Vec<String>,
    pub concurrency: u32,
    pub started_at: Millis,
    pub last_seen_at: Millis,
    /// Jobs running at the last heartbeat.
    pub running: u32,
    /// How often this worker promised to heartbeat its record, in milliseconds. A worker
    /// not seen for [`WorkerInfo::LOST_AFTER_BEATS`] intervals is lost: the rescuer
    /// re-delivers its jobs and later removes its record. `None` (a record written before
    /// the field existed) is never judged lost, because nobody knows its interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
}

/// Whether a registered worker is still heartbeating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Seen within [`WorkerInfo::LOST_AFTER_BEATS`] heartbeat intervals (or its interval is
    /// unknown).
    Alive,
    /// Not seen for longer: the process died, hung, or lost the store. Its leases are
    /// rescued early and its record is removed after the rescuer's retention.
    Lost,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Alive => "alive",
            WorkerState::Lost => "lost",
        }
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WorkerInfo {
    /// Missed heartbeats after which a worker counts as lost. Three, so one slow or failed
    /// heartbeat (or two) never condemns a live worker.
    pub const LOST_AFTER_BEATS: u32 = 3;

    /// How long after its last heartbeat this worker counts as lost, if its interval is known.
    pub fn lost_after(&self) -> Option<Duration> {
        self.heartbeat_interval_ms
            .map(|ms| Duration::from_millis(ms.max(1)) * Self::LOST_AFTER_BEATS)
    }

    /// Alive or lost at `now` (by the same clock that stamped `last_seen_at`): lost once
    /// more than [`lost_after`](Self::lost_after) has passed since the last heartbeat.
    pub fn state(&self, now: Millis) -> WorkerState {
        match self.lost_after() {
            Some(after) if now.saturating_sub(self.last_seen_at) > after.as_millis() as i64 => {
                WorkerState::Lost
            }
            _ => WorkerState::Alive,
        }
    }
}

/// `worker_heartbeat`.
#[derive(Clone, Debug)]
pub struct WorkerHeartbeatParams {
    pub id: String,
    pub running: u32,
}

/// `leader_*`: a named, exclusive, expiring lease, for services that must run on one node at a
/// time (today the pruner, `quern.pruner`, and the workflow monitor, `quern.workflows`).
#[derive(Clone, Debug)]
pub struct LeaderParams {
    pub name: String,
    pub holder: String,
    pub ttl: Duration,
}

/// The current holder of a leader lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    pub name: String,
    pub holder: String,
    pub expires_at: Millis,
}

/// `work_wait`: block until one of these queues may have work, or the timeout passes.
#[derive(Clone, Debug)]
pub struct WaitParams {
    pub queues: Vec<String>,
    pub timeout: Duration,
    /// Wait only for work strictly more urgent than this priority (see
    /// [`ClaimParams::more_urgent_than`]); `None` waits for any work.
    pub more_urgent_than: Option<crate::model::Priority>,
}

/// What a backend can and cannot do. The conformance suite skips cases by these flags (and
/// says so), never by backend name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Short name for logs and `quern bench` output ("sqlite", "redis").
    pub name: String,
    /// An atomic batch may span several queues.
    pub atomic_batch_across_queues: bool,
    /// A job may depend on a job in another queue.
    pub dependencies_across_queues: bool,
    /// Enqueues from other processes wake `work_wait` promptly (not only by polling).
    pub cross_process_wakeup: bool,
    /// Workflows: the `workflow_*` methods and the `Skip` and `Spawn` failure actions. A
    /// backend without them answers `Unsupported` (the trait's defaults do).
    pub workflows: bool,
    /// Recurring schedules: the `schedule_*` methods. A backend without them answers
    /// `Unsupported` (the trait's defaults do).
    pub schedules: bool,
    /// Queue settings and the limits they set (`queue_get`, `queue_update`, caps and rate
    /// limits in the claim). A backend without them answers `Unsupported`.
    pub queue_limits: bool,
    /// Per-job logs: `job_log_append` and `job_logs`. A backend without them answers
    /// `Unsupported` (the trait's defaults do).
    pub logs: bool,
    /// `job_finished` (finished jobs since a time, for `quern stats`) and `stats_minutes`
    /// (outcomes per queue and minute). A backend without them answers `Unsupported` (the
    /// trait's defaults do).
    pub stats: bool,
}

impl Capabilities {
    /// Everything supported.
    pub fn full(name: impl Into<String>) -> Self {
        Capabilities {
            name: name.into(),
            atomic_batch_across_queues: true,
            dependencies_across_queues: true,
            cross_process_wakeup: true,
            workflows: true,
            schedules: true,
            queue_limits: true,
            logs: true,
            stats: true,
        }
    }
}

/// `job_get`: one job by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobGetParams {
    pub id: JobId,
}

impl From<JobId> for JobGetParams {
    fn from(id: JobId) -> Self {
        JobGetParams { id }
    }
}

/// `job_get_many`: several jobs by id, answered in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobGetManyParams {
    pub ids: Vec<JobId>,
}

impl From<Vec<JobId>> for JobGetManyParams {
    fn from(ids: Vec<JobId>) -> Self {
        JobGetManyParams { ids }
    }
}

impl From<&[JobId]> for JobGetManyParams {
    fn from(ids: &[JobId]) -> Self {
        JobGetManyParams { ids: ids.to_vec() }
    }
}

impl From<&Vec<JobId>> for JobGetManyParams {
    fn from(ids: &Vec<JobId>) -> Self {
        JobGetManyParams { ids: ids.clone() }
    }
}

/// Declares a params struct holding one name, with `From` for the usual string types.
macro_rules! name_params {
    ($(#[$doc:meta])* $name:ident { $field:ident }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            pub $field: String,
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name { $field: s.to_string() }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name { $field: s }
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name { $field: s.clone() }
            }
        }
    };
}

name_params! {
    /// `workflow_get` and `workflow_counts`: one workflow by id.
    WorkflowParams { id }
}

name_params! {
    /// `queue_stats`, `queue_pause` and `queue_resume`: one queue by name.
    QueueParams { queue }
}

name_params! {
    /// `worker_deregister`: one worker by id.
    WorkerDeregisterParams { id }
}

name_params! {
    /// `leader_get`: one leader lease by name.
    LeaderGetParams { name }
}

name_params! {
    /// `schedule_get`, `schedule_delete`, `schedule_pause` and `schedule_resume`: one
    /// schedule by name.
    ScheduleParams { name }
}

/// `schedule_upsert`: store a schedule, or change the stored one with this name.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleUpsertParams {
    pub spec: crate::model::ScheduleSpec,
}

/// What `schedule_upsert` did.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleUpserted {
    /// The schedule as stored after the call.
    pub schedule: crate::model::StoredSchedule,
    /// No schedule had this name before.
    pub created: bool,
    /// The stored spec changed (always true when created). Upserting the spec already
    /// stored changes nothing, not even the revision: every process may apply its
    /// `quern.toml` on start.
    pub changed: bool,
}

/// `schedule_fire`: record one run of a schedule and, with `job`, enqueue its job, in one
/// step. See [`FireOutcome`] for the checks, made atomically with the write.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleFireParams {
    pub name: String,
    /// The schedule's revision the caller computed `tick` from; a scheduled run is refused
    /// as [`FireOutcome::Stale`] once it moved. Ignored for manual runs.
    pub revision: u64,
    /// The tick (for a manual run: the time of the trigger).
    pub tick: crate::Millis,
    /// `Scheduled` (with `job`), `SkippedOverlap` (without) or `Manual` (with `job`).
    /// `Duplicate` is what the store records when the job's unique key is held; it is not
    /// asked for.
    pub kind: crate::model::RunKind,
    /// The job to enqueue (its `run_at` is the tick plus jitter).
    pub job: Option<NewJob>,
}

impl ScheduleFireParams {
    /// The rules about the params alone, which every backend applies before reading the
    /// schedule: a scheduled or manual run carries a job, a skipped one does not, and
    /// `Duplicate` is not asked for.
    pub fn check(&self) -> crate::Result<()> {
        use crate::model::RunKind;
        let ok = match self.kind {
            RunKind::Scheduled | RunKind::Manual => self.job.is_some(),
            RunKind::SkippedOverlap => self.job.is_none(),
            RunKind::Duplicate => false,
        };
        if ok {
            Ok(())
        } else {
            Err(crate::Error::InvalidArgument(format!(
                "schedule_fire: a {} run {}",
                self.kind.as_str(),
                match self.kind {
                    RunKind::SkippedOverlap => "carries no job",
                    RunKind::Duplicate => "is recorded by the store, not asked for",
                    _ => "needs a job",
                }
            )))
        }
    }
}

/// What `schedule_fire` did. For a scheduled run (or skip) the store checks, in this order
/// and in the same step as the write: the revision (`Stale`), `paused` (`Paused`), the run
/// limit (`Ended`), and that `tick` is after the watermark (`AlreadyFired`); only then does
/// it enqueue the job, append the run to the history, and move the watermark, `runs`,
/// `last_tick` and `last_job`. A manual run skips those checks and moves none of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FireOutcome {
    /// The job was stored (`duplicate`: a live job held the template's unique key, and the
    /// run records that job).
    Fired { job_id: JobId, duplicate: bool },
    /// The skipped tick was recorded.
    Skipped,
    /// This tick (or a later one) already fired or was skipped.
    AlreadyFired,
    /// The schedule is paused.
    Paused,
    /// The schedule reached its run limit.
    Ended,
    /// The schedule changed since the caller read it; re-read and decide again.
    Stale,
}

/// `schedule_runs`: a schedule's latest runs, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRunsParams {
    pub name: String,
    /// At most this many (the store keeps [`ScheduleRun::HISTORY`](crate::model::ScheduleRun::HISTORY)).
    pub limit: usize,
}

/// `queue_update`: change some of a queue's settings, atomically; fields left `None` keep
/// their stored value, `Some(None)` clears a limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueUpdateParams {
    pub queue: String,
    pub concurrency: Option<Option<u32>>,
    pub rate: Option<Option<crate::model::RateLimit>>,
    pub weight: Option<Option<u32>>,
    pub order: Option<crate::model::ClaimOrder>,
    pub aging: Option<Option<crate::model::Aging>>,
    /// Per terminal state: `Some(keep)` sets the queue's retention, `None` clears it (back
    /// to the store-wide one); states not listed keep theirs.
    pub retention: std::collections::BTreeMap<JobState, Option<crate::model::Keep>>,
    /// The queue's default retry policy.
    pub retry: Option<Option<crate::model::RetryPolicy>>,
    pub group_concurrency: Option<Option<u32>>,
    /// Per kind pattern: `Some(limits)` sets the pattern's limits (a changed rate starts
    /// with a full bucket), `None` removes the pattern; patterns not listed keep theirs.
    pub kinds: std::collections::BTreeMap<String, Option<crate::model::KindLimits>>,
    /// The per-group rate limit (a change starts every group with a full bucket).
    pub group_rate: Option<Option<crate::model::RateLimit>>,
}

impl QueueUpdateParams {
    /// The settings after applying this change to `old`.
    pub fn apply(&self, old: &crate::model::QueueSettings) -> crate::model::QueueSettings {
        crate::model::QueueSettings {
            concurrency: self.concurrency.unwrap_or(old.concurrency),
            rate: self.rate.unwrap_or(old.rate),
            weight: self.weight.unwrap_or(old.weight),
            order: self.order.unwrap_or(old.order),
            aging: self.aging.unwrap_or(old.aging),
            retention: {
                let mut r = old.retention.clone();
                for (s, k) in &self.retention {
                    match k {
                        Some(k) => r.insert(*s, *k),
                        None => r.remove(s),
                    };
                }
                r
            },
            retry: self.retry.clone().unwrap_or_else(|| old.retry.clone()),
            group_concurrency: self.group_concurrency.unwrap_or(old.group_concurrency),
            kinds: {
                let mut k = old.kinds.clone();
                for (p, l) in &self.kinds {
                    match l {
                        Some(l) => k.insert(p.clone(), *l),
                        None => k.remove(p),
                    };
                }
                k
            },
            group_rate: self.group_rate.unwrap_or(old.group_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobState, NewJob};

    #[test]
    fn a_claim_image_is_the_ready_job_leased() {
        let mut ready =
            crate::Job::from_new(NewJob::new("k", Payload::default()), JobState::Queued, 10);
        ready.attempt = 2;
        ready.lease_epoch = 7;
        ready.started_at = Some(5);
        let c = ClaimedJob::from_ready(ready.clone(), "w1", 1_000, 20);
        assert_eq!(c.job.state, JobState::Running);
        assert_eq!((c.job.attempt, c.job.lease_epoch), (3, 8));
        assert_eq!(
            (c.token.attempt, c.token.epoch, c.token.job_id),
            (3, 8, ready.id)
        );
        assert_eq!(
            c.job.lease,
            Some(crate::model::Lease {
                worker_id: "w1".into(),
                expires_at: 1_000
            })
        );
        assert_eq!((c.job.claimed_at, c.job.started_at), (Some(20), None));
        assert_eq!(c.job.payload, ready.payload);
    }
}
