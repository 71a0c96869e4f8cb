//! The stored record of a running workflow. Its tasks are ordinary jobs (carrying the
//! workflow's id); the record holds what the jobs do not: the definition, the task → job map,
//! the workflow's own state and phase, and a revision for compare-and-set updates.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::JobId;
use crate::Error;
use crate::clock::Millis;

/// Where a workflow is in its life.
///
/// ```text
/// running ──every task succeeded or was skipped by its condition──▶ succeeded
///    │ a task ended dead or cancelled
///    ├── nothing to compensate ──▶ failed
///    └── compensations run (phase compensating) ──all succeeded──▶ compensated
///                                               └─one did not────▶ failed
/// running ──cancel──▶ cancelled          failed / cancelled ──retry──▶ running
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowState {
    /// Tasks are running or waiting (or, in phase `compensating`, compensations are). The
    /// workflow monitor moves it to one of the final states; `cancel` to `cancelled`.
    Running,
    /// Every task succeeded or was skipped because its condition was false.
    Succeeded,
    /// A task ended dead or cancelled and the failure was not (fully) compensated.
    Failed,
    /// Cancelled by an operator: pending tasks were cancelled, running ones told to stop.
    Cancelled,
    /// A task failed and every compensation of the tasks that had succeeded succeeded.
    Compensated,
}

impl WorkflowState {
    /// Every state.
    pub const ALL: [WorkflowState; 5] = [
        WorkflowState::Running,
        WorkflowState::Succeeded,
        WorkflowState::Failed,
        WorkflowState::Cancelled,
        WorkflowState::Compensated,
    ];

    /// The lowercase name used in storage, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Running => "running",
            WorkflowState::Succeeded => "succeeded",
            WorkflowState::Failed => "failed",
            WorkflowState::Cancelled => "cancelled",
            WorkflowState::Compensated => "compensated",
        }
    }

    /// A small stable number for compact storage.
    pub fn as_i64(self) -> i64 {
        match self {
            WorkflowState::Running => 0,
            WorkflowState::Succeeded => 1,
            WorkflowState::Failed => 2,
            WorkflowState::Cancelled => 3,
            WorkflowState::Compensated => 4,
        }
    }

    /// The inverse of [`WorkflowState::as_i64`].
    pub fn from_i64(n: i64) -> Option<Self> {
        WorkflowState::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// Every state but `running`.
    pub fn is_final(self) -> bool {
        self != WorkflowState::Running
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkflowState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        WorkflowState::ALL
            .into_iter()
            .find(|st| st.as_str() == t)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{s:?} is not a workflow state (one of running, succeeded, failed, cancelled, compensated)"
                ))
            })
    }
}

/// What a workflow is doing: its tasks, or undoing them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowPhase {
    /// The tasks of the workflow file run.
    #[default]
    Tasks,
    /// A task failed and the compensations of the tasks that succeeded run, one after the
    /// other. Once a workflow entered this phase it stays in it.
    Compensating,
}

impl WorkflowPhase {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowPhase::Tasks => "tasks",
            WorkflowPhase::Compensating => "compensating",
        }
    }

    /// A small stable number for compact storage.
    pub fn as_i64(self) -> i64 {
        match self {
            WorkflowPhase::Tasks => 0,
            WorkflowPhase::Compensating => 1,
        }
    }

    /// The inverse of [`WorkflowPhase::as_i64`].
    pub fn from_i64(n: i64) -> Option<Self> {
        match n {
            0 => Some(WorkflowPhase::Tasks),
            1 => Some(WorkflowPhase::Compensating),
            _ => None,
        }
    }
}

/// A workflow to store (see `Backend::workflow_create`). The backend adds the state
/// (`running`), the phase (`tasks`), the revision (1) and the times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewWorkflow {
    /// Chosen by the caller, so the task jobs can carry it: 1–128 bytes of letters, digits,
    /// `_ . : -` (a UUIDv7 string by default).
    pub id: String,
    /// The workflow file's `name`.
    pub name: String,
    /// The definition as validated, variables after overrides (a `WorkflowSpec` as JSON),
    /// so readers can rebuild the plan.
    pub spec: serde_json::Value,
    /// Each task id of the definition → the id of the job that runs it.
    pub tasks: BTreeMap<String, JobId>,
}

impl NewWorkflow {
    /// Checks what can be checked without the store.
    pub fn validate(&self) -> Result<(), Error> {
        validate_workflow_id(&self.id)?;
        if self.name.is_empty() || self.name.len() > 255 {
            return Err(Error::InvalidArgument(
                "workflow name must be 1-255 bytes".into(),
            ));
        }
        if !self.spec.is_object() {
            return Err(Error::InvalidArgument(
                "workflow spec must be a JSON object".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a workflow id: 1–128 letters, digits, `_ . : -`.
pub fn validate_workflow_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "workflow id {id:?} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
        )))
    }
}

/// A stored workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    pub id: String,
    pub name: String,
    pub state: WorkflowState,
    pub phase: WorkflowPhase,
    /// Incremented by every update; `workflow_update` applies only when the caller's
    /// expected revision still matches (compare-and-set), so two monitors (or a monitor and
    /// an operator) never overwrite each other's decisions.
    pub revision: u64,
    /// The definition (a `WorkflowSpec` as JSON, variables after overrides).
    pub spec: serde_json::Value,
    /// Each task id → the job that runs it. A `for_each` task's job is the parent of its
    /// instances.
    pub tasks: BTreeMap<String, JobId>,
    /// The compensation jobs, in the order they run (empty until phase `compensating`).
    pub compensations: Vec<JobId>,
    /// Why the workflow failed (the first failure seen), or was cancelled.
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When it reached a final state.
    pub finished_at: Option<Millis>,
}

impl WorkflowRecord {
    /// Builds the stored form of a new workflow. Backends use this so every field starts
    /// the same everywhere.
    pub fn from_new(new: NewWorkflow, now: Millis) -> WorkflowRecord {
        WorkflowRecord {
            id: new.id,
            name: new.name,
            state: WorkflowState::Running,
            phase: WorkflowPhase::Tasks,
            revision: 1,
            spec: new.spec,
            tasks: new.tasks,
            compensations: Vec::new(),
            error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in WorkflowState::ALL {
            assert_eq!(s.as_str().parse::<WorkflowState>().unwrap(), s);
            assert_eq!(WorkflowState::from_i64(s.as_i64()), Some(s));
            assert_eq!(s.is_final(), s != WorkflowState::Running);
        }
        assert!("done".parse::<WorkflowState>().is_err());
        for p in [WorkflowPhase::Tasks, WorkflowPhase::Compensating] {
            assert_eq!(WorkflowPhase::from_i64(p.as_i64()), Some(p));
        }
    }

    #[test]
    fn ids_are_checked() {
        validate_workflow_id("0190a-b_c.d:e").unwrap();
        for bad in ["", "a b", "{x}", &"x".repeat(129)] {
            assert!(validate_workflow_id(bad).is_err(), "{bad:?}");
        }
    }
}
