//! What a workflow job carries in its `meta`, so a worker that claims it knows which task it
//! is and what to prepare before the handler runs.
//!
//! Everything else (templates, conditions, `for_each`, compensations) is read from the plan
//! rebuilt from the workflow record's stored spec, so the jobs stay small.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::JobId;

/// The key of a workflow job's `meta` object under which [`TaskMeta`] is stored.
pub const META_KEY: &str = "workflow_task";

/// What a workflow job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskRole {
    /// The job of a task of the file. For a `for_each` task it is the parent of the
    /// instances: it expands them, waits, and finishes with their results as a list.
    Task,
    /// One instance of a `for_each` task (`index` says which); its payload is rendered
    /// when its parent expands.
    Instance,
    /// The compensation of a task (or of one instance of a `for_each` task).
    Compensation,
}

/// The workflow part of a job's `meta`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The task id in the workflow file.
    pub task: String,
    pub role: TaskRole,
    /// The task's execution level.
    pub level: usize,
    /// The instance's position in the `for_each` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The instance's element, kept only when a compensation may need `${item}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Value>,
    /// Set on an instance whose condition was false when its parent expanded: it is skipped
    /// with this reason when claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// On a compensation of one `for_each` instance: that instance's job, whose result is
    /// what `${TASK.result}` reads there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<JobId>,
}

impl TaskMeta {
    /// A task's job.
    pub fn task(task: &str, level: usize) -> TaskMeta {
        TaskMeta {
            task: task.to_owned(),
            role: TaskRole::Task,
            level,
            index: None,
            item: None,
            skip: None,
            undoes: None,
        }
    }

    /// Wraps it as a job's `meta`.
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            META_KEY.to_owned(),
            serde_json::to_value(self).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    /// Reads it from a job's `meta`; `None` when the job is not a workflow task.
    pub fn from_meta(meta: &Value) -> Option<TaskMeta> {
        meta.get(META_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// The checkpoint a `for_each` parent stores when it spawns its instances, so that its next
/// claim knows it only has to collect their results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expanded {
    /// How many instances were spawned.
    pub spawned: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_ignores_other_jobs() {
        let mut m = TaskMeta::task("fetch", 2);
        assert_eq!(TaskMeta::from_meta(&m.to_value()), Some(m.clone()));
        m.role = TaskRole::Instance;
        m.index = Some(7);
        m.skip = Some("no".into());
        let v = m.to_value();
        assert_eq!(v[META_KEY]["role"], "instance");
        assert_eq!(TaskMeta::from_meta(&v), Some(m));
        assert_eq!(TaskMeta::from_meta(&Value::Null), None);
        assert_eq!(TaskMeta::from_meta(&serde_json::json!({"other": 1})), None);
    }
}
