//! Reading a workflow file: parsing per task (so one bad task does not hide the others),
//! `--var` overrides, then validation.

use serde_json::Value;

use super::error::{ValidationError, ValidationErrorKind as K, ValidationErrors};
use super::plan::WorkflowPlan;
use super::source::{Kind, Node, NodeError, SourceFormat};
use super::spec::{TaskSpec, WorkflowSpec};
use super::validate::{DEPENDS, Partial, check};

/// A workflow file that parsed, before the graph and references are checked. Lets the CLI
/// apply `--var` overrides between the two steps.
#[derive(Clone, Debug)]
pub struct ParsedWorkflow {
    spec: WorkflowSpec,
    root: Node,
}

impl ParsedWorkflow {
    /// Parses a YAML or JSON workflow file. Errors: syntax, unknown fields, wrong types.
    pub fn parse(text: &str, format: SourceFormat) -> Result<ParsedWorkflow, ValidationErrors> {
        let fail = |e: ValidationError| ValidationErrors(vec![e]);
        let mut root = Node::parse(text, format).map_err(|e| {
            fail(ValidationError {
                kind: K::Syntax,
                task: None,
                line: e.pos.map(|p| p.line),
                message: e.message,
            })
        })?;
        let Kind::Map(entries) = &mut root.kind else {
            return Err(fail(ValidationError {
                kind: K::InvalidValue,
                task: None,
                line: root.pos.map(|p| p.line),
                message: "a workflow file is a mapping with `name` and `tasks`".into(),
            }));
        };
        // The header and each task are read separately, so every bad task is reported.
        let mut task_nodes = Vec::new();
        if let Some((_, tasks)) = entries.iter_mut().find(|(k, _)| k.name == "tasks")
            && let Kind::Seq(items) = &mut tasks.kind
        {
            task_nodes = std::mem::take(items);
        }
        let mut errors = Vec::new();
        let header = match root.deserialize::<WorkflowSpec>() {
            Ok(h) => Some(h),
            Err(e) => {
                errors.push(node_error(e, None));
                None
            }
        };
        let mut tasks = Vec::with_capacity(task_nodes.len());
        let mut placeholder = Vec::with_capacity(task_nodes.len());
        for (i, node) in task_nodes.iter().enumerate() {
            match node.deserialize::<TaskSpec>() {
                Ok(t) => {
                    tasks.push(t);
                    placeholder.push(false);
                }
                Err(e) => {
                    let name = node
                        .get(&["id"])
                        .and_then(Node::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("#{}", i + 1));
                    errors.push(node_error(e, Some(name)));
                    tasks.push(lenient_task(node, i));
                    placeholder.push(true);
                }
            }
        }
        if let Kind::Map(entries) = &mut root.kind
            && let Some((_, t)) = entries.iter_mut().find(|(k, _)| k.name == "tasks")
            && let Kind::Seq(items) = &mut t.kind
        {
            *items = task_nodes;
        }
        if errors.is_empty()
            && let Some(mut spec) = header
        {
            spec.tasks = tasks;
            return Ok(ParsedWorkflow { spec, root });
        }
        // Some part did not parse: still report the graph's problems (duplicate ids, unknown
        // dependencies, cycles, malformed templates and conditions) so one run shows them all.
        // References are not checked: they depend on what failed to parse.
        let header_ok = header.is_some();
        let mut spec = header.unwrap_or_else(|| WorkflowSpec {
            name: "?".into(),
            description: None,
            variables: Default::default(),
            defaults: Default::default(),
            execution_mode: Default::default(),
            max_parallel: None,
            on_failure: Default::default(),
            tasks: Vec::new(),
        });
        spec.tasks = tasks;
        let partial = Partial {
            placeholder,
            header_ok,
        };
        if let Err(more) = check(spec, Some(&root), Some(&partial)) {
            errors.extend(more.0);
        }
        Err(ValidationErrors::sorted(errors))
    }

    /// The parsed file model.
    pub fn spec(&self) -> &WorkflowSpec {
        &self.spec
    }

    /// Overrides a declared variable (`--var NAME=VALUE`).
    pub fn set_variable(&mut self, name: &str, value: Value) -> Result<(), crate::Error> {
        self.spec.set_variable(name, value)
    }

    /// Checks ids, dependencies, cycles, templates, conditions and references.
    pub fn validate(self) -> Result<WorkflowPlan, ValidationErrors> {
        check(self.spec, Some(&self.root), None)
    }
}

impl WorkflowPlan {
    /// Parses, applies `vars` overrides and validates a workflow file in one step.
    pub fn load(
        text: &str,
        format: SourceFormat,
        vars: &[(String, Value)],
    ) -> Result<WorkflowPlan, ValidationErrors> {
        let mut parsed = ParsedWorkflow::parse(text, format)?;
        let mut errors = Vec::new();
        for (k, v) in vars {
            if let Err(e) = parsed.set_variable(k, v.clone()) {
                errors.push(ValidationError {
                    kind: K::InvalidValue,
                    task: None,
                    line: None,
                    message: match e {
                        crate::Error::InvalidArgument(m) => m,
                        other => other.to_string(),
                    },
                });
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors::sorted(errors));
        }
        parsed.validate()
    }

    /// Validates a workflow that did not come from a file (an API request body); errors
    /// name tasks but no lines.
    pub fn from_spec(spec: WorkflowSpec) -> Result<WorkflowPlan, ValidationErrors> {
        check(spec, None, None)
    }
}

/// A stand-in for a task that did not parse: its id and well-formed dependencies, so the
/// graph checks can still run.
fn lenient_task(node: &Node, i: usize) -> TaskSpec {
    let id = node
        .get(&["id"])
        .and_then(Node::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("#{}", i + 1));
    let depends_on = node
        .get(DEPENDS)
        .and_then(|d| d.deserialize::<Vec<String>>().ok())
        .unwrap_or_default();
    TaskSpec {
        id,
        kind: "?".into(),
        params: Value::Null,
        depends_on,
        when: None,
        conditions: Vec::new(),
        for_each: None,
        retry: None,
        timeout: None,
        priority: None,
        queue: None,
        trigger: Default::default(),
        compensate: None,
    }
}

fn node_error(e: NodeError, task: Option<String>) -> ValidationError {
    ValidationError {
        kind: if e.message.starts_with("unknown field") {
            K::UnknownField
        } else {
            K::InvalidValue
        },
        task,
        line: e.pos.map(|p| p.line),
        message: e.message,
    }
}
