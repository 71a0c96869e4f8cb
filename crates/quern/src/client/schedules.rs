//! [`Schedules`]: recurring schedules from the producer side (the CLI's `quern cron`, the
//! server's `/v1/schedules`, library users).

use std::sync::Arc;

use crate::backend::{
    Backend, CancelParams, FireOutcome, ScheduleFireParams, ScheduleRunsParams,
    ScheduleUpsertParams, ScheduleUpserted,
};
use crate::clock::{Millis, SharedClock, SystemClock};
use crate::model::{JobId, JobState, RunKind, ScheduleRun, ScheduleSpec, StoredSchedule};
use crate::{Error, Result};

/// Adds, changes, pauses, triggers and removes schedules. From [`Client::schedules`].
///
/// The ticks themselves are fired by the [`Scheduler`](crate::maintenance::Scheduler)
/// that every worker runs.
///
/// [`Client::schedules`]: crate::Client::schedules
#[derive(Clone, Debug)]
pub struct Schedules {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
}

impl Schedules {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Self {
        Schedules {
            backend,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads "now" (the time of a manual run) from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Stores `spec`, or changes the stored schedule of that name (see
    /// `Backend::schedule_upsert`). A change applies from the first tick after the one
    /// already enqueued ahead, if any. Invalid input is refused naming the field.
    pub async fn upsert(&self, spec: ScheduleSpec) -> Result<ScheduleUpserted> {
        spec.validate()?;
        self.backend
            .schedule_upsert(ScheduleUpsertParams { spec })
            .await
    }

    /// One schedule; `ScheduleNotFound` for an unknown name.
    pub async fn get(&self, name: &str) -> Result<StoredSchedule> {
        self.backend
            .schedule_get(name.into())
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_string()))
    }

    /// Every schedule, by name.
    pub async fn list(&self) -> Result<Vec<StoredSchedule>> {
        self.backend.schedule_list().await
    }

    /// The latest `limit` runs, newest first.
    pub async fn runs(&self, name: &str, limit: usize) -> Result<Vec<ScheduleRun>> {
        self.backend
            .schedule_runs(ScheduleRunsParams {
                name: name.to_string(),
                limit,
            })
            .await
    }

    /// Pauses a schedule. The job of a tick already enqueued ahead (not yet started) is
    /// cancelled, so nothing of the schedule runs until it is resumed.
    pub async fn pause(&self, name: &str) -> Result<StoredSchedule> {
        let s = self.backend.schedule_pause(name.into()).await?;
        let runs = self.runs(name, ScheduleRun::HISTORY).await?;
        self.cancel_pending(&s, &runs, "paused").await?;
        Ok(s)
    }

    /// Resumes a schedule; ticks that passed while it was paused do not fire.
    pub async fn resume(&self, name: &str) -> Result<StoredSchedule> {
        self.backend.schedule_resume(name.into()).await
    }

    /// Removes a schedule and its history. The job of a tick already enqueued ahead (not yet
    /// started) is cancelled; jobs of earlier runs stay. `ScheduleNotFound` for an unknown
    /// name.
    pub async fn remove(&self, name: &str) -> Result<StoredSchedule> {
        // The history goes with the schedule: read which ticks are pending first.
        let runs = match self.runs(name, ScheduleRun::HISTORY).await {
            Ok(r) => r,
            Err(Error::ScheduleNotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let s = self
            .backend
            .schedule_delete(name.into())
            .await?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_string()))?;
        self.cancel_pending(&s, &runs, "removed").await?;
        Ok(s)
    }

    /// Runs the schedule's job now, outside the schedule (also while paused): recorded as a
    /// manual run; the schedule's own ticks are unchanged. Returns the job's id.
    pub async fn trigger(&self, name: &str) -> Result<JobId> {
        let s = self.get(name).await?;
        let now: Millis = self.clock.now_ms();
        let mut job = s.spec.job.build(&s.spec.name, now, now)?;
        job.run_at = None;
        match self
            .backend
            .schedule_fire(ScheduleFireParams {
                name: s.spec.name.clone(),
                revision: s.revision,
                tick: now,
                kind: RunKind::Manual,
                job: Some(job),
            })
            .await?
        {
            FireOutcome::Fired { job_id, .. } => Ok(job_id),
            other => Err(Error::Storage(format!(
                "a manual run of {name:?} was not fired: {other:?}"
            ))),
        }
    }

    /// Cancels the jobs of ticks enqueued ahead that have not run yet: runs whose tick is
    /// still to come (with a lookahead of seconds, a frequent schedule has several), whose
    /// job is scheduled and was never attempted. A job that started, or a retry of one, is
    /// left alone.
    async fn cancel_pending(
        &self,
        s: &StoredSchedule,
        runs: &[ScheduleRun],
        why: &str,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let ids: Vec<JobId> = runs
            .iter()
            .filter(|r| r.tick > now && r.kind == RunKind::Scheduled)
            .filter_map(|r| r.job_id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let jobs = self.backend.job_get_many(ids.as_slice().into()).await?;
        for job in jobs.into_iter().flatten() {
            if job.state != JobState::Scheduled || job.attempt > 0 {
                continue;
            }
            let reason = Some(format!("schedule {} was {why}", s.spec.name));
            match self
                .backend
                .job_cancel(CancelParams { id: job.id, reason })
                .await
            {
                Ok(_) | Err(Error::InvalidTransition { .. }) | Err(Error::JobNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
