//! A stored workflow as `quern workflow status` shows it: its record, counts of its
//! jobs by state, and each task with the state of its job.

use serde::Serialize;

use super::advance::is_expanded;
use super::meta::TaskMeta;
use super::plan::WorkflowPlan;
use super::stored::plan_of;
use crate::backend::Backend;
use crate::model::{JobId, JobState, StateCounts, WorkflowRecord};
use crate::{Error, Result};

/// One task of a stored workflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskStatus {
    pub id: String,
    pub kind: String,
    pub level: usize,
    pub job_id: Option<JobId>,
    /// The state of the task's job (`None` if the job was pruned).
    pub state: Option<JobState>,
    pub attempt: u32,
    /// The last entry of the job's error history (the failure, or why it was skipped).
    pub last_error: Option<String>,
    /// For a `for_each` task that has fanned out: how many instances it spawned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<usize>,
}

/// One compensation of a workflow that is (or was) compensating.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompensationStatus {
    /// The task it undoes.
    pub task: String,
    /// The `for_each` instance it undoes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub job_id: JobId,
    pub state: Option<JobState>,
    pub last_error: Option<String>,
}

/// A stored workflow with the state of each task.
#[derive(Clone, Debug, Serialize)]
pub struct WorkflowStatus {
    pub record: WorkflowRecord,
    /// Every job of the workflow (tasks, instances, compensations) by state.
    pub counts: StateCounts,
    /// The tasks in topological order.
    pub tasks: Vec<TaskStatus>,
    /// The compensations, in the order they run (empty unless the workflow compensated).
    pub compensations: Vec<CompensationStatus>,
    /// The plan rebuilt from the stored definition (for graphs and levels).
    #[serde(skip)]
    pub plan: WorkflowPlan,
}

impl WorkflowStatus {
    /// The status of a task by id.
    pub fn task(&self, id: &str) -> Option<&TaskStatus> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// Reads a workflow's status: the record, its counts, and one read of all task jobs.
pub async fn status(backend: &dyn Backend, id: &str) -> Result<WorkflowStatus> {
    let record = backend
        .workflow_get(id.into())
        .await?
        .ok_or_else(|| Error::WorkflowNotFound(id.to_owned()))?;
    let plan = plan_of(&record)?;
    let counts = backend.workflow_counts(id.into()).await?;
    let ids: Vec<JobId> = plan
        .tasks()
        .iter()
        .filter_map(|t| record.tasks.get(&t.id).copied())
        .collect();
    let mut jobs = backend.job_get_many((&ids).into()).await?.into_iter();
    let tasks = plan
        .tasks()
        .iter()
        .map(|t| {
            let job_id = record.tasks.get(&t.id).copied();
            let job = job_id.and_then(|_| jobs.next().flatten());
            TaskStatus {
                id: t.id.clone(),
                kind: t.job.kind.clone(),
                level: t.level,
                job_id,
                state: job.as_ref().map(|j| j.state),
                attempt: job.as_ref().map_or(0, |j| j.attempt),
                last_error: job
                    .as_ref()
                    .and_then(|j| j.errors.last())
                    .map(|e| e.message.clone()),
                instances: job
                    .as_ref()
                    .filter(|j| t.for_each.is_some() && is_expanded(j))
                    .map(|j| j.depends_on.len()),
            }
        })
        .collect();
    let compensations = backend
        .job_get_many((&record.compensations).into())
        .await?
        .into_iter()
        .zip(&record.compensations)
        .map(|(job, id)| {
            let meta = job.as_ref().and_then(|j| TaskMeta::from_meta(&j.meta));
            CompensationStatus {
                task: meta.as_ref().map(|m| m.task.clone()).unwrap_or_default(),
                index: meta.and_then(|m| m.index),
                job_id: *id,
                state: job.as_ref().map(|j| j.state),
                last_error: job
                    .as_ref()
                    .and_then(|j| j.errors.last())
                    .map(|e| e.message.clone()),
            }
        })
        .collect();
    Ok(WorkflowStatus {
        record,
        counts,
        tasks,
        compensations,
        plan,
    })
}
