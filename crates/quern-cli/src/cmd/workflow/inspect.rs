//! The workflow commands that read or change the store once: validate, graph, status, list,
//! cancel.

use std::path::Path;

use quern::backend::WorkflowListParams;
use quern::model::{StateCounts, WorkflowState};
use quern::workflow::{GraphFormat, WorkflowStatus, graph};
use quern::{Backend, JobState};
use serde_json::Value;

use super::load_or_report;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::output::{opt_time, short_text, table, time};
use crate::store::Open;

pub fn validate(ctx: &Ctx, file: &Path, vars: &[(String, Value)]) -> CliResult<u8> {
    let plan = match load_or_report(ctx, file, vars)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let levels = plan.levels();
    ctx.out.emit(
        &serde_json::json!({
            "valid": true,
            "file": file,
            "name": plan.name(),
            "tasks": plan.tasks().len(),
            "levels": levels,
        }),
        || {
            out!(
                "{} is valid: workflow {}, {} task{}, {} level{}",
                file.display(),
                plan.name(),
                plan.tasks().len(),
                if plan.tasks().len() == 1 { "" } else { "s" },
                levels.len(),
                if levels.len() == 1 { "" } else { "s" },
            );
            crate::log::stdout_text(format_args!("{}", plan.levels_text()));
        },
    );
    Ok(0)
}

/// A target names a file when it exists or looks like a path to a workflow file.
fn is_file(target: &str) -> bool {
    let p = Path::new(target);
    p.exists()
        || target.contains('/')
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| target.to_ascii_lowercase().ends_with(ext))
}

pub async fn graph(
    ctx: &Ctx,
    target: &str,
    format: GraphFormat,
    vars: &[(String, Value)],
) -> CliResult<u8> {
    let text = if is_file(target) {
        match load_or_report(ctx, Path::new(target), vars)? {
            Ok(plan) => graph::render(&plan, format),
            Err(code) => return Ok(code),
        }
    } else {
        if !vars.is_empty() {
            return Err(CliError::usage(
                "invalid_argument",
                "--var applies to a workflow file, not to a stored workflow",
            ));
        }
        let backend = ctx.open(Open::Existing).await?;
        let st = quern::workflow::status(&*backend, target).await?;
        graph::render_with_status(&st.plan, format, &|task| {
            st.task(task).and_then(|t| t.state).map(|s| s.to_string())
        })
    };
    ctx.out.emit(&serde_json::json!({ "graph": text }), || {
        crate::log::stdout_text(format_args!("{text}"))
    });
    Ok(0)
}

pub async fn status(ctx: &Ctx, id: &str) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let st = quern::workflow::status(&*backend, id).await?;
    ctx.out.emit(&st, || print_status(&st));
    Ok(0)
}

/// "3 succeeded, 1 running" (states with a count, in lifecycle order).
pub fn counts_text(c: &StateCounts) -> String {
    let parts: Vec<String> = JobState::ALL
        .iter()
        .filter(|s| c.get(**s) > 0)
        .map(|s| format!("{} {s}", c.get(*s)))
        .collect();
    if parts.is_empty() {
        "no jobs".into()
    } else {
        parts.join(", ")
    }
}

/// The human form of a workflow's status.
pub fn print_status(st: &WorkflowStatus) {
    let r = &st.record;
    let phase = match (r.state, r.phase) {
        (WorkflowState::Running, quern::model::WorkflowPhase::Compensating) => " (compensating)",
        _ => "",
    };
    out!("workflow {} ({}): {}{phase}", r.id, r.name, r.state);
    out!(
        "created {}, finished {}",
        time(r.created_at),
        opt_time(r.finished_at)
    );
    if let Some(e) = &r.error {
        out!("error: {e}");
    }
    out!("jobs: {}", counts_text(&st.counts));
    let mut t = table(&["LEVEL", "TASK", "KIND", "STATE", "ATTEMPTS", "NOTE"]);
    for task in &st.tasks {
        let note = match (task.state, &task.last_error, task.instances) {
            (_, _, Some(n)) => format!("{n} instances"),
            (Some(JobState::Succeeded), _, _) => String::new(),
            (_, Some(e), _) => short_text(e, 60),
            _ => String::new(),
        };
        t.add_row(vec![
            task.level.to_string(),
            task.id.clone(),
            task.kind.clone(),
            task.state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "pruned".into()),
            task.attempt.to_string(),
            note,
        ]);
    }
    out!("{t}");
    if !st.compensations.is_empty() {
        out!("compensations, in the order they run:");
        for c in &st.compensations {
            let which = match c.index {
                Some(i) => format!("{} (instance {i})", c.task),
                None => c.task.clone(),
            };
            let state = c
                .state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "pruned".into());
            let note = match (c.state, &c.last_error) {
                (Some(JobState::Succeeded), _) | (_, None) => String::new(),
                (_, Some(e)) => format!(": {}", short_text(e, 60)),
            };
            out!("  undo {which}: {state}{note}");
        }
    }
}

pub async fn list(ctx: &Ctx, state: Option<WorkflowState>, limit: usize) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let page = backend
        .workflow_list(WorkflowListParams {
            state,
            limit,
            before: None,
        })
        .await?;
    let mut rows = Vec::with_capacity(page.workflows.len());
    for w in &page.workflows {
        let counts = backend.workflow_counts((&w.id).into()).await?;
        rows.push((w, counts));
    }
    let json: Vec<Value> = rows
        .iter()
        .map(|(w, c)| {
            serde_json::json!({
                "id": w.id, "name": w.name, "state": w.state, "phase": w.phase,
                "created_at": w.created_at, "finished_at": w.finished_at, "error": w.error,
                "counts": c,
            })
        })
        .collect();
    ctx.out.emit(&serde_json::json!({ "workflows": json }), || {
        if rows.is_empty() {
            out!("no workflows");
            return;
        }
        let mut t = table(&["ID", "NAME", "STATE", "JOBS", "CREATED", "ERROR"]);
        for (w, c) in &rows {
            t.add_row(vec![
                w.id.clone(),
                w.name.clone(),
                w.state.to_string(),
                counts_text(c),
                time(w.created_at),
                w.error
                    .as_deref()
                    .map(|e| short_text(e, 40))
                    .unwrap_or_default(),
            ]);
        }
        out!("{t}");
    });
    Ok(0)
}

pub async fn cancel(ctx: &Ctx, id: &str, reason: Option<String>) -> CliResult<u8> {
    let backend: std::sync::Arc<dyn Backend> = ctx.open(Open::Existing).await?;
    let rec = quern::workflow::cancel(&*backend, id, reason)
        .await
        .map_err(not_now)?;
    ctx.out.emit(&rec, || {
        out!(
            "workflow {} ({}) cancelled: waiting tasks cancelled, running ones told to stop",
            rec.id,
            rec.name
        )
    });
    Ok(0)
}

/// A refusal because of the workflow's state (cancel an ended one, retry a running one) is a
/// failed operation (exit 1), like `jobs cancel` on a finished job, not bad usage.
pub fn not_now(e: quern::Error) -> CliError {
    match e {
        quern::Error::InvalidArgument(m) => CliError::failed("invalid_state", m),
        other => other.into(),
    }
}
