//! Workflows: DAGs of tasks described in a YAML or JSON file.
//!
//! This module is the definition layer, pure logic with no storage:
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

mod build;
pub mod condition;
pub mod dag;
mod error;
pub mod graph;
mod load;
mod plan;
pub mod render;
mod source;
pub mod spec;
pub mod template;
mod validate;

pub use error::{ValidationError, ValidationErrorKind, ValidationErrors};
pub use graph::GraphFormat;
pub use load::ParsedWorkflow;
pub use plan::{DEFAULT_MAX_ATTEMPTS, ForEach, JobTemplate, PlannedTask, WorkflowPlan};
pub use render::{EnvSource, Item, RenderContext, RenderError, TaskMetadata, TaskOutput};
pub use source::{Pos, SourceFormat};
pub use spec::{
    CompensateSpec, Defaults, ExecutionMode, FailurePolicy, ForEachSpec, RetrySpec, TaskSpec,
    WorkflowSpec, parse_var,
};

#[cfg(test)]
mod examples_tests;
#[cfg(test)]
mod schema_check;
