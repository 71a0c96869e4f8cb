//! The pruner: deletes finished jobs once they are older than their state's retention (the
//! queue's own, `QueueSettings::retention`, over the store-wide one), and drops results
//! whose time-to-live has passed (both in `Backend::job_prune`). With a byte budget
//! (`PrunerConfig::max_bytes`) each pass then deletes the oldest finished jobs while the
//! finished jobs' bytes are over it (`Backend::job_prune_bytes`, which reads a maintained
//! total rather than the jobs).
//!
//! Pruning is idempotent, so running it on two nodes at once is harmless, only wasteful;
//! the worker runs it under a leader lease ([`Pruner::LEADER_NAME`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, EventPruneParams, PruneBytesParams, PruneParams};
use crate::clock::SharedClock;
use crate::model::{JobState, Keep};
use crate::{Error, Result};

/// Pruner settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunerConfig {
    /// Time between passes. Default 1 min.
    pub interval: Duration,
    /// How long a finished job is kept, by terminal state (measured from `finished_at`).
    /// States not listed are kept forever. Defaults: succeeded 24 h; dead, cancelled and
    /// skipped 7 days (the dead-letter queue: long enough for someone to look at it). A
    /// job's result goes with the job, or earlier if its `result_ttl` says so.
    pub retention: BTreeMap<JobState, Duration>,
    /// Jobs deleted per backend call; a pass keeps calling while calls come back full, up to
    /// `max_batches_per_pass`. Default 1000.
    pub batch_limit: usize,
    /// Upper bound on calls per state in one pass. Default 10.
    pub max_batches_per_pass: usize,
    /// A store-wide budget for finished jobs, in bytes (their payload, result and
    /// checkpoint as stored; see [`PruneBytesParams`]): after the retention by age, each
    /// pass deletes the oldest finished jobs, whatever their state and queue, while the
    /// total is over it (up to `batch_limit` × `max_batches_per_pass` jobs a pass). `None`
    /// (the default): no budget.
    pub max_bytes: Option<u64>,
    /// Job events kept (`Backend::event_prune`: in the store on SQLite, per queue on
    /// Redis); `None` keeps them all. Default
    /// [`DEFAULT_EVENT_CAP`](crate::backend::DEFAULT_EVENT_CAP) (100,000).
    pub events: Option<u64>,
    /// Job events older than this are dropped; `None` (the default) keeps them by count
    /// only.
    pub events_max_age: Option<Duration>,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        PrunerConfig {
            interval: Duration::from_secs(60),
            retention: BTreeMap::from([
                (JobState::Succeeded, Duration::from_secs(DAY)),
                (JobState::Dead, Duration::from_secs(7 * DAY)),
                (JobState::Cancelled, Duration::from_secs(7 * DAY)),
                (JobState::Skipped, Duration::from_secs(7 * DAY)),
            ]),
            batch_limit: 1000,
            max_batches_per_pass: 10,
            max_bytes: None,
            events: Some(crate::backend::DEFAULT_EVENT_CAP),
            events_max_age: None,
        }
    }
}

impl PrunerConfig {
    /// Checks that only terminal states have a retention, and that a byte budget is above 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes == Some(0) {
            return Err(Error::InvalidArgument(
                "pruner max_bytes must be above 0 (leave it out for no budget)".into(),
            ));
        }
        match self.retention.keys().find(|s| !s.is_terminal()) {
            Some(s) => Err(Error::InvalidArgument(format!(
                "pruner retention for {s}: only finished jobs (succeeded, dead, cancelled, skipped) can be pruned"
            ))),
            None => Ok(()),
        }
    }
}

/// What one pruner pass did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneTickReport {
    /// Jobs deleted, all states together.
    pub jobs_deleted: u64,
    /// Jobs deleted per state; every state with a retention is present, with 0 if none.
    pub deleted_by_state: BTreeMap<JobState, u64>,
    /// Results dropped because their `result_ttl` passed (their jobs stay).
    pub results_expired: u64,
    /// With a byte budget: the finished jobs' bytes when the byte pass began (after the
    /// retention by age; a dry run counts before it).
    pub finished_bytes: Option<u64>,
    /// Jobs deleted because the finished jobs were over the byte budget (also counted in
    /// `jobs_deleted`, not in `deleted_by_state`).
    pub over_budget_deleted: u64,
    /// The bytes those jobs counted.
    pub bytes_freed: u64,
    /// Job events dropped by the event retention (not counted by a dry run).
    pub events_dropped: u64,
}

/// Deletes old finished jobs. See the module docs.
#[derive(Clone, Debug)]
pub struct Pruner {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    config: PrunerConfig,
}

impl Pruner {
    /// The leader lease name the worker uses for the pruner.
    pub const LEADER_NAME: &'static str = "quern.pruner";

    /// A pruner for `backend`, measuring ages with `clock`.
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock, config: PrunerConfig) -> Self {
        Pruner {
            backend,
            clock,
            config,
        }
    }

    /// One pass: each state with a retention is pruned with its own cutoff, and each queue
    /// with a retention of its own for a state (`QueueSettings::retention`) with that one
    /// instead; a pass with no retention configured still drops expired results.
    pub async fn run_once(&self) -> Result<PruneTickReport> {
        self.pass(false).await
    }

    /// What [`run_once`](Self::run_once) would delete now, changing nothing.
    pub async fn dry_run(&self) -> Result<PruneTickReport> {
        self.pass(true).await
    }

    /// The retention each queue sets over the store-wide one (`QueueSettings::retention`),
    /// for the queues that set any. A store without queue settings has none.
    async fn queue_retention(&self) -> Result<BTreeMap<String, BTreeMap<JobState, Keep>>> {
        let mut out = BTreeMap::new();
        for q in self.backend.queue_list().await? {
            match self.backend.queue_get(q.name.as_str().into()).await {
                Ok(u) if !u.settings.retention.is_empty() => {
                    out.insert(q.name, u.settings.retention);
                }
                Ok(_) | Err(Error::QueueNotFound(_)) => {}
                Err(Error::Unsupported(_)) => return Ok(BTreeMap::new()),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn pass(&self, dry_run: bool) -> Result<PruneTickReport> {
        self.config.validate()?;
        let now = self.clock.now_ms();
        let limit = self.config.batch_limit.max(1);
        let batches = self.config.max_batches_per_pass.max(1);
        let per_queue = self.queue_retention().await?;
        // Every state someone keeps for a while: the store-wide ones and the queues' own.
        let mut states: Vec<JobState> = self.config.retention.keys().copied().collect();
        states.extend(per_queue.values().flat_map(|r| r.keys().copied()));
        states.sort();
        states.dedup();
        let cutoff = |keep: Duration| {
            now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
        };
        let mut total = PruneTickReport::default();
        if dry_run || self.config.retention.is_empty() {
            // Expired results, once: every call below drops (or, dry, counts) those of the
            // queues it covers, and a dry run would count them again on each call.
            let r = self
                .backend
                .job_prune(PruneParams {
                    finished_before: now,
                    limit: limit * batches,
                    dry_run,
                    ..Default::default()
                })
                .await?;
            total.results_expired = r.results_expired;
        }
        for state in states {
            let own: Vec<(&String, Keep)> = per_queue
                .iter()
                .filter_map(|(q, r)| r.get(&state).map(|k| (q, *k)))
                .collect();
            // The store-wide cutoff for every queue without its own, then each queue's own.
            let mut calls = Vec::new();
            if let Some(keep) = self.config.retention.get(&state) {
                calls.push(PruneParams {
                    finished_before: cutoff(*keep),
                    states: vec![state],
                    except_queues: own.iter().map(|(q, _)| (*q).clone()).collect(),
                    ..Default::default()
                });
            }
            for (q, keep) in &own {
                if let Some(keep) = keep.as_duration() {
                    calls.push(PruneParams {
                        finished_before: cutoff(keep),
                        states: vec![state],
                        queues: vec![(*q).clone()],
                        ..Default::default()
                    });
                }
            }
            let mut deleted = 0;
            for call in calls {
                let (d, e) = self.drain(call, dry_run, limit, batches).await?;
                deleted += d;
                if !dry_run {
                    total.results_expired += e;
                }
            }
            total.jobs_deleted += deleted;
            total.deleted_by_state.insert(state, deleted);
        }
        if let Some(max_bytes) = self.config.max_bytes {
            self.over_budget(max_bytes, dry_run, limit, batches, &mut total)
                .await?;
        }
        if !dry_run && (self.config.events.is_some() || self.config.events_max_age.is_some()) {
            let caps = EventPruneParams {
                max_events: self.config.events,
                max_age: self.config.events_max_age,
            };
            match self.backend.event_prune(caps).await {
                Ok(n) => total.events_dropped = n,
                // A store without events has nothing to drop.
                Err(Error::Unsupported(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// The byte budget: deletes the oldest finished jobs while their bytes are over
    /// `max_bytes` (a dry run counts them with one call of a whole pass's limit).
    async fn over_budget(
        &self,
        max_bytes: u64,
        dry_run: bool,
        limit: usize,
        batches: usize,
        total: &mut PruneTickReport,
    ) -> Result<()> {
        let mut p = PruneBytesParams {
            max_bytes,
            limit: if dry_run { limit * batches } else { limit },
            dry_run,
        };
        for i in 0..(if dry_run { 1 } else { batches }) {
            let r = self.backend.job_prune_bytes(p.clone()).await?;
            if i == 0 {
                total.finished_bytes = Some(r.finished_bytes);
            }
            total.over_budget_deleted += r.jobs_deleted;
            total.bytes_freed += r.bytes_freed;
            total.jobs_deleted += r.jobs_deleted;
            if (r.jobs_deleted as usize) < p.limit {
                break;
            }
            p.limit = limit;
        }
        Ok(())
    }

    /// Runs one prune call to the end of a pass: jobs deleted and results dropped.
    async fn drain(
        &self,
        mut p: PruneParams,
        dry_run: bool,
        limit: usize,
        batches: usize,
    ) -> Result<(u64, u64)> {
        p.dry_run = dry_run;
        if dry_run {
            // A count changes nothing, so calling again would count the same jobs: one
            // call with the limit of a whole pass.
            p.limit = limit * batches;
            let r = self.backend.job_prune(p).await?;
            return Ok((r.jobs_deleted, r.results_expired));
        }
        p.limit = limit;
        let (mut deleted, mut expired) = (0, 0);
        for _ in 0..batches {
            let r = self.backend.job_prune(p.clone()).await?;
            deleted += r.jobs_deleted;
            expired += r.results_expired;
            if (r.jobs_deleted as usize) < limit {
                break;
            }
        }
        Ok((deleted, expired))
    }

    /// Runs passes every `interval` until `stop` is cancelled. Errors are logged and the
    /// next pass retries.
    pub async fn run(self, stop: CancellationToken) {
        tracing::debug!(interval = ?self.config.interval, "pruner started");
        loop {
            match self.run_once().await {
                Ok(r) if r.jobs_deleted == 0 && r.results_expired == 0 && r.events_dropped == 0 => {
                }
                Ok(r) => tracing::info!(
                    jobs_deleted = r.jobs_deleted,
                    events_dropped = r.events_dropped,
                    by_state = ?r.deleted_by_state,
                    over_budget = r.over_budget_deleted,
                    bytes_freed = r.bytes_freed,
                    results_expired = r.results_expired,
                    "pruned finished jobs"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
            if !super::pause(self.config.interval, &stop).await {
                break;
            }
        }
        tracing::debug!("pruner stopped");
    }
}
