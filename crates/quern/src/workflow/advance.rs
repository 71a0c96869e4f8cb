//! Moving a running workflow along: the failure policy, the saga and the final state. The
//! workflow monitor (`maintenance::WorkflowMonitor`) calls [`Advancer::advance`] for every
//! running workflow on each tick; `quern workflow run` calls it for its own workflow.
//!
//! One pass, in phase `tasks`:
//! 1. Read the workflow's job counts (one indexed count; no scan of other jobs).
//! 2. A job ended dead or cancelled: record the first failure as the workflow's error and,
//!    with `on_failure: fail_fast`, cancel every job that has not started (running ones
//!    finish). With `continue`, independent branches go on; dependents of the failed task
//!    are skipped by their triggers.
//! 3. Nothing is pending or running any more: no failure ⇒ `succeeded`. A failure ⇒ the
//!    compensations of the tasks that succeeded are stored as one chain in reverse
//!    topological order (each waits for the one before with trigger `all_done`, so every
//!    compensation runs even if one fails) and the phase becomes `compensating`; with
//!    nothing to compensate the workflow is `failed`.
//!
//! In phase `compensating`, once the last compensation is finished: `compensated` if every
//! one succeeded, else `failed`.
//!
//! Every change is one `workflow_update` at the revision the pass read, so two monitors
//! racing (or a monitor and an operator's cancel) never both act: the loser gets `Conflict`
//! and looks again on its next pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::meta::{Expanded, TaskMeta, TaskRole};
use super::spec::FailurePolicy;
use super::stored::StoredWorkflow;
use super::submit::job_for;
use crate::Result;
use crate::backend::{Backend, CancelScope, WorkflowUpdateParams};
use crate::model::{
    Job, JobId, JobState, NewJob, Trigger, WorkflowPhase, WorkflowRecord, WorkflowState,
};

/// Plans kept in the cache before it is cleared.
const CACHE_CAP: usize = 256;

/// Advances running workflows (see the module docs). Cheap to share.
pub struct Advancer {
    backend: Arc<dyn Backend>,
    cache: Mutex<HashMap<String, Arc<StoredWorkflow>>>,
}

impl std::fmt::Debug for Advancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Advancer")
    }
}

/// The last error of a failed job, or its state.
fn why(job: &Job) -> String {
    job.errors
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_else(|| job.state.to_string())
}

impl Advancer {
    /// An advancer over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Advancer {
            backend,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn loaded(&self, rec: &WorkflowRecord) -> Result<Arc<StoredWorkflow>> {
        if let Some(w) = self.cache.lock().expect("cache lock").get(&rec.id) {
            return Ok(Arc::clone(w));
        }
        let w = Arc::new(StoredWorkflow::from_record(rec)?);
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(rec.id.clone(), Arc::clone(&w));
        Ok(w)
    }

    /// One pass over a workflow; returns the record as it is afterwards. A record that is
    /// not running is returned as it is. `Conflict` means someone else changed it meanwhile.
    pub async fn advance(&self, rec: WorkflowRecord) -> Result<WorkflowRecord> {
        if rec.state.is_final() {
            return Ok(rec);
        }
        let wf = self.loaded(&rec)?;
        match rec.phase {
            WorkflowPhase::Tasks => self.tasks_phase(rec, &wf).await,
            WorkflowPhase::Compensating => self.compensating_phase(rec).await,
        }
    }

    /// Reads the record and advances it.
    pub async fn advance_id(&self, id: &str) -> Result<WorkflowRecord> {
        let rec = self
            .backend
            .workflow_get(id.into())
            .await?
            .ok_or_else(|| crate::Error::WorkflowNotFound(id.to_owned()))?;
        self.advance(rec).await
    }

    async fn tasks_phase(
        &self,
        rec: WorkflowRecord,
        wf: &StoredWorkflow,
    ) -> Result<WorkflowRecord> {
        let counts = self.backend.workflow_counts((&rec.id).into()).await?;
        let failed = counts.dead + counts.cancelled;
        let pending = counts.scheduled + counts.queued + counts.blocked;
        let fail_fast = wf.plan.on_failure() == FailurePolicy::FailFast;
        if failed > 0 && (rec.error.is_none() || (fail_fast && pending > 0)) {
            let mut p = WorkflowUpdateParams::new(rec.id.clone(), rec.revision);
            if rec.error.is_none() {
                p.error = Some(Some(self.first_failure(wf).await?));
            }
            if fail_fast && pending > 0 {
                p.cancel = Some(CancelScope::NotStarted);
            }
            return self.backend.workflow_update(p).await;
        }
        if pending + counts.running > 0 {
            return Ok(rec);
        }
        if failed == 0 {
            return self.finish(&rec, WorkflowState::Succeeded, None).await;
        }
        let compensations = self.compensations(wf).await?;
        if compensations.is_empty() {
            return self.finish(&rec, WorkflowState::Failed, None).await;
        }
        let mut p = WorkflowUpdateParams::new(rec.id.clone(), rec.revision);
        p.phase = Some(WorkflowPhase::Compensating);
        p.compensations = compensations;
        self.backend.workflow_update(p).await
    }

    async fn compensating_phase(&self, rec: WorkflowRecord) -> Result<WorkflowRecord> {
        let Some(last) = rec.compensations.last() else {
            return self.finish(&rec, WorkflowState::Failed, None).await;
        };
        // The chain runs in order, so the last one finishing means all did.
        match self.backend.job_get((*last).into()).await? {
            Some(j) if !j.state.is_terminal() => return Ok(rec),
            _ => {}
        }
        let jobs = self
            .backend
            .job_get_many((&rec.compensations).into())
            .await?;
        let failed = jobs
            .iter()
            .flatten()
            .find(|j| j.state != JobState::Succeeded);
        match failed {
            None => self.finish(&rec, WorkflowState::Compensated, None).await,
            Some(j) => {
                let task = TaskMeta::from_meta(&j.meta)
                    .map(|m| m.task)
                    .unwrap_or_else(|| "?".into());
                let note = format!("the compensation of `{task}` ended {}: {}", j.state, why(j));
                let error = match &rec.error {
                    Some(e) => format!("{e}; {note}"),
                    None => note,
                };
                self.finish(&rec, WorkflowState::Failed, Some(error)).await
            }
        }
    }

    async fn finish(
        &self,
        rec: &WorkflowRecord,
        state: WorkflowState,
        error: Option<String>,
    ) -> Result<WorkflowRecord> {
        let mut p = WorkflowUpdateParams::new(rec.id.clone(), rec.revision);
        p.state = Some(state);
        if error.is_some() {
            p.error = Some(error);
        }
        let done = self.backend.workflow_update(p).await?;
        tracing::info!(workflow_id = %done.id, name = %done.name, state = %done.state, "workflow finished");
        Ok(done)
    }

    /// The task jobs, in plan order.
    async fn task_jobs(&self, wf: &StoredWorkflow) -> Result<Vec<(String, Option<Job>)>> {
        let names: Vec<&str> = wf.plan.tasks().iter().map(|t| t.id.as_str()).collect();
        let ids: Vec<JobId> = names.iter().filter_map(|n| wf.job_of(n)).collect();
        let jobs = self.backend.job_get_many((&ids).into()).await?;
        Ok(names.into_iter().map(str::to_owned).zip(jobs).collect())
    }

    /// A line naming the first failed task (or instance) and why.
    async fn first_failure(&self, wf: &StoredWorkflow) -> Result<String> {
        let jobs = self.task_jobs(wf).await?;
        for (task, job) in &jobs {
            if let Some(j) = job
                && matches!(j.state, JobState::Dead | JobState::Cancelled)
            {
                return Ok(format!("task `{task}` ended {}: {}", j.state, why(j)));
            }
        }
        // Still fanning out: the failure is one of the instances.
        for (task, job) in &jobs {
            let Some(parent) = job else { continue };
            let fans_out = wf.plan.task(task).is_some_and(|t| t.for_each.is_some());
            if !fans_out || !is_expanded(parent) {
                continue;
            }
            let children = self
                .backend
                .job_get_many((&parent.depends_on).into())
                .await?;
            for (i, c) in children.iter().enumerate() {
                if let Some(c) = c
                    && matches!(c.state, JobState::Dead | JobState::Cancelled)
                {
                    return Ok(format!(
                        "task `{task}` instance {i} ended {}: {}",
                        c.state,
                        why(c)
                    ));
                }
            }
        }
        Ok("a job of the workflow failed".into())
    }

    /// The compensation chain: for every task that succeeded and has a `compensate` step,
    /// in reverse topological order (for a `for_each` task, one per succeeded instance, last
    /// item first), each waiting for the one before.
    async fn compensations(&self, wf: &StoredWorkflow) -> Result<Vec<NewJob>> {
        let by_task: HashMap<String, Option<Job>> = self.task_jobs(wf).await?.into_iter().collect();
        let mut chain: Vec<NewJob> = Vec::new();
        for task in wf.plan.reverse_topological() {
            let Some(comp) = &task.compensate else {
                continue;
            };
            let Some(Some(job)) = by_task.get(&task.id) else {
                continue;
            };
            let mut undo: Vec<TaskMeta> = Vec::new();
            if task.for_each.is_some() {
                if !is_expanded(job) {
                    continue;
                }
                let children = self.backend.job_get_many((&job.depends_on).into()).await?;
                for c in children.iter().rev().flatten() {
                    if c.state != JobState::Succeeded {
                        continue;
                    }
                    let m = TaskMeta::from_meta(&c.meta);
                    undo.push(TaskMeta {
                        role: TaskRole::Compensation,
                        index: m.as_ref().and_then(|m| m.index),
                        item: m.and_then(|m| m.item),
                        undoes: Some(c.id),
                        ..TaskMeta::task(&task.id, task.level)
                    });
                }
            } else if job.state == JobState::Succeeded {
                undo.push(TaskMeta {
                    role: TaskRole::Compensation,
                    ..TaskMeta::task(&task.id, task.level)
                });
            }
            for meta in undo {
                let mut j = job_for(comp, &wf.id, &meta)?;
                if let Some(prev) = chain.last() {
                    j.depends_on = vec![prev.id];
                    j.trigger = Trigger::AllDone;
                }
                chain.push(j);
            }
        }
        Ok(chain)
    }
}

/// Whether a `for_each` parent has spawned its instances (its `depends_on` are then its
/// instances).
pub(crate) fn is_expanded(job: &Job) -> bool {
    job.checkpoint
        .as_ref()
        .is_some_and(|c| c.decode::<Expanded>().is_ok())
}
