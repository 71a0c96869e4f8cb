//! Validation errors: each names the task and the line it is about.

use std::fmt;

use serde::{Serialize, Serializer};

/// The class of a validation error, stable for scripts (`quern workflow validate --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// The text is not valid YAML or JSON.
    Syntax,
    /// A field the format does not have.
    UnknownField,
    /// A field with a value of the wrong type or out of range (also a missing field).
    InvalidValue,
    /// A task id that is not allowed (empty, bad characters, reserved).
    InvalidId,
    /// Two tasks with the same id.
    DuplicateId,
    /// `depends_on` names a task that does not exist.
    UnknownDependency,
    /// The dependencies form a cycle.
    Cycle,
    /// A `${…}` that does not parse.
    Template,
    /// A `when` / `conditions` expression that does not parse.
    Condition,
    /// A reference to a task that does not exist, or to an undeclared variable.
    UnknownReference,
    /// A reference to a task that is not upstream (not reachable through `depends_on`).
    NotUpstream,
}

impl ValidationErrorKind {
    /// A short snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            ValidationErrorKind::Syntax => "syntax",
            ValidationErrorKind::UnknownField => "unknown_field",
            ValidationErrorKind::InvalidValue => "invalid_value",
            ValidationErrorKind::InvalidId => "invalid_id",
            ValidationErrorKind::DuplicateId => "duplicate_id",
            ValidationErrorKind::UnknownDependency => "unknown_dependency",
            ValidationErrorKind::Cycle => "cycle",
            ValidationErrorKind::Template => "template",
            ValidationErrorKind::Condition => "condition",
            ValidationErrorKind::UnknownReference => "unknown_reference",
            ValidationErrorKind::NotUpstream => "not_upstream",
        }
    }
}

impl Serialize for ValidationErrorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One problem found in a workflow file. Serializes as
/// `{"kind": "cycle", "task": "a", "line": 3, "message": "…"}` for `--json` output and HTTP
/// error bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub kind: ValidationErrorKind,
    /// The task it is about (`None` for workflow-level problems).
    pub task: Option<String>,
    /// The 1-based line in the file (`None` when the workflow did not come from a file).
    pub line: Option<u32>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(t) = &self.task {
            write!(f, "task `{t}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Every problem found, sorted by line, then task id, then message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// Sorts into the reporting order and drops exact repeats.
    pub(crate) fn sorted(mut v: Vec<ValidationError>) -> ValidationErrors {
        v.sort_by(|a, b| {
            (a.line.unwrap_or(u32::MAX), &a.task, &a.message).cmp(&(
                b.line.unwrap_or(u32::MAX),
                &b.task,
                &b.message,
            ))
        });
        v.dedup();
        ValidationErrors(v)
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<ValidationErrors> for crate::Error {
    fn from(e: ValidationErrors) -> Self {
        crate::Error::InvalidArgument(format!(
            "the workflow is invalid ({} error{}):\n{e}",
            e.len(),
            if e.len() == 1 { "" } else { "s" }
        ))
    }
}
