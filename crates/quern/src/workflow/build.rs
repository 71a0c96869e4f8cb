//! Assembling a [`WorkflowPlan`] from a validated spec: defaults applied, tasks in
//! topological order, levels, and a graph indexed by plan position. `validate.rs` calls it;
//! this file knows nothing of validation (no source tree, no errors).

use std::collections::HashMap;

use serde_json::Value;

use super::condition::Condition;
use super::dag::Dag;
use super::plan::{DEFAULT_MAX_ATTEMPTS, ForEach, JobTemplate, PlannedTask, WorkflowPlan};
use super::spec::{Defaults, RetrySpec, WorkflowSpec};
use super::template::ValueTemplate;
use crate::model::Priority;

/// What validation parsed from one task before the graph was known; the plan is built from
/// it.
#[derive(Default)]
pub(super) struct TaskParts {
    pub params: ValueTemplate,
    /// Each condition with the line it came from.
    pub conditions: Vec<(Condition, Option<u32>)>,
    pub for_each: Option<ForEach>,
    pub compensate_params: Option<ValueTemplate>,
}

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

/// Builds the plan of a spec that passed validation. `parts[i]` and `task_line(i)` belong to
/// `spec.tasks[i]`; `uniq` maps a graph node to its task, and `order` is the graph's
/// topological order.
pub(super) fn build_plan(
    spec: WorkflowSpec,
    parts: Vec<TaskParts>,
    task_line: impl Fn(usize) -> Option<u32>,
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
            line: task_line(i),
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
