//! Operator actions on a stored workflow: cancel and retry.

use std::collections::HashMap;

use super::advance::is_expanded;
use super::stored::plan_of;
use crate::backend::{Backend, CancelScope, WorkflowUpdateParams};
use crate::model::{Job, JobId, JobState, WorkflowPhase, WorkflowRecord, WorkflowState};
use crate::{Error, Result};

/// How many times an action re-reads the record after losing a compare-and-set race.
const ATTEMPTS: usize = 5;

async fn read(backend: &dyn Backend, id: &str) -> Result<WorkflowRecord> {
    backend
        .workflow_get(id.into())
        .await?
        .ok_or_else(|| Error::WorkflowNotFound(id.to_owned()))
}

/// Cancels a running workflow: its jobs that have not started are cancelled and running
/// ones lose their lease (their handlers are told to stop at the next heartbeat). The
/// workflow ends `cancelled`; no compensation runs. Refused for a workflow that already
/// ended.
pub async fn cancel(
    backend: &dyn Backend,
    id: &str,
    reason: Option<String>,
) -> Result<WorkflowRecord> {
    let reason = reason.unwrap_or_else(|| "cancelled by request".to_owned());
    for _ in 0..ATTEMPTS {
        let rec = read(backend, id).await?;
        if rec.state.is_final() {
            return Err(Error::InvalidArgument(format!(
                "workflow {id} already ended ({}); only a running workflow can be cancelled",
                rec.state
            )));
        }
        let mut p = WorkflowUpdateParams::new(id, rec.revision);
        p.state = Some(WorkflowState::Cancelled);
        p.cancel = Some(CancelScope::All);
        p.error = Some(Some(reason.clone()));
        match backend.workflow_update(p).await {
            Err(Error::Conflict(_)) => continue,
            other => return other,
        }
    }
    Err(Error::Conflict(format!(
        "workflow {id} kept changing; try again"
    )))
}

/// What [`retry`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryReport {
    pub record: WorkflowRecord,
    /// The tasks run again, in topological order.
    pub tasks: Vec<String>,
    /// The jobs moved back (tasks and failed `for_each` instances).
    pub jobs: Vec<JobId>,
}

/// Runs a failed or cancelled workflow again from where it failed: its dead and cancelled
/// tasks, and the tasks downstream of them that did not succeed, are moved back (in
/// topological order, in one step with the state change to `running`); succeeded tasks keep
/// their results. A `for_each` task re-runs only its failed instances. A workflow whose
/// compensations ran is refused: its completed steps were undone, so submit it again.
pub async fn retry(backend: &dyn Backend, id: &str) -> Result<RetryReport> {
    for _ in 0..ATTEMPTS {
        let rec = read(backend, id).await?;
        if !matches!(rec.state, WorkflowState::Failed | WorkflowState::Cancelled) {
            return Err(Error::InvalidArgument(format!(
                "workflow {id} is {}; only a failed or cancelled workflow can be retried",
                rec.state
            )));
        }
        if rec.phase == WorkflowPhase::Compensating {
            return Err(Error::InvalidArgument(format!(
                "workflow {id} ran its compensations, so its completed steps were undone; submit it again instead"
            )));
        }
        let (tasks, jobs) = plan_retry(backend, &rec).await?;
        if jobs.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "workflow {id} has no failed task that can run again"
            )));
        }
        let mut p = WorkflowUpdateParams::new(id, rec.revision);
        p.state = Some(WorkflowState::Running);
        p.error = Some(None);
        p.retry = jobs.clone();
        match backend.workflow_update(p).await {
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
            Ok(record) => {
                return Ok(RetryReport {
                    record,
                    tasks,
                    jobs,
                });
            }
        }
    }
    Err(Error::Conflict(format!(
        "workflow {id} kept changing; try again"
    )))
}

/// Which tasks and jobs to move back, in order.
async fn plan_retry(
    backend: &dyn Backend,
    rec: &WorkflowRecord,
) -> Result<(Vec<String>, Vec<JobId>)> {
    let plan = plan_of(rec)?;
    let ids: Vec<JobId> = plan
        .tasks()
        .iter()
        .map(|t| {
            rec.tasks.get(&t.id).copied().ok_or_else(|| {
                Error::Storage(format!(
                    "workflow {} has no job for task `{}`",
                    rec.id, t.id
                ))
            })
        })
        .collect::<Result<_>>()?;
    let jobs: Vec<Job> = backend
        .job_get_many((&ids).into())
        .await?
        .into_iter()
        .zip(&ids)
        .map(|(j, id)| j.ok_or(Error::JobNotFound(*id)))
        .collect::<Result<_>>()?;
    // States as they will be once the earlier moves of this retry are done.
    let mut sim: Vec<JobState> = jobs.iter().map(|j| j.state).collect();
    let mut failed_upstream = vec![false; jobs.len()];
    let mut tasks = Vec::new();
    let mut moves = Vec::new();
    let mut children_of: HashMap<usize, Vec<Job>> = HashMap::new();
    for (pos, t) in plan.tasks().iter().enumerate() {
        let job = &jobs[pos];
        let failed_here = matches!(job.state, JobState::Dead | JobState::Cancelled);
        let upstream = plan.dependencies(pos).iter().any(|&d| failed_upstream[d]);
        failed_upstream[pos] = failed_here || upstream;
        if job.state == JobState::Succeeded || !job.state.is_terminal() || !failed_upstream[pos] {
            continue;
        }
        let expanded = t.for_each.is_some() && is_expanded(job);
        if expanded {
            // It waits on its instances again: the failed ones run again first.
            let children = backend.job_get_many((&job.depends_on).into()).await?;
            children_of.insert(pos, children.into_iter().flatten().collect());
        } else {
            let deps: Vec<JobState> = plan.dependencies(pos).iter().map(|&d| sim[d]).collect();
            if t.trigger.resolve(&deps) == Some(JobState::Skipped) {
                // Its trigger can no longer be met (a dependency was rightly skipped): it
                // stays as it is.
                continue;
            }
        }
        if let Some(children) = children_of.get(&pos) {
            moves.extend(
                children
                    .iter()
                    .filter(|c| matches!(c.state, JobState::Dead | JobState::Cancelled))
                    .map(|c| c.id),
            );
        }
        sim[pos] = JobState::Blocked;
        tasks.push(t.id.clone());
        moves.push(job.id);
    }
    Ok((tasks, moves))
}
