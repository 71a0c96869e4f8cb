//! The context templates and conditions are rendered against when a task becomes ready:
//! upstream results and metadata, workflow variables and id, the (allow-listed) environment
//! and, for `for_each` instances, the current item.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_json::Value;

use super::reference::{MetadataField, PathSegment, RefTarget, Reference, format_path};
use crate::clock::Millis;

/// What a finished upstream task left behind for templates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskOutput {
    /// The stored result (`None` if the task stored none, e.g. it was skipped).
    pub result: Option<Value>,
    pub metadata: TaskMetadata,
}

/// The metadata `${TASK.metadata.FIELD}` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskMetadata {
    pub duration_ms: Option<u64>,
    pub attempt: Option<u32>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

/// Where `${env.NAME}` reads from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EnvSource {
    /// No environment: every `${env.…}` fails (the default, so nothing leaks by accident).
    #[default]
    Denied,
    /// Exactly these values (a captured environment, or tests).
    Map(BTreeMap<String, String>),
    /// The process environment, limited to these names (a worker's allow-list, such as
    /// `quern worker`'s `[worker] workflow_env`).
    Process { allow: BTreeSet<String> },
    /// The whole process environment (a local `quern workflow run`).
    ProcessUnrestricted,
    /// The whole process environment, but only for tasks of the workflow with this id;
    /// tasks of any other workflow see none (what `quern workflow run` gives its in-process
    /// workers, which may also claim other workflows' jobs from a shared store).
    ProcessFor(String),
}

/// The current element of a `for_each` task instance.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The element.
    pub value: &'a Value,
    /// Its position in the list, from 0.
    pub index: usize,
}

/// Everything templates and conditions can read when a task becomes ready.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    pub workflow_id: String,
    pub workflow_name: String,
    /// The workflow's variables after `--var` overrides.
    pub variables: BTreeMap<String, Value>,
    /// Finished tasks by id. A `for_each` task's result is the list of its instances'
    /// results in item order.
    pub tasks: HashMap<String, TaskOutput>,
    pub env: EnvSource,
}

/// A reference that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The reference as written, e.g. `${fetch.result.rows[3]}`.
    pub reference: String,
    /// Why it failed.
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reference, self.message)
    }
}

impl std::error::Error for RenderError {}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Follows `path` inside `root`; `what` names the root in messages ("the result of fetch").
pub fn walk_path<'v>(
    root: &'v Value,
    path: &[PathSegment],
    what: &str,
) -> Result<&'v Value, String> {
    let mut v = root;
    for (k, seg) in path.iter().enumerate() {
        let here = if k == 0 {
            what.to_owned()
        } else {
            format!("{what}{}", format_path(&path[..k]))
        };
        v = match (seg, v) {
            (PathSegment::Key(key), Value::Object(map)) => match map.get(key) {
                Some(x) => x,
                None => {
                    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    let shown = if keys.is_empty() {
                        "it is empty".to_owned()
                    } else if keys.len() > 10 {
                        format!("keys: {}, …", keys[..10].join(", "))
                    } else {
                        format!("keys: {}", keys.join(", "))
                    };
                    return Err(format!("{here} has no key `{key}` ({shown})"));
                }
            },
            (PathSegment::Index(i), Value::Array(items)) => match items.get(*i) {
                Some(x) => x,
                None => {
                    return Err(format!(
                        "index {i} is out of range: {here} has {} item{}",
                        items.len(),
                        if items.len() == 1 { "" } else { "s" }
                    ));
                }
            },
            (PathSegment::Key(key), other) => {
                return Err(format!(
                    "cannot read key `{key}`: {here} is {}, not an object",
                    type_name(other)
                ));
            }
            (PathSegment::Index(i), other) => {
                return Err(format!(
                    "cannot read index {i}: {here} is {}, not a list",
                    type_name(other)
                ));
            }
        };
    }
    Ok(v)
}

impl RenderContext {
    /// Resolves one reference to a JSON value.
    pub fn resolve(&self, r: &Reference, item: Option<Item<'_>>) -> Result<Value, RenderError> {
        let fail = |m: String| RenderError {
            reference: r.to_string(),
            message: m,
        };
        match &r.target {
            RefTarget::TaskResult { task, path } => {
                let out = self
                    .tasks
                    .get(task)
                    .ok_or_else(|| fail(format!("task `{task}` has not finished")))?;
                let result = out.result.as_ref().ok_or_else(|| {
                    fail(format!(
                        "task `{task}` has no result (it stored none or was skipped)"
                    ))
                })?;
                walk_path(result, path, &format!("the result of `{task}`"))
                    .cloned()
                    .map_err(fail)
            }
            RefTarget::TaskMetadata { task, field } => {
                let out = self
                    .tasks
                    .get(task)
                    .ok_or_else(|| fail(format!("task `{task}` has not finished")))?;
                let m = &out.metadata;
                let v = match field {
                    MetadataField::DurationMs => m.duration_ms.map(Value::from),
                    MetadataField::Attempt => m.attempt.map(Value::from),
                    MetadataField::StartedAt => m.started_at.map(Value::from),
                    MetadataField::FinishedAt => m.finished_at.map(Value::from),
                };
                v.ok_or_else(|| fail(format!("task `{task}` has no {} recorded", field.as_str())))
            }
            RefTarget::WorkflowId => Ok(Value::String(self.workflow_id.clone())),
            RefTarget::WorkflowName => Ok(Value::String(self.workflow_name.clone())),
            RefTarget::Variable { name, path } => {
                let v = self
                    .variables
                    .get(name)
                    .ok_or_else(|| fail(format!("the workflow has no variable `{name}`")))?;
                walk_path(v, path, &format!("variable `{name}`"))
                    .cloned()
                    .map_err(fail)
            }
            RefTarget::Env { name } => {
                let visible =
                    match &self.env {
                        EnvSource::Denied => {
                            return Err(fail(
                                "environment variables are not available to this workflow".into(),
                            ));
                        }
                        EnvSource::Map(m) => {
                            return m.get(name).map(|s| Value::String(s.clone())).ok_or_else(
                                || fail(format!("environment variable {name} is not set")),
                            );
                        }
                        EnvSource::Process { allow } => allow.contains(name),
                        EnvSource::ProcessUnrestricted => true,
                        EnvSource::ProcessFor(id) if *id == self.workflow_id => true,
                        EnvSource::ProcessFor(_) => {
                            return Err(fail(
                                "environment variables are not available to this workflow".into(),
                            ));
                        }
                    };
                if !visible {
                    return Err(fail(format!(
                        "environment variable {name} is not in the worker's allow-list (workflow_env)"
                    )));
                }
                std::env::var(name)
                    .map(Value::String)
                    .map_err(|_| fail(format!("environment variable {name} is not set")))
            }
            RefTarget::Item { path } => {
                let it = item
                    .ok_or_else(|| fail("${item} is only available in a for_each task".into()))?;
                walk_path(it.value, path, "the item").cloned().map_err(fail)
            }
            RefTarget::Index => item
                .map(|it| Value::from(it.index))
                .ok_or_else(|| fail("${index} is only available in a for_each task".into())),
        }
    }
}
