//! Assembling a [`WorkflowPlan`] from a validated spec: defaults applied, tasks in
//! topological order, levels, and a graph indexed by plan position.

use std::collections::HashMap;

use serde_json::Value;

use super::condition::Condition;
use super::dag::Dag;
use super::plan::{DEFAULT_MAX_ATTEMPTS, JobTemplate, PlannedTask, WorkflowPlan};
use super::spec::{Defaults, RetrySpec, WorkflowSpec};
use super::template::ValueTemplate;
use super::validate::{Locator, TaskParts};
use crate::model::Priority;

/// The settings a task or compensation may set for itself; unset ones come from defaults.
struct Step<'a> {
    kind: &'a str,
    raw_params: &'a Value,
    queue: Option<&'a String>,
    priority: Option<Priority>,
    retry: Option<&'a RetrySpec>,
    timeout: Option<std::time::Duration>,
}

impl Step<'_> {
    fn job(&self, params: ValueTemplate, defaults: &Defaults) -> JobTemplate {
        let retry = self
            .retry
            .cloned()
            .unwrap_or_default()
            .or(defaults.retry.as_ref());
        JobTemplate {
            kind: self.kind.to_owned(),
            raw_params: self.raw_params.clone(),
            params,
            queue: self
                .queue
                .or(defaults.queue.as_ref())
                .cloned()
                .unwrap_or_else(|| "default".to_owned()),
            priority: self.priority.or(defaults.priority).unwrap_or_default(),
            max_attempts: retry.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            retry: retry.policy,
            timeout: self.timeout.or(defaults.timeout),
        }
    }
}

pub(super) fn build_plan(
    spec: WorkflowSpec,
    parts: Vec<TaskParts>,
    loc: &Locator<'_>,
    dag: &Dag,
    uniq: &[usize],
    order: &[usize],
) -> WorkflowPlan {
    let levels = dag.levels(order);
    let mut parts: Vec<Option<TaskParts>> = parts.into_iter().map(Some).collect();
    let mut tasks = Vec::with_capacity(order.len());
    for &d in order {
        let i = uniq[d];
        let t = &spec.tasks[i];
        let p = parts[i].take().expect("each task is planned once");
        let compensate = t.compensate.as_ref().map(|comp| {
            Step {
                kind: &comp.kind,
                raw_params: &comp.params,
                queue: comp.queue.as_ref(),
                priority: comp.priority,
                retry: comp.retry.as_ref(),
                timeout: comp.timeout,
            }
            .job(
                p.compensate_params
                    .unwrap_or(ValueTemplate::Literal(Value::Null)),
                &spec.defaults,
            )
        });
        tasks.push(PlannedTask {
            id: t.id.clone(),
            job: Step {
                kind: &t.kind,
                raw_params: &t.params,
                queue: t.queue.as_ref(),
                priority: t.priority,
                retry: t.retry.as_ref(),
                timeout: t.timeout,
            }
            .job(p.params, &spec.defaults),
            depends_on: t.depends_on.clone(),
            trigger: t.trigger,
            condition: Condition::all(p.conditions.into_iter().map(|(c, _)| c).collect()),
            for_each: p.for_each,
            compensate,
            level: levels[d],
            line: loc.task_line(i),
        });
    }
    let index: HashMap<String, usize> = tasks
        .iter()
        .enumerate()
        .map(|(k, t)| (t.id.clone(), k))
        .collect();
    let mut plan_dag = Dag::new(tasks.iter().map(|t| t.id.clone()).collect());
    for (k, t) in tasks.iter().enumerate() {
        for dep in &t.depends_on {
            plan_dag.add_edge(index[dep.as_str()], k);
        }
    }
    WorkflowPlan {
        spec,
        tasks,
        index,
        dag: plan_dag,
    }
}
