//! Workflows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{CountsDto, JobStateDto};

/// The format of a workflow definition.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormatDto {
    Yaml,
    Json,
}

/// `POST /v1/workflows`: a workflow file's text, as `quern workflow run` takes it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitWorkflowRequest {
    /// The definition, YAML or JSON (see docs/workflows.md).
    pub source: String,
    /// Guessed from the text when left out (a document starting with `{` is JSON).
    pub format: Option<SourceFormatDto>,
    /// Overrides of the file's `variables`, as `--var` gives them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, serde_json::Value>,
}

/// A workflow's state.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStateDto {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A task failed and every compensation succeeded.
    Compensated,
}

impl From<quern::model::WorkflowState> for WorkflowStateDto {
    fn from(s: quern::model::WorkflowState) -> Self {
        use quern::model::WorkflowState as S;
        match s {
            S::Running => WorkflowStateDto::Running,
            S::Succeeded => WorkflowStateDto::Succeeded,
            S::Failed => WorkflowStateDto::Failed,
            S::Cancelled => WorkflowStateDto::Cancelled,
            S::Compensated => WorkflowStateDto::Compensated,
        }
    }
}

impl From<WorkflowStateDto> for quern::model::WorkflowState {
    fn from(s: WorkflowStateDto) -> Self {
        use quern::model::WorkflowState as S;
        match s {
            WorkflowStateDto::Running => S::Running,
            WorkflowStateDto::Succeeded => S::Succeeded,
            WorkflowStateDto::Failed => S::Failed,
            WorkflowStateDto::Cancelled => S::Cancelled,
            WorkflowStateDto::Compensated => S::Compensated,
        }
    }
}

/// A stored workflow.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowDto {
    pub id: String,
    pub name: String,
    pub state: WorkflowStateDto,
    /// `tasks`, or `compensating` once a task failed and compensations run.
    pub phase: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Each task's job id.
    #[schema(value_type = Object)]
    pub tasks: BTreeMap<String, String>,
    /// Every job of the workflow (tasks, instances, compensations) by state.
    pub counts: CountsDto,
}

impl WorkflowDto {
    pub fn new(r: &quern::model::WorkflowRecord, counts: quern::model::StateCounts) -> Self {
        WorkflowDto {
            id: r.id.clone(),
            name: r.name.clone(),
            state: r.state.into(),
            phase: phase(r.phase),
            error: r.error.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            tasks: r
                .tasks
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            counts: counts.into(),
        }
    }
}

fn phase(p: quern::model::WorkflowPhase) -> String {
    match p {
        quern::model::WorkflowPhase::Tasks => "tasks".into(),
        quern::model::WorkflowPhase::Compensating => "compensating".into(),
    }
}

/// A page of workflows, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowPageDto {
    pub workflows: Vec<WorkflowDto>,
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /v1/workflows`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkflowListQuery {
    pub state: Option<WorkflowStateDto>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One task of a workflow and the state of its job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskStatusDto {
    pub id: String,
    pub kind: String,
    /// Execution level (0 = no dependencies).
    pub level: usize,
    pub job_id: Option<String>,
    /// `null` when the job was pruned.
    pub state: Option<JobStateDto>,
    pub attempt: u32,
    pub last_error: Option<String>,
    /// For a `for_each` task that fanned out: how many instances.
    pub instances: Option<usize>,
}

/// One compensation of a workflow that compensated.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CompensationDto {
    pub task: String,
    pub index: Option<usize>,
    pub job_id: String,
    pub state: Option<JobStateDto>,
    pub last_error: Option<String>,
}

/// A workflow with the state of every task.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowStatusDto {
    pub workflow: WorkflowDto,
    /// In topological order.
    pub tasks: Vec<TaskStatusDto>,
    /// In the order they run.
    pub compensations: Vec<CompensationDto>,
}

impl From<quern::workflow::WorkflowStatus> for WorkflowStatusDto {
    fn from(s: quern::workflow::WorkflowStatus) -> Self {
        WorkflowStatusDto {
            workflow: WorkflowDto::new(&s.record, s.counts),
            tasks: s
                .tasks
                .into_iter()
                .map(|t| TaskStatusDto {
                    id: t.id,
                    kind: t.kind,
                    level: t.level,
                    job_id: t.job_id.map(|j| j.to_string()),
                    state: t.state.map(Into::into),
                    attempt: t.attempt,
                    last_error: t.last_error,
                    instances: t.instances,
                })
                .collect(),
            compensations: s
                .compensations
                .into_iter()
                .map(|c| CompensationDto {
                    task: c.task,
                    index: c.index,
                    job_id: c.job_id.to_string(),
                    state: c.state.map(Into::into),
                    last_error: c.last_error,
                })
                .collect(),
        }
    }
}

/// `POST /v1/workflows/{id}/cancel`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowCancelRequest {
    pub reason: Option<String>,
}

/// What a workflow retry did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowRetryDto {
    pub workflow: WorkflowDto,
    /// The tasks run again, in topological order.
    pub tasks: Vec<String>,
}
