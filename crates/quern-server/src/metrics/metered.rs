//! `MeteredBackend`: a [`Backend`] that forwards every method to the store it wraps and
//! counts what the answers say (see the module docs of `metrics` for why here).
//!
//! Every trait method is forwarded, the defaulted ones too: a default left in place would
//! answer `Unsupported` (or do nothing) in front of a store that supports it. The test at
//! the bottom reads the trait's source and fails when a method is missing here.
//!
//! What is counted, and from what:
//! - enqueued: each stored job (not a unique-key duplicate) of `job_enqueue`,
//!   `workflow_create`, `workflow_update` compensations, a `Spawn` fan-out and a fired
//!   `schedule_fire`;
//! - at each claim: the wait histogram, and the delayed or cron lateness; the job enters the
//!   in-flight table;
//! - completed, failed, retried, dead and the run histogram: from `job_complete` /
//!   `job_fail` answers, with the labels and the attempt limit remembered at the claim (a
//!   failure with attempts left and a retry time is retried, otherwise dead: the rule every
//!   store applies);
//! - rescued (and dead, for a last attempt): from `lease_rescue`'s report.
//!
//! An outcome for a job this process did not claim is counted after one `job_get_many` of
//! those jobs, reading the labels and the state they ended in.

use std::sync::Arc;

use quern::backend::*;
use quern::model::{Job, JobState, ScheduleRun, StoredSchedule, WorkflowRecord};
use quern::{JobId, Millis, Result, SharedClock, async_trait};

use super::Metrics;
use super::inflight::Claimed;
use super::series::{ScheduleLabels, Series, seconds};

/// A store that counts what passes through it into [`Metrics`].
#[derive(Debug)]
pub struct MeteredBackend {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
}

impl MeteredBackend {
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>, clock: SharedClock) -> Self {
        MeteredBackend {
            inner,
            metrics,
            clock,
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The series of each job, looked up once per run of equal labels.
    fn series_of<'a>(&self, jobs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<Arc<Series>> {
        let mut out: Vec<Arc<Series>> = Vec::new();
        let mut last: Option<(&str, &str)> = None;
        for (queue, kind) in jobs {
            let s = match (last, out.last()) {
                (Some(l), Some(s)) if l == (queue, kind) => Arc::clone(s),
                _ => self.metrics.series(queue, kind),
            };
            last = Some((queue, kind));
            out.push(s);
        }
        out
    }

    /// The wait and lateness of claimed jobs; they enter the in-flight table.
    fn claimed(&self, jobs: &[ClaimedJob]) {
        if jobs.is_empty() {
            return;
        }
        let now = self.now();
        let series = self.series_of(
            jobs.iter()
                .map(|c| (c.job.queue.as_str(), c.job.kind.as_str())),
        );
        let mut entries = Vec::with_capacity(jobs.len());
        for (c, s) in jobs.iter().zip(series) {
            let j = &c.job;
            let at = j.claimed_at.unwrap_or(now);
            let late = seconds(at - j.run_at);
            s.wait.observe(late);
            match cron_schedule(j) {
                Some(schedule) if j.attempt == 1 => self
                    .metrics
                    .families
                    .cron_lateness
                    .get_or_create(&ScheduleLabels {
                        schedule: schedule.to_string(),
                    })
                    .observe(late),
                Some(_) => {}
                None if j.run_at > j.created_at => s.delayed_lateness.observe(late),
                None => {}
            }
            entries.push((
                j.id,
                Claimed {
                    epoch: c.token.epoch,
                    series: s,
                    max_attempts: j.max_attempts,
                    claimed_at: at,
                    expires_at: j.lease.as_ref().map_or(now, |l| l.expires_at),
                },
            ));
        }
        self.metrics.inflight.insert(now, entries);
    }

    /// Reads the jobs whose outcome went through here but whose claim did not.
    async fn read_missed(&self, ids: Vec<JobId>) -> Vec<Job> {
        if ids.is_empty() {
            return Vec::new();
        }
        match self.inner.job_get_many(JobGetManyParams { ids }).await {
            Ok(jobs) => jobs.into_iter().flatten().collect(),
            // Counting must never fail the call it counts.
            Err(e) => {
                tracing::debug!(error = %e, "metrics: could not read jobs claimed elsewhere");
                Vec::new()
            }
        }
    }

    fn count_enqueued(&self, series: Vec<Arc<Series>>, results: &EnqueueResults) {
        for (s, r) in series.iter().zip(results) {
            if let Ok(o) = r
                && !o.duplicate
            {
                s.enqueued.inc();
            }
        }
    }
}

/// The schedule a cron run's job belongs to (`meta.cron.schedule`).
fn cron_schedule(j: &Job) -> Option<&str> {
    j.meta.get("cron")?.get("schedule")?.as_str()
}

/// What a failure asked for, kept across the call (the params are moved into it).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Asked {
    /// A retry at a time: retried if attempts remain, else dead.
    Retry,
    /// Dead now (a fatal error, or a retry policy with no more retries).
    Dead,
    /// The handler ran but the attempt is not a failure (snooze, self-cancel).
    Other,
    /// No handler ran (a workflow skip or fan-out).
    NoRun,
}

impl Asked {
    fn of(a: &FailAction) -> Asked {
        match a {
            FailAction::Retry { retry_at: Some(_) } => Asked::Retry,
            FailAction::Retry { retry_at: None } | FailAction::Dead => Asked::Dead,
            FailAction::Snooze { .. } | FailAction::RateLimited { .. } | FailAction::Cancel => {
                Asked::Other
            }
            FailAction::Skip | FailAction::Spawn { .. } => Asked::NoRun,
        }
    }
}

/// Counts one failure outcome: `dead` is whether the job ended dead.
fn count_failure(s: &Series, asked: Asked, dead: bool) {
    match asked {
        Asked::Retry | Asked::Dead => {
            s.failed.inc();
            if dead {
                s.dead.inc();
            } else {
                s.retried.inc();
            }
        }
        Asked::Other | Asked::NoRun => {}
    }
}

#[async_trait]
impl Backend for MeteredBackend {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn job_enqueue(&self, params: EnqueueParams) -> Result<EnqueueResults> {
        let series = self.series_of(
            params
                .jobs
                .iter()
                .map(|j| (j.queue.as_str(), j.kind.as_str())),
        );
        let results = self.inner.job_enqueue(params).await?;
        self.count_enqueued(series, &results);
        Ok(results)
    }

    async fn job_claim(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>> {
        let jobs = self.inner.job_claim(params).await?;
        self.claimed(&jobs);
        Ok(jobs)
    }

    async fn job_claim_outcome(&self, params: ClaimParams) -> Result<ClaimOutcome> {
        let outcome = self.inner.job_claim_outcome(params).await?;
        self.claimed(&outcome.jobs);
        Ok(outcome)
    }

    async fn job_heartbeat(&self, params: HeartbeatParams) -> Result<Vec<Result<Millis>>> {
        let keys: Vec<(JobId, u64)> = params
            .items
            .iter()
            .map(|i| (i.token.job_id, i.token.epoch))
            .collect();
        let answers = self.inner.job_heartbeat(params).await?;
        self.metrics.inflight.extend(
            keys.into_iter()
                .zip(&answers)
                .filter_map(|((id, epoch), a)| a.as_ref().ok().map(|d| (id, epoch, *d))),
        );
        Ok(answers)
    }

    async fn job_complete(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        let items: Vec<(JobId, u64, Option<Millis>)> = params
            .items
            .iter()
            .map(|c| (c.token.job_id, c.token.epoch, c.started_at))
            .collect();
        let answers = self.inner.job_complete(params).await?;
        let now = self.now();
        let done: Vec<_> = items
            .into_iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_ok())
            .map(|(i, _)| i)
            .collect();
        let claims = self
            .metrics
            .inflight
            .take(done.iter().map(|(id, e, _)| (*id, *e)));
        let mut missed = Vec::new();
        for ((id, _, started), claim) in done.iter().zip(claims) {
            match claim {
                Some(c) => {
                    c.series.completed.inc();
                    c.series
                        .run
                        .observe(seconds(now - started.unwrap_or(c.claimed_at)));
                }
                None => missed.push(*id),
            }
        }
        for j in self.read_missed(missed).await {
            let s = self.metrics.series(&j.queue, &j.kind);
            s.completed.inc();
            if let Some(ms) = j.run_ms() {
                s.run.observe(seconds(ms));
            }
        }
        Ok(answers)
    }

    async fn job_fail(&self, params: FailParams) -> Result<Vec<Result<()>>> {
        let items: Vec<(JobId, u64, u32, Asked, Option<Millis>)> = params
            .items
            .iter()
            .map(|f| {
                (
                    f.token.job_id,
                    f.token.epoch,
                    f.token.attempt,
                    Asked::of(&f.action),
                    f.started_at,
                )
            })
            .collect();
        // Fan-out children are stored jobs too.
        let children: Vec<Vec<Arc<Series>>> = params
            .items
            .iter()
            .map(|f| match &f.action {
                FailAction::Spawn { children, .. } => {
                    self.series_of(children.iter().map(|c| (c.queue.as_str(), c.kind.as_str())))
                }
                _ => Vec::new(),
            })
            .collect();
        let answers = self.inner.job_fail(params).await?;
        let now = self.now();
        let mut done = Vec::new();
        for ((item, kids), a) in items.into_iter().zip(children).zip(&answers) {
            if a.is_ok() {
                for s in &kids {
                    s.enqueued.inc();
                }
                done.push(item);
            }
        }
        let claims = self
            .metrics
            .inflight
            .take(done.iter().map(|(id, e, ..)| (*id, *e)));
        let mut missed = Vec::new();
        for ((id, _, attempt, asked, started), claim) in done.iter().zip(claims) {
            match claim {
                Some(c) => {
                    let dead = *asked == Asked::Dead || *attempt >= c.max_attempts;
                    count_failure(&c.series, *asked, dead);
                    if *asked != Asked::NoRun {
                        c.series
                            .run
                            .observe(seconds(now - started.unwrap_or(c.claimed_at)));
                    }
                }
                None if *asked != Asked::NoRun => missed.push((*id, *asked)),
                None => {}
            }
        }
        let asked: std::collections::HashMap<JobId, Asked> = missed.iter().copied().collect();
        for j in self
            .read_missed(missed.into_iter().map(|(id, _)| id).collect())
            .await
        {
            let s = self.metrics.series(&j.queue, &j.kind);
            let a = asked.get(&j.id).copied().unwrap_or(Asked::Other);
            count_failure(&s, a, j.state == JobState::Dead);
        }
        Ok(answers)
    }

    async fn job_release(&self, params: ReleaseParams) -> Result<Vec<Result<()>>> {
        let keys: Vec<(JobId, u64)> = params.tokens.iter().map(|t| (t.job_id, t.epoch)).collect();
        let answers = self.inner.job_release(params).await?;
        self.metrics.inflight.take(
            keys.into_iter()
                .zip(&answers)
                .filter(|(_, a)| a.is_ok())
                .map(|(k, _)| k),
        );
        Ok(answers)
    }

    async fn job_cancel(&self, params: CancelParams) -> Result<Job> {
        self.inner.job_cancel(params).await
    }

    async fn job_reprioritize(&self, params: JobReprioritizeParams) -> Result<Job> {
        self.inner.job_reprioritize(params).await
    }

    async fn job_get(&self, params: JobGetParams) -> Result<Option<Job>> {
        self.inner.job_get(params).await
    }

    async fn job_get_many(&self, params: JobGetManyParams) -> Result<Vec<Option<Job>>> {
        self.inner.job_get_many(params).await
    }

    async fn job_list(&self, params: ListParams) -> Result<JobPage> {
        self.inner.job_list(params).await
    }

    async fn job_retry(&self, params: RetryParams) -> Result<Vec<JobId>> {
        self.inner.job_retry(params).await
    }

    async fn job_prune(&self, params: PruneParams) -> Result<PruneReport> {
        self.inner.job_prune(params).await
    }

    async fn lease_rescue(&self, params: RescueParams) -> Result<RescueReport> {
        let report = self.inner.lease_rescue(params).await?;
        if report.requeued.is_empty() && report.dead.is_empty() {
            return Ok(report);
        }
        let all = report.requeued.iter().map(|id| (id, false));
        let all: Vec<(&JobId, bool)> = all.chain(report.dead.iter().map(|id| (id, true))).collect();
        let claims = self
            .metrics
            .inflight
            .take_ids(all.iter().map(|(id, _)| *id));
        let mut missed = Vec::new();
        for ((id, dead), claim) in all.iter().zip(claims) {
            match claim {
                Some(c) => {
                    c.series.rescued.inc();
                    if *dead {
                        c.series.dead.inc();
                    }
                }
                None => missed.push(**id),
            }
        }
        for j in self.read_missed(missed).await {
            let s = self.metrics.series(&j.queue, &j.kind);
            s.rescued.inc();
            if report.dead.contains(&j.id) {
                s.dead.inc();
            }
        }
        Ok(report)
    }

    async fn work_wait(&self, params: WaitParams) -> Result<()> {
        self.inner.work_wait(params).await
    }

    async fn workflow_create(&self, params: WorkflowCreateParams) -> Result<WorkflowRecord> {
        let series = self.series_of(
            params
                .jobs
                .iter()
                .map(|j| (j.queue.as_str(), j.kind.as_str())),
        );
        let record = self.inner.workflow_create(params).await?;
        for s in &series {
            s.enqueued.inc();
        }
        Ok(record)
    }

    async fn workflow_get(&self, params: WorkflowParams) -> Result<Option<WorkflowRecord>> {
        self.inner.workflow_get(params).await
    }

    async fn workflow_list(&self, params: WorkflowListParams) -> Result<WorkflowPage> {
        self.inner.workflow_list(params).await
    }

    async fn workflow_update(&self, params: WorkflowUpdateParams) -> Result<WorkflowRecord> {
        let series = self.series_of(
            params
                .compensations
                .iter()
                .map(|j| (j.queue.as_str(), j.kind.as_str())),
        );
        let record = self.inner.workflow_update(params).await?;
        for s in &series {
            s.enqueued.inc();
        }
        Ok(record)
    }

    async fn workflow_counts(&self, params: WorkflowParams) -> Result<quern::model::StateCounts> {
        self.inner.workflow_counts(params).await
    }

    async fn schedule_upsert(&self, params: ScheduleUpsertParams) -> Result<ScheduleUpserted> {
        self.inner.schedule_upsert(params).await
    }

    async fn schedule_get(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        self.inner.schedule_get(params).await
    }

    async fn schedule_list(&self) -> Result<Vec<StoredSchedule>> {
        self.inner.schedule_list().await
    }

    async fn schedule_delete(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        self.inner.schedule_delete(params).await
    }

    async fn schedule_pause(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        self.inner.schedule_pause(params).await
    }

    async fn schedule_resume(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        self.inner.schedule_resume(params).await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        let series = params
            .job
            .as_ref()
            .map(|j| self.metrics.series(&j.queue, &j.kind));
        let outcome = self.inner.schedule_fire(params).await?;
        if let (
            FireOutcome::Fired {
                duplicate: false, ..
            },
            Some(s),
        ) = (&outcome, series)
        {
            s.enqueued.inc();
        }
        Ok(outcome)
    }

    async fn schedule_runs(&self, params: ScheduleRunsParams) -> Result<Vec<ScheduleRun>> {
        self.inner.schedule_runs(params).await
    }

    async fn job_log_append(&self, params: LogAppendParams) -> Result<()> {
        self.inner.job_log_append(params).await
    }

    async fn job_logs(&self, params: JobLogsParams) -> Result<JobLogPage> {
        self.inner.job_logs(params).await
    }

    async fn job_finished(&self, params: FinishedParams) -> Result<Vec<FinishedJob>> {
        self.inner.job_finished(params).await
    }

    async fn event_list(&self, params: EventListParams) -> Result<Vec<quern::model::JobEvent>> {
        self.inner.event_list(params).await
    }

    async fn event_read(&self, params: EventReadParams) -> Result<EventPage> {
        self.inner.event_read(params).await
    }

    async fn event_prune(&self, params: EventPruneParams) -> Result<u64> {
        self.inner.event_prune(params).await
    }

    async fn alert_state_list(&self) -> Result<Vec<AlertStateRecord>> {
        self.inner.alert_state_list().await
    }

    async fn alert_state_put(&self, params: AlertStatePutParams) -> Result<Option<u64>> {
        self.inner.alert_state_put(params).await
    }

    async fn job_delete(&self, params: JobDeleteParams) -> Result<JobDeleteReport> {
        self.inner.job_delete(params).await
    }

    async fn store_maintain(&self, params: StoreMaintainParams) -> Result<StoreMaintainReport> {
        self.inner.store_maintain(params).await
    }

    async fn store_import(&self, params: ImportParams) -> Result<ImportReport> {
        self.inner.store_import(params).await
    }

    async fn store_budget(&self) -> Result<Option<StoreBudget>> {
        self.inner.store_budget().await
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>> {
        self.inner.queue_list().await
    }

    async fn queue_stats(&self, params: QueueParams) -> Result<QueueInfo> {
        self.inner.queue_stats(params).await
    }

    async fn queue_pause(&self, params: QueueParams) -> Result<()> {
        self.inner.queue_pause(params).await
    }

    async fn queue_resume(&self, params: QueueParams) -> Result<()> {
        self.inner.queue_resume(params).await
    }

    async fn queue_get(&self, params: QueueParams) -> Result<quern::model::QueueUsage> {
        self.inner.queue_get(params).await
    }

    async fn queue_update(&self, params: QueueUpdateParams) -> Result<quern::model::QueueSettings> {
        self.inner.queue_update(params).await
    }

    async fn worker_register(&self, info: WorkerInfo) -> Result<()> {
        self.inner.worker_register(info).await
    }

    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> Result<()> {
        self.inner.worker_heartbeat(params).await
    }

    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> Result<()> {
        self.inner.worker_deregister(params).await
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>> {
        self.inner.worker_list().await
    }

    async fn leader_acquire(&self, params: LeaderParams) -> Result<bool> {
        self.inner.leader_acquire(params).await
    }

    async fn leader_renew(&self, params: LeaderParams) -> Result<bool> {
        self.inner.leader_renew(params).await
    }

    async fn leader_release(&self, params: LeaderParams) -> Result<()> {
        self.inner.leader_release(params).await
    }

    async fn leader_get(&self, params: LeaderGetParams) -> Result<Option<LeaderInfo>> {
        self.inner.leader_get(params).await
    }

    async fn stats_minutes(&self, params: MinutesParams) -> Result<Vec<MinuteCounts>> {
        self.inner.stats_minutes(params).await
    }

    async fn job_prune_bytes(&self, params: PruneBytesParams) -> Result<PruneBytesReport> {
        self.inner.job_prune_bytes(params).await
    }
}

#[cfg(test)]
mod tests {
    /// The names of the methods a trait body declares (`fn NAME(`), in order.
    fn method_names(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find("fn ") {
            let after = &rest[i + 3..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let preceded_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
            if preceded_ok && !name.is_empty() && after[name.len()..].starts_with('(') {
                out.push(name);
            }
            rest = after;
        }
        out
    }

    /// A compile-time-adjacent guard: every method of `quern::Backend` (defaulted ones
    /// included) has a forwarding method here. A method added to the trait without one
    /// would silently answer with the trait's default in front of a store that implements
    /// it; this test fails instead.
    #[test]
    fn every_backend_method_is_forwarded() {
        let src = include_str!("../../../quern/src/backend/mod.rs");
        let start = src.find("pub trait Backend").expect("the trait");
        let declared = method_names(&src[start..]);
        assert!(declared.len() > 40, "found only {declared:?}");
        let ours = include_str!("metered.rs");
        let ours = &ours[..ours.find("#[cfg(test)]").expect("tests last")];
        let ours = &ours[ours
            .find("impl Backend for MeteredBackend")
            .expect("the impl")..];
        let forwarded = method_names(ours);
        let missing: Vec<&String> = declared.iter().filter(|m| !forwarded.contains(m)).collect();
        assert!(
            missing.is_empty(),
            "not forwarded by MeteredBackend: {missing:?}"
        );
    }
}
