//! `/v1/workflows`: submit, get, list, status, graph, cancel, retry — the same core calls as
//! the `quern workflow` commands.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use quern::backend::WorkflowListParams;
use quern::workflow::{SourceFormat, SubmitOptions, WorkflowPlan};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dto::{
    SourceFormatDto, SubmitWorkflowRequest, WorkflowCancelRequest, WorkflowDto, WorkflowListQuery,
    WorkflowPageDto, WorkflowRetryDto, WorkflowStatusDto, page_size,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Query};
use crate::state::AppState;

/// Submit a workflow definition; its tasks start running on whatever workers serve their
/// queues.
#[utoipa::path(post, path = "/v1/workflows", operation_id = "workflows_submit", tag = "workflows", request_body = SubmitWorkflowRequest,
    responses(
        (status = 201, description = "Stored and running", body = WorkflowDto),
        (status = 422, description = "Not a valid workflow; `details` lists every problem with its task and line", body = ErrorBody),
    ))]
pub async fn submit(
    State(s): State<Arc<AppState>>,
    Body(req): Body<SubmitWorkflowRequest>,
) -> ApiResult<(StatusCode, Json<WorkflowDto>)> {
    let format = match req.format {
        Some(SourceFormatDto::Yaml) => SourceFormat::Yaml,
        Some(SourceFormatDto::Json) => SourceFormat::Json,
        None => SourceFormat::sniff(&req.source),
    };
    let vars: Vec<(String, serde_json::Value)> = req.variables.into_iter().collect();
    let plan = WorkflowPlan::load(&req.source, format, &vars).map_err(|errors| {
        let details = serde_json::to_value(&errors).unwrap_or_default();
        let first = errors
            .iter()
            .next()
            .map(|e| e.to_string())
            .unwrap_or_default();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_workflow",
            format!(
                "not a valid workflow ({} problem{}): {first}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ),
        )
        .with_details(details)
    })?;
    let rec = quern::workflow::submit(&*s.backend, &plan, SubmitOptions::default()).await?;
    let counts = s.backend.workflow_counts((&rec.id).into()).await?;
    Ok((StatusCode::CREATED, Json(WorkflowDto::new(&rec, counts))))
}

async fn record(s: &AppState, id: &str) -> ApiResult<quern::model::WorkflowRecord> {
    s.backend
        .workflow_get(id.into())
        .await?
        .ok_or_else(|| quern::Error::WorkflowNotFound(id.into()).into())
}

/// One workflow with its job counts.
#[utoipa::path(get, path = "/v1/workflows/{id}", operation_id = "workflows_get", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = WorkflowDto), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkflowDto>> {
    let rec = record(&s, &id).await?;
    let counts = s.backend.workflow_counts((&rec.id).into()).await?;
    Ok(Json(WorkflowDto::new(&rec, counts)))
}

/// Workflows, newest first.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "workflows_list", tag = "workflows", params(WorkflowListQuery),
    responses((status = 200, body = WorkflowPageDto)))]
pub async fn list(
    State(s): State<Arc<AppState>>,
    Query(q): Query<WorkflowListQuery>,
) -> ApiResult<Json<WorkflowPageDto>> {
    let page = s
        .backend
        .workflow_list(WorkflowListParams {
            state: q.state.map(Into::into),
            limit: page_size(q.limit)?,
            before: q.cursor,
        })
        .await?;
    let mut workflows = Vec::with_capacity(page.workflows.len());
    for w in &page.workflows {
        let counts = s.backend.workflow_counts((&w.id).into()).await?;
        workflows.push(WorkflowDto::new(w, counts));
    }
    Ok(Json(WorkflowPageDto {
        workflows,
        next_cursor: page.next,
    }))
}

/// A workflow with the state of every task (and compensation).
#[utoipa::path(get, path = "/v1/workflows/{id}/status", operation_id = "workflows_status", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = WorkflowStatusDto), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkflowStatusDto>> {
    Ok(Json(
        quern::workflow::status(&*s.backend, &id).await?.into(),
    ))
}

/// How a graph is drawn.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GraphFormatDto {
    #[default]
    Mermaid,
    Dot,
    Text,
}

/// `GET /v1/workflows/{id}/graph` options.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    #[param(inline)]
    pub format: Option<GraphFormatDto>,
}

/// A drawn graph.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GraphDto {
    pub graph: String,
}

/// The workflow's DAG with each task's state, as mermaid, dot or text.
#[utoipa::path(get, path = "/v1/workflows/{id}/graph", operation_id = "workflows_graph", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), GraphQuery),
    responses((status = 200, body = GraphDto), (status = 404, body = ErrorBody)))]
pub async fn graph(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<GraphQuery>,
) -> ApiResult<Json<GraphDto>> {
    use quern::workflow::GraphFormat;
    let format = match q.format.unwrap_or_default() {
        GraphFormatDto::Mermaid => GraphFormat::Mermaid,
        GraphFormatDto::Dot => GraphFormat::Dot,
        GraphFormatDto::Text => GraphFormat::Text,
    };
    let st = quern::workflow::status(&*s.backend, &id).await?;
    let graph = quern::workflow::graph::render_with_status(&st.plan, format, &|task| {
        st.task(task).and_then(|t| t.state).map(|s| s.to_string())
    });
    Ok(Json(GraphDto { graph }))
}

/// A refusal because of the workflow's state (cancel an ended one, retry a running one).
fn not_now(e: quern::Error) -> ApiError {
    match e {
        quern::Error::InvalidArgument(m) => ApiError::conflict("invalid_state", m),
        other => other.into(),
    }
}

/// Cancel a running workflow: waiting tasks are cancelled, running ones told to stop.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", operation_id = "workflows_cancel", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    request_body(content = WorkflowCancelRequest, description = "Optional"),
    responses(
        (status = 200, body = WorkflowDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The workflow has ended", body = ErrorBody),
    ))]
pub async fn cancel(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(req): Body<WorkflowCancelRequest>,
) -> ApiResult<Json<WorkflowDto>> {
    let rec = quern::workflow::cancel(&*s.backend, &id, req.reason)
        .await
        .map_err(not_now)?;
    let counts = s.backend.workflow_counts((&rec.id).into()).await?;
    Ok(Json(WorkflowDto::new(&rec, counts)))
}

/// Run a failed or cancelled workflow again from its failed tasks.
#[utoipa::path(post, path = "/v1/workflows/{id}/retry", operation_id = "workflows_retry", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, body = WorkflowRetryDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The workflow is running or succeeded", body = ErrorBody),
    ))]
pub async fn retry(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkflowRetryDto>> {
    let report = quern::workflow::retry(&*s.backend, &id)
        .await
        .map_err(not_now)?;
    let counts = s
        .backend
        .workflow_counts((&report.record.id).into())
        .await?;
    Ok(Json(WorkflowRetryDto {
        workflow: WorkflowDto::new(&report.record, counts),
        tasks: report.tasks,
    }))
}
