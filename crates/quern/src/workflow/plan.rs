//! A validated workflow: what the runtime submits and what `validate` / `graph` display.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::condition::Condition;
use super::dag::Dag;
use super::reference::Reference;
use super::render::{Item, RenderContext, RenderError};
use super::spec::{ExecutionMode, FailurePolicy, WorkflowSpec};
use super::template::ValueTemplate;
use crate::model::{Priority, RetryPolicy, Trigger};

/// Attempts a workflow task gets when neither it nor `defaults.retry` says otherwise: one,
/// because a failing step usually needs a person, and retries are one line to add.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1;

/// What a `for_each` task iterates over, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum ForEach {
    /// A reference to a list, read when the task becomes ready.
    Reference(Reference),
    /// A list written in the file.
    Items(Vec<Value>),
}

impl ForEach {
    /// The list to fan out over; anything but a list is an error naming what it got.
    pub fn items(&self, ctx: &RenderContext) -> Result<Vec<Value>, RenderError> {
        match self {
            ForEach::Items(items) => Ok(items.clone()),
            ForEach::Reference(r) => match ctx.resolve(r, None)? {
                Value::Array(items) => Ok(items),
                other => Err(RenderError {
                    reference: r.to_string(),
                    message: format!(
                        "for_each needs a list, got {}",
                        super::render::type_name(&other)
                    ),
                }),
            },
        }
    }
}

/// A step that runs a job: the task itself, or its compensation.
#[derive(Clone, Debug, PartialEq)]
pub struct JobTemplate {
    /// The handler name.
    pub kind: String,
    /// The payload as written (templates unrendered), for storage.
    pub raw_params: Value,
    /// The payload, parsed.
    pub params: ValueTemplate,
    pub queue: String,
    pub priority: Priority,
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// Backoff between attempts; `None` means the worker's default for the kind.
    pub retry: Option<RetryPolicy>,
    /// Per-attempt time limit; `None` means the worker's default.
    pub timeout: Option<Duration>,
}

impl JobTemplate {
    /// Renders the payload (`item` for a `for_each` instance). An empty payload is `{}`.
    pub fn render_params(
        &self,
        ctx: &RenderContext,
        item: Option<Item<'_>>,
    ) -> Result<Value, RenderError> {
        match self.params.render(ctx, item)? {
            Value::Null => Ok(Value::Object(Default::default())),
            v => Ok(v),
        }
    }
}

/// One task of a validated workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTask {
    pub id: String,
    /// What runs and how (defaults applied).
    pub job: JobTemplate,
    /// Direct dependencies, in the order the file lists them.
    pub depends_on: Vec<String>,
    pub trigger: Trigger,
    /// `when` or the conjunction of `conditions`.
    pub condition: Option<Condition>,
    pub for_each: Option<ForEach>,
    /// The undo step (saga), if any.
    pub compensate: Option<JobTemplate>,
    /// Execution level: 0 for tasks without dependencies, else one more than the deepest
    /// dependency.
    pub level: usize,
    /// The line of the task in the source file, when it came from one.
    pub line: Option<u32>,
}

impl PlannedTask {
    /// Every reference the task reads when it becomes ready (params, condition, for_each),
    /// so the runtime can load exactly those upstream results.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out: Vec<&Reference> = self
            .job
            .params
            .references()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        if let Some(c) = &self.condition {
            out.extend(c.references());
        }
        if let Some(ForEach::Reference(r)) = &self.for_each {
            out.push(r);
        }
        out
    }
}

/// A workflow that passed validation. Tasks are in topological order (ties by id).
#[derive(Clone, Debug)]
pub struct WorkflowPlan {
    pub(crate) spec: WorkflowSpec,
    pub(crate) tasks: Vec<PlannedTask>,
    pub(crate) index: HashMap<String, usize>,
    /// Indices are positions in `tasks`.
    pub(crate) dag: Dag,
}

impl WorkflowPlan {
    /// The file model the plan was built from (variables after overrides), for storage.
    pub fn spec(&self) -> &WorkflowSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn description(&self) -> Option<&str> {
        self.spec.description.as_deref()
    }

    pub fn variables(&self) -> &BTreeMap<String, Value> {
        &self.spec.variables
    }

    pub fn execution_mode(&self) -> ExecutionMode {
        self.spec.execution_mode
    }

    pub fn max_parallel(&self) -> Option<u32> {
        self.spec.max_parallel
    }

    pub fn on_failure(&self) -> FailurePolicy {
        self.spec.on_failure
    }

    /// The tasks in topological order.
    pub fn tasks(&self) -> &[PlannedTask] {
        &self.tasks
    }

    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&PlannedTask> {
        self.index.get(id).map(|&i| &self.tasks[i])
    }

    /// The position of a task in [`WorkflowPlan::tasks`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Positions of the tasks that depend directly on the task at `pos`.
    pub fn dependents(&self, pos: usize) -> &[usize] {
        self.dag.dependents(pos)
    }

    /// Positions of the direct dependencies of the task at `pos`.
    pub fn dependencies(&self, pos: usize) -> &[usize] {
        self.dag.deps(pos)
    }

    /// Task ids grouped by execution level, each level sorted by id.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let levels: Vec<usize> = self.tasks.iter().map(|t| t.level).collect();
        self.dag
            .level_groups(&levels)
            .into_iter()
            .map(|g| g.into_iter().map(|i| self.tasks[i].id.as_str()).collect())
            .collect()
    }

    /// The tasks in reverse topological order: every task before its dependencies. Saga
    /// compensations run in this order.
    pub fn reverse_topological(&self) -> impl Iterator<Item = &PlannedTask> {
        self.tasks.iter().rev()
    }

    /// The levels as text, one line per level: `0: fetch_data` … (what `validate` prints).
    pub fn levels_text(&self) -> String {
        self.levels()
            .iter()
            .enumerate()
            .map(|(l, ids)| format!("{l}: {}\n", ids.join(", ")))
            .collect()
    }
}
