//! `quern workflow validate|run|graph|status|list|cancel|retry`.
//!
//! `run` and `retry` follow the workflow to its end (`follow.rs`): in-process workers for its
//! built-in kinds, the workflow monitor for this one workflow, and a live view. The others
//! read or change the store once (`inspect.rs`).

mod follow;
mod inspect;
mod view;

use std::path::Path;

use quern::workflow::{SourceFormat, ValidationErrors, WorkflowPlan};
use serde_json::Value;

use crate::cli::WorkflowCmd;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult, EXIT_FAILED};
use crate::log::out;

pub async fn run(ctx: &Ctx, cmd: WorkflowCmd) -> CliResult<u8> {
    match cmd {
        WorkflowCmd::Validate { file, vars } => inspect::validate(ctx, &file, &vars.vars),
        WorkflowCmd::Run(a) => follow::run(ctx, a).await,
        WorkflowCmd::Graph {
            target,
            format,
            vars,
        } => inspect::graph(ctx, &target, format, &vars.vars).await,
        WorkflowCmd::Status { id } => inspect::status(ctx, &id).await,
        WorkflowCmd::List { state, limit } => inspect::list(ctx, state, limit).await,
        WorkflowCmd::Cancel { id, reason } => inspect::cancel(ctx, &id, reason).await,
        WorkflowCmd::Retry { id, follow } => follow::retry(ctx, &id, follow).await,
    }
}

/// Why a workflow file could not be used.
pub enum LoadError {
    /// The file could not be read.
    Io(CliError),
    /// The file is not a valid workflow: every problem, with lines.
    Invalid(ValidationErrors),
}

/// Reads and validates a workflow file, applying `--var` overrides.
pub fn load(path: &Path, vars: &[(String, Value)]) -> Result<WorkflowPlan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadError::Io(CliError::failed(
            "file_not_readable",
            format!("cannot read workflow file {}: {e}", path.display()),
        ))
    })?;
    WorkflowPlan::load(&text, SourceFormat::from_path(path), vars).map_err(LoadError::Invalid)
}

/// Loads a file for a command that needs a valid plan; an invalid file prints its problems
/// (one per line on stderr, or `{"valid": false, "errors": […]}` with `--json`) and gives the
/// exit status 1.
pub fn load_or_report(
    ctx: &Ctx,
    path: &Path,
    vars: &[(String, Value)],
) -> CliResult<Result<WorkflowPlan, u8>> {
    match load(path, vars) {
        Ok(plan) => Ok(Ok(plan)),
        Err(LoadError::Io(e)) => Err(e),
        Err(LoadError::Invalid(errors)) => {
            report_invalid(ctx, path, &errors);
            Ok(Err(EXIT_FAILED))
        }
    }
}

fn report_invalid(ctx: &Ctx, path: &Path, errors: &ValidationErrors) {
    if ctx.out.json {
        out!(
            "{}",
            serde_json::json!({"valid": false, "file": path, "errors": errors})
        );
    } else {
        crate::log::say!(
            "error: {} is not a valid workflow ({} problem{}):",
            path.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for e in errors.iter() {
            crate::log::say!("  {e}");
        }
    }
}
