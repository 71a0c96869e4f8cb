//! A stored workflow read back for running: the record's immutable parts (id, name, task →
//! job map) and the plan rebuilt from its stored spec, plus the render context built from
//! upstream jobs when a task becomes ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::plan::WorkflowPlan;
use super::reference::Reference;
use super::render::{EnvSource, RenderContext, TaskMetadata, TaskOutput};
use super::spec::WorkflowSpec;
use crate::backend::Backend;
use crate::model::{Job, JobId, JobState, WorkflowRecord};
use crate::{Error, Result};

/// A stored workflow as the runtime uses it: the parts of its [`WorkflowRecord`] that never
/// change after submission, and the plan rebuilt from its stored spec. (Not to be confused
/// with [`ParsedWorkflow`](super::ParsedWorkflow), a workflow *file* being loaded.)
#[derive(Debug)]
pub struct StoredWorkflow {
    pub id: String,
    pub name: String,
    pub tasks: BTreeMap<String, JobId>,
    pub plan: WorkflowPlan,
}

impl StoredWorkflow {
    /// Rebuilds the plan from a record's stored spec.
    pub fn from_record(rec: &WorkflowRecord) -> Result<StoredWorkflow> {
        Ok(StoredWorkflow {
            id: rec.id.clone(),
            name: rec.name.clone(),
            tasks: rec.tasks.clone(),
            plan: plan_of(rec)?,
        })
    }

    /// The job of a task.
    pub fn job_of(&self, task: &str) -> Option<JobId> {
        self.tasks.get(task).copied()
    }

    /// Reads the upstream jobs that `refs` name and builds the context to render against.
    pub async fn context(
        &self,
        backend: &dyn Backend,
        refs: &[&Reference],
        env: &EnvSource,
    ) -> Result<RenderContext> {
        let names: BTreeSet<&str> = refs.iter().filter_map(|r| r.task()).collect();
        let mut ids = Vec::with_capacity(names.len());
        let mut tasks = Vec::with_capacity(names.len());
        for name in names {
            if let Some(id) = self.job_of(name) {
                ids.push(id);
                tasks.push(name);
            }
        }
        // Most tasks read nothing upstream: no store round trip for them.
        let jobs = if ids.is_empty() {
            Vec::new()
        } else {
            backend.job_get_many((&ids).into()).await?
        };
        let mut outputs = HashMap::with_capacity(tasks.len());
        for (name, job) in tasks.into_iter().zip(jobs) {
            if let Some(job) = job
                && job.state.is_terminal()
            {
                outputs.insert(name.to_owned(), output_of(&job));
            }
        }
        Ok(RenderContext {
            workflow_id: self.id.clone(),
            workflow_name: self.name.clone(),
            variables: self.plan.variables().clone(),
            tasks: outputs,
            env: env.clone(),
        })
    }
}

/// The plan of a stored workflow.
pub fn plan_of(rec: &WorkflowRecord) -> Result<WorkflowPlan> {
    let spec: WorkflowSpec = serde_json::from_value(rec.spec.clone()).map_err(|e| {
        Error::Storage(format!(
            "workflow {} has an unreadable definition: {e}",
            rec.id
        ))
    })?;
    WorkflowPlan::from_spec(spec).map_err(|e| {
        Error::Storage(format!(
            "workflow {} has a stored definition that no longer validates: {e}",
            rec.id
        ))
    })
}

/// What templates see of a finished job: its result (only when it succeeded) and metadata.
pub fn output_of(job: &Job) -> TaskOutput {
    let result = if job.state == JobState::Succeeded {
        job.result.as_ref().and_then(|p| p.to_json_value().ok())
    } else {
        None
    };
    let duration_ms = match (job.started_at, job.finished_at) {
        (Some(s), Some(f)) if f >= s => Some((f - s) as u64),
        _ => None,
    };
    TaskOutput {
        result,
        metadata: TaskMetadata {
            duration_ms,
            attempt: (job.attempt > 0).then_some(job.attempt),
            started_at: job.started_at,
            finished_at: job.finished_at,
        },
    }
}
