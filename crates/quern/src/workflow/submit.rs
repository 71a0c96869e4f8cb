//! Submitting a validated workflow: one atomic backend call stores the workflow record and a
//! job per task, wired with `depends_on` and triggers so the backend's dependency machinery
//! unblocks and skips them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::meta::TaskMeta;
use super::plan::{JobTemplate, WorkflowPlan};
use crate::backend::{Backend, WorkflowCreateParams};
use crate::model::{Codec, JobId, NewJob, NewWorkflow, Payload, WorkflowRecord};
use crate::{Error, Result};

/// Options for [`submit`].
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// The workflow's id; a fresh UUIDv7 string when `None`.
    pub id: Option<String>,
}

/// A job for `template` with its payload as written (templates are rendered when the task
/// becomes ready; the stored payload shows what the file said).
pub(crate) fn job_for(
    template: &JobTemplate,
    workflow_id: &str,
    meta: &TaskMeta,
) -> Result<NewJob> {
    let raw = match &template.raw_params {
        Value::Null => Value::Object(Default::default()),
        v => v.clone(),
    };
    let payload = Payload::from_json_value(&raw, &Codec::default())?;
    let mut job = NewJob::new(template.kind.clone(), payload)
        .queue(template.queue.clone())
        .priority(template.priority)
        .max_attempts(template.max_attempts)
        .workflow(workflow_id);
    job.retry = template.retry.clone();
    job.timeout = template.timeout;
    job.meta = meta.to_value();
    Ok(job)
}

/// The record and jobs that [`submit`] stores, without storing them.
pub fn build(plan: &WorkflowPlan, id: &str) -> Result<WorkflowCreateParams> {
    let mut ids: Vec<JobId> = Vec::with_capacity(plan.tasks().len());
    let mut jobs = Vec::with_capacity(plan.tasks().len());
    for (pos, t) in plan.tasks().iter().enumerate() {
        let mut job = job_for(&t.job, id, &TaskMeta::task(&t.id, t.level))?;
        job.depends_on = plan.dependencies(pos).iter().map(|&d| ids[d]).collect();
        job.trigger = t.trigger;
        ids.push(job.id);
        jobs.push(job);
    }
    let tasks: BTreeMap<String, JobId> = plan
        .tasks()
        .iter()
        .zip(&ids)
        .map(|(t, j)| (t.id.clone(), *j))
        .collect();
    let spec = serde_json::to_value(plan.spec())
        .map_err(|e| Error::Codec(format!("cannot store the workflow definition: {e}")))?;
    Ok(WorkflowCreateParams {
        workflow: NewWorkflow {
            id: id.to_owned(),
            name: plan.name().to_owned(),
            spec,
            tasks,
        },
        jobs,
    })
}

/// Stores the workflow and all of its task jobs in one atomic call and returns the record.
/// Tasks without dependencies are queued at once; nothing is stored if anything is refused.
pub async fn submit(
    backend: &dyn Backend,
    plan: &WorkflowPlan,
    opts: SubmitOptions,
) -> Result<WorkflowRecord> {
    let id = opts.id.unwrap_or_else(|| JobId::new().to_string());
    backend.workflow_create(build(plan, &id)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Trigger;
    use crate::workflow::SourceFormat;

    #[test]
    fn jobs_follow_the_plan() {
        let plan = WorkflowPlan::load(
            r#"
name: w
defaults: {queue: etl, retry: 2}
tasks:
  - {id: b, kind: k, depends_on: [a], trigger: all_done, params: {x: "${a.result}"}}
  - {id: a, kind: k, priority: high}
"#,
            SourceFormat::Yaml,
            &[],
        )
        .unwrap();
        let p = build(&plan, "wf-1").unwrap();
        assert_eq!(p.jobs.len(), 2);
        let (a, b) = (&p.jobs[0], &p.jobs[1]);
        assert_eq!(p.workflow.tasks["a"], a.id);
        assert_eq!(p.workflow.tasks["b"], b.id);
        assert_eq!(b.depends_on, vec![a.id]);
        assert_eq!(b.trigger, Trigger::AllDone);
        assert_eq!((a.queue.as_str(), a.max_attempts), ("etl", 3));
        assert_eq!(a.priority, crate::Priority::HIGH);
        assert_eq!(a.workflow_id.as_deref(), Some("wf-1"));
        assert_eq!(a.payload.to_json_value().unwrap(), serde_json::json!({}));
        assert_eq!(
            b.payload.to_json_value().unwrap(),
            serde_json::json!({"x": "${a.result}"})
        );
        let m = TaskMeta::from_meta(&b.meta).unwrap();
        assert_eq!((m.task.as_str(), m.level), ("b", 1));
        let spec: crate::workflow::WorkflowSpec = serde_json::from_value(p.workflow.spec).unwrap();
        assert_eq!(&spec, plan.spec());
    }
}
