//! Workflows: DAGs of tasks described in a YAML or JSON file.
//!
//! The definition layer, pure logic with no storage:
//! - [`spec`]: the file model (serde), with the older spellings accepted.
//! - [`ParsedWorkflow`] / [`WorkflowPlan::load`]: parsing and validation; every error names
//!   the task and the line ([`ValidationErrors`]).
//! - [`WorkflowPlan`]: the validated workflow, tasks in topological order with parsed
//!   templates and conditions, execution levels, and the reverse order for compensation.
//! - [`template`] / [`render`]: `${…}` references and the context they are rendered against.
//! - [`condition`]: the `when:` expression language.
//! - [`dag`]: the deterministic topological sort, levels and cycle paths.
//! - [`graph`]: mermaid, dot and text renderings.
//!
//! The runtime, on top of the [`Backend`](crate::Backend) seam:
//! - [`submit`]: one atomic `workflow_create` storing the record and a job per task.
//! - [`StoredWorkflow`]: a submitted workflow read back from its record for running: the
//!   parts that never change and the plan rebuilt from the stored spec ([`plan_of`]).
//! - [`Preparer`]: what a worker does with a claimed workflow job before its handler runs
//!   (render, skip, fan out, fan in, wait for a slot). The [`Worker`](crate::Worker) calls it.
//! - [`Advancer`]: one pass of the workflow monitor
//!   ([`WorkflowMonitor`](crate::maintenance::WorkflowMonitor)) over a running workflow:
//!   failure policy, saga compensation, final state.
//! - [`cancel`], [`retry`], [`status`]: operator actions and views.
//! - [`meta`]: what a workflow job carries in its `meta`.
//!
//! ```
//! use quern::workflow::{SourceFormat, WorkflowPlan};
//!
//! let yaml = r#"
//! name: demo
//! tasks:
//!   - id: fetch
//!     kind: shell
//!     params: {argv: [echo, '{"rows": 3}']}
//!   - id: report
//!     kind: shell
//!     depends_on: [fetch]
//!     params: {argv: [echo, "rows=${fetch.result.rows}"]}
//! "#;
//! let plan = WorkflowPlan::load(yaml, SourceFormat::Yaml, &[]).unwrap();
//! assert_eq!(plan.levels_text(), "0: fetch\n1: report\n");
//! ```

mod advance;
mod build;
pub mod condition;
mod control;
pub mod dag;
mod error;
pub mod graph;
mod load;
pub mod meta;
mod plan;
mod prepare;
mod reference;
pub mod render;
mod source;
pub mod spec;
mod status;
mod stored;
mod submit;
pub mod template;
mod validate;

pub use advance::Advancer;
pub use control::{RetryReport, cancel, retry};
pub use error::{ValidationError, ValidationErrorKind, ValidationErrors};
pub use graph::GraphFormat;
pub use load::ParsedWorkflow;
pub use plan::{DEFAULT_MAX_ATTEMPTS, ForEach, JobTemplate, PlannedTask, WorkflowPlan};
pub use prepare::{Prepared, Preparer};
pub use render::{EnvSource, Item, RenderContext, RenderError, TaskMetadata, TaskOutput};
pub use source::{Pos, SourceFormat};
pub use spec::{
    CompensateSpec, Defaults, ExecutionMode, FailurePolicy, ForEachSpec, RetrySpec, TaskSpec,
    WorkflowSpec, parse_var,
};
pub use status::{CompensationStatus, TaskStatus, WorkflowStatus, status};
/// The former name of [`StoredWorkflow`], kept so existing callers compile.
pub use stored::StoredWorkflow as LoadedWorkflow;
pub use stored::{StoredWorkflow, output_of, plan_of};
pub use submit::{SubmitOptions, build, submit};

#[cfg(test)]
mod examples_tests;
#[cfg(test)]
mod schema_check;
