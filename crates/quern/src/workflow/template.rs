//! `${…}` templates: parsed when a workflow is validated, rendered when a task becomes ready.
//!
//! A string that is exactly one reference (`"${fetch.result.rows}"`) renders to the referenced
//! JSON value with its type kept; a reference inside a longer string is interpolated as text.
//! `$${` writes a literal `${`. A path that does not exist is an error, never a silent null.
//!
//! References:
//! - `${TASK.result}`, `${TASK.result.a.b}`, `${TASK.result.items[0]}`, `${TASK.result["odd key"]}`
//! - `${TASK.metadata.duration_ms}` (also `attempt`, `started_at`, `finished_at`)
//! - `${workflow.variables.NAME…}`, `${workflow.id}`, `${workflow.name}`
//! - `${env.NAME}` (a server only shows allow-listed names)
//! - `${item…}` and `${index}` inside a `for_each` task

use std::fmt;

use serde_json::Value;

use super::render::{Item, RenderContext, RenderError};

/// One step of a path into a JSON value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// `.name` or `["name"]`: a key of an object.
    Key(String),
    /// `[n]`: an element of a list.
    Index(usize),
}

/// Writes a path the way a user would type it (`.rows[0]["a b"]`).
pub fn format_path(path: &[PathSegment]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSegment::Key(k) if is_plain_key(k) => {
                s.push('.');
                s.push_str(k);
            }
            PathSegment::Key(k) => {
                s.push('[');
                s.push_str(&serde_json::to_string(k).unwrap_or_default());
                s.push(']');
            }
            PathSegment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(is_ident_char)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Task metadata fields that `${TASK.metadata.FIELD}` can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataField {
    /// Milliseconds from the start to the end of the successful attempt.
    DurationMs,
    /// The attempt that succeeded (1-based).
    Attempt,
    /// When that attempt started (ms since the Unix epoch).
    StartedAt,
    /// When the task finished (ms since the Unix epoch).
    FinishedAt,
}

impl MetadataField {
    const ALL: [(&'static str, MetadataField); 4] = [
        ("duration_ms", MetadataField::DurationMs),
        ("attempt", MetadataField::Attempt),
        ("started_at", MetadataField::StartedAt),
        ("finished_at", MetadataField::FinishedAt),
    ];

    /// The name used in templates.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// What a reference points at.
#[derive(Clone, Debug, PartialEq)]
pub enum RefTarget {
    /// `${TASK.result…}`: the stored result of an upstream task.
    TaskResult {
        task: String,
        path: Vec<PathSegment>,
    },
    /// `${TASK.metadata.FIELD}`.
    TaskMetadata { task: String, field: MetadataField },
    /// `${workflow.id}`.
    WorkflowId,
    /// `${workflow.name}`.
    WorkflowName,
    /// `${workflow.variables.NAME…}`.
    Variable {
        name: String,
        path: Vec<PathSegment>,
    },
    /// `${env.NAME}`.
    Env { name: String },
    /// `${item…}`: the current element of a `for_each` list.
    Item { path: Vec<PathSegment> },
    /// `${index}`: the position of the current element (0-based).
    Index,
}

/// A parsed `${…}` reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// What it reads.
    pub target: RefTarget,
    /// The text between `${` and `}`, trimmed, for messages.
    pub text: String,
}

impl Reference {
    /// The task this reference reads from, if any.
    pub fn task(&self) -> Option<&str> {
        match &self.target {
            RefTarget::TaskResult { task, .. } | RefTarget::TaskMetadata { task, .. } => Some(task),
            _ => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}}}", self.text)
    }
}

/// Names that cannot be task ids because templates use them as roots.
pub const RESERVED_ROOTS: [&str; 4] = ["workflow", "env", "item", "index"];

/// A template that does not parse, with the 1-based character column of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// 1-based column (in characters) within the string.
    pub column: usize,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (column {})", self.message, self.column)
    }
}

impl std::error::Error for TemplateError {}

/// Parses the inside of `${…}` (without the braces). `offset` is the 0-based character
/// index of the first inner character in the whole string, for error columns.
pub fn parse_reference(inner: &str, offset: usize) -> Result<Reference, TemplateError> {
    let chars: Vec<char> = inner.chars().collect();
    let err = |i: usize, m: String| TemplateError {
        message: m,
        column: offset + i + 1,
    };
    let mut i = 0;
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    let lead = i;
    let mut end = chars.len();
    while end > i && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    if i == end {
        return Err(err(i, "empty reference `${}`".into()));
    }
    if !is_ident_start(chars[i]) {
        return Err(err(
            i,
            format!(
                "a reference starts with a name (a task id, workflow, env, item or index), not `{}`",
                chars[i]
            ),
        ));
    }
    let start = i;
    while i < end && is_ident_char(chars[i]) {
        i += 1;
    }
    let root: String = chars[start..i].iter().collect();
    // Segments, each remembered with its column for precise errors.
    let mut segs: Vec<(PathSegment, usize)> = Vec::new();
    while i < end {
        let at = i;
        match chars[i] {
            '.' => {
                i += 1;
                let s = i;
                while i < end && is_ident_char(chars[i]) {
                    i += 1;
                }
                if s == i {
                    return Err(err(
                        at,
                        "expected a name after `.` (use [\"…\"] for other keys)".into(),
                    ));
                }
                segs.push((PathSegment::Key(chars[s..i].iter().collect()), at));
            }
            '[' => {
                i += 1;
                if i < end && (chars[i] == '"' || chars[i] == '\'') {
                    let quote = chars[i];
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(err(at, "unterminated quoted key".into())),
                            Some('\\') if i + 1 < end => {
                                key.push(chars[i + 1]);
                                i += 2;
                            }
                            Some(c) if *c == quote => {
                                i += 1;
                                break;
                            }
                            Some(c) => {
                                key.push(*c);
                                i += 1;
                            }
                        }
                    }
                    if chars.get(i) != Some(&']') {
                        return Err(err(i, "expected `]` after the quoted key".into()));
                    }
                    i += 1;
                    segs.push((PathSegment::Key(key), at));
                } else {
                    let s = i;
                    while i < end && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    let digits: String = chars[s..i].iter().collect();
                    if digits.is_empty() || chars.get(i) != Some(&']') {
                        return Err(err(
                            at,
                            "expected a list index like [0] or a quoted key like [\"a b\"]".into(),
                        ));
                    }
                    let n = digits
                        .parse::<usize>()
                        .map_err(|_| err(s, format!("index {digits} is too large")))?;
                    i += 1;
                    segs.push((PathSegment::Index(n), at));
                }
            }
            c => {
                return Err(err(
                    i,
                    format!("unexpected `{c}` in a reference (paths use .name, [0] or [\"key\"])"),
                ));
            }
        }
    }
    let text: String = chars[lead..end].iter().collect();
    let key_at = |k: usize| -> Option<(&str, usize)> {
        match segs.get(k) {
            Some((PathSegment::Key(s), at)) => Some((s.as_str(), *at)),
            _ => None,
        }
    };
    let rest =
        |k: usize| -> Vec<PathSegment> { segs[k..].iter().map(|(s, _)| s.clone()).collect() };
    let no_more = |k: usize, what: &str| -> Result<(), TemplateError> {
        match segs.get(k) {
            Some((_, at)) => Err(err(*at, format!("{what} has no fields"))),
            None => Ok(()),
        }
    };
    let target = match root.as_str() {
        "workflow" => match key_at(0) {
            Some(("id", _)) => {
                no_more(1, "${workflow.id}")?;
                RefTarget::WorkflowId
            }
            Some(("name", _)) => {
                no_more(1, "${workflow.name}")?;
                RefTarget::WorkflowName
            }
            Some(("variables", at)) => match key_at(1) {
                Some((name, _)) => RefTarget::Variable {
                    name: name.to_owned(),
                    path: rest(2),
                },
                None => {
                    return Err(err(
                        at,
                        "expected a variable name: ${workflow.variables.NAME}".into(),
                    ));
                }
            },
            _ => {
                return Err(err(
                    segs.first().map(|s| s.1).unwrap_or(start),
                    "expected ${workflow.id}, ${workflow.name} or ${workflow.variables.NAME}"
                        .into(),
                ));
            }
        },
        "env" => match key_at(0) {
            Some((name, at)) => {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(err(
                        at,
                        format!("`{name}` is not an environment variable name"),
                    ));
                }
                no_more(1, "an environment variable")?;
                RefTarget::Env {
                    name: name.to_owned(),
                }
            }
            None => {
                return Err(err(
                    segs.first().map(|s| s.1).unwrap_or(start),
                    "expected ${env.NAME}".into(),
                ));
            }
        },
        "item" => RefTarget::Item { path: rest(0) },
        "index" => {
            no_more(0, "${index}")?;
            RefTarget::Index
        }
        task => match key_at(0) {
            Some(("result", _)) => RefTarget::TaskResult {
                task: task.to_owned(),
                path: rest(1),
            },
            Some(("metadata", at)) => {
                let field = key_at(1).and_then(|(f, _)| {
                    MetadataField::ALL
                        .iter()
                        .find(|(n, _)| *n == f)
                        .map(|(_, m)| *m)
                });
                match field {
                    Some(field) => {
                        no_more(2, "a metadata field")?;
                        RefTarget::TaskMetadata {
                            task: task.to_owned(),
                            field,
                        }
                    }
                    None => {
                        return Err(err(
                            segs.get(1).map(|s| s.1).unwrap_or(at),
                            format!(
                                "expected ${{{task}.metadata.FIELD}} with FIELD one of duration_ms, attempt, started_at, finished_at"
                            ),
                        ));
                    }
                }
            }
            _ => {
                return Err(err(
                    segs.first().map(|s| s.1).unwrap_or(start),
                    if segs.is_empty() {
                        format!(
                            "expected ${{{task}.result…}} or ${{{task}.metadata.FIELD}} (write $${{{task}}} for a literal ${{{task}}}, e.g. a shell variable)"
                        )
                    } else {
                        format!("expected ${{{task}.result…}} or ${{{task}.metadata.FIELD}}")
                    },
                ));
            }
        },
    };
    Ok(Reference { target, text })
}

/// A parsed string template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Ref(Reference),
}

impl Template {
    /// Parses a string; `$${` stands for a literal `${`.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = s.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                text.push_str("${");
                i += 3;
            } else if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let close = chars[i + 2..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|p| p + i + 2);
                let Some(close) = close else {
                    return Err(TemplateError {
                        message: "unterminated `${`: missing `}`".into(),
                        column: i + 1,
                    });
                };
                let inner: String = chars[i + 2..close].iter().collect();
                let r = parse_reference(&inner, i + 2)?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Ref(r));
                i = close + 1;
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// True when the string has no references.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The reference when the whole string is exactly one `${…}` (its type is kept).
    pub fn whole_reference(&self) -> Option<&Reference> {
        match self.parts.as_slice() {
            [Part::Ref(r)] => Some(r),
            _ => None,
        }
    }

    /// Every reference, in order.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Text(_) => None,
        })
    }

    /// Renders: a whole-value reference keeps its JSON type, anything else is a string.
    pub fn render(
        &self,
        ctx: &RenderContext,
        item: Option<Item<'_>>,
    ) -> Result<Value, RenderError> {
        if let Some(r) = self.whole_reference() {
            return ctx.resolve(r, item);
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Ref(r) => match ctx.resolve(r, item)? {
                    Value::String(s) => out.push_str(&s),
                    v => out.push_str(&v.to_string()),
                },
            }
        }
        Ok(Value::String(out))
    }
}

/// A JSON value whose strings may hold templates (a task's `params`).
#[derive(Clone, Debug, PartialEq)]
pub enum ValueTemplate {
    /// A subtree without any reference, returned as is.
    Literal(Value),
    /// A string with at least one reference.
    String(Template),
    /// A list with a template somewhere inside.
    Array(Vec<ValueTemplate>),
    /// An object with a template somewhere inside.
    Object(Vec<(String, ValueTemplate)>),
}

/// A template error inside a value, with the path to the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueTemplateError {
    /// Where the bad string is inside the value.
    pub path: Vec<PathSegment>,
    /// What is wrong with it.
    pub error: TemplateError,
}

impl Default for ValueTemplate {
    /// `null`, which a payload renders as `{}`.
    fn default() -> Self {
        ValueTemplate::Literal(Value::Null)
    }
}

impl ValueTemplate {
    /// Parses every string inside `v`, collecting all errors.
    pub fn parse(v: &Value) -> Result<ValueTemplate, Vec<ValueTemplateError>> {
        let mut errors = Vec::new();
        let mut path = Vec::new();
        let t = Self::parse_at(v, &mut path, &mut errors);
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    fn parse_at(
        v: &Value,
        path: &mut Vec<PathSegment>,
        errors: &mut Vec<ValueTemplateError>,
    ) -> ValueTemplate {
        match v {
            Value::String(s) if s.contains("${") => match Template::parse(s) {
                Ok(t) if t.is_literal() => ValueTemplate::Literal(Value::String(
                    t.parts
                        .into_iter()
                        .map(|p| match p {
                            Part::Text(t) => t,
                            Part::Ref(_) => String::new(),
                        })
                        .collect(),
                )),
                Ok(t) => ValueTemplate::String(t),
                Err(error) => {
                    errors.push(ValueTemplateError {
                        path: path.clone(),
                        error,
                    });
                    ValueTemplate::Literal(Value::Null)
                }
            },
            Value::Array(items) => {
                let parts: Vec<ValueTemplate> = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        path.push(PathSegment::Index(i));
                        let t = Self::parse_at(x, path, errors);
                        path.pop();
                        t
                    })
                    .collect();
                if parts.iter().all(|p| matches!(p, ValueTemplate::Literal(_))) {
                    ValueTemplate::Literal(Value::Array(
                        parts.into_iter().map(ValueTemplate::into_literal).collect(),
                    ))
                } else {
                    ValueTemplate::Array(parts)
                }
            }
            Value::Object(map) => {
                let parts: Vec<(String, ValueTemplate)> = map
                    .iter()
                    .map(|(k, x)| {
                        path.push(PathSegment::Key(k.clone()));
                        let t = Self::parse_at(x, path, errors);
                        path.pop();
                        (k.clone(), t)
                    })
                    .collect();
                if parts
                    .iter()
                    .all(|(_, p)| matches!(p, ValueTemplate::Literal(_)))
                {
                    ValueTemplate::Literal(Value::Object(
                        parts
                            .into_iter()
                            .map(|(k, p)| (k, p.into_literal()))
                            .collect(),
                    ))
                } else {
                    ValueTemplate::Object(parts)
                }
            }
            other => ValueTemplate::Literal(other.clone()),
        }
    }

    fn into_literal(self) -> Value {
        match self {
            ValueTemplate::Literal(v) => v,
            _ => Value::Null,
        }
    }

    /// Every reference inside, each with the path of the string that holds it.
    pub fn references(&self) -> Vec<(Vec<PathSegment>, &Reference)> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.collect_refs(&mut path, &mut out);
        out
    }

    fn collect_refs<'a>(
        &'a self,
        path: &mut Vec<PathSegment>,
        out: &mut Vec<(Vec<PathSegment>, &'a Reference)>,
    ) {
        match self {
            ValueTemplate::Literal(_) => {}
            ValueTemplate::String(t) => out.extend(t.references().map(|r| (path.clone(), r))),
            ValueTemplate::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    x.collect_refs(path, out);
                    path.pop();
                }
            }
            ValueTemplate::Object(entries) => {
                for (k, x) in entries {
                    path.push(PathSegment::Key(k.clone()));
                    x.collect_refs(path, out);
                    path.pop();
                }
            }
        }
    }

    /// Renders the value against the context; the first failing reference is the error.
    pub fn render(
        &self,
        ctx: &RenderContext,
        item: Option<Item<'_>>,
    ) -> Result<Value, RenderError> {
        Ok(match self {
            ValueTemplate::Literal(v) => v.clone(),
            ValueTemplate::String(t) => t.render(ctx, item)?,
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|x| x.render(ctx, item))
                    .collect::<Result<_, _>>()?,
            ),
            ValueTemplate::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), x.render(ctx, item)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use serde_json::json;

    use super::*;
    use crate::workflow::render::{EnvSource, TaskMetadata, TaskOutput};

    fn ctx() -> RenderContext {
        let mut tasks = HashMap::new();
        tasks.insert(
            "fetch".to_owned(),
            TaskOutput {
                result: Some(
                    json!({"rows": [{"id": 1}, {"id": 2}], "n": 2, "name": "x", "odd key": true}),
                ),
                metadata: TaskMetadata {
                    duration_ms: Some(1500),
                    attempt: Some(2),
                    started_at: Some(1_000),
                    finished_at: Some(2_500),
                },
            },
        );
        tasks.insert("empty".to_owned(), TaskOutput::default());
        RenderContext {
            workflow_id: "wf-1".into(),
            workflow_name: "etl".into(),
            variables: [
                ("date".to_owned(), json!("2026-01-01")),
                ("cfg".to_owned(), json!({"n": [5]})),
            ]
            .into_iter()
            .collect(),
            tasks,
            env: EnvSource::Map(
                [("HOME".to_owned(), "/home/q".to_owned())]
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn render(s: &str) -> Result<Value, RenderError> {
        Template::parse(s).unwrap().render(&ctx(), None)
    }

    #[test]
    fn whole_references_keep_their_type() {
        assert_eq!(
            render("${fetch.result.rows}").unwrap(),
            json!([{"id": 1}, {"id": 2}])
        );
        assert_eq!(render("${fetch.result.n}").unwrap(), json!(2));
        assert_eq!(
            render("  ${ fetch.result.rows[1].id }").unwrap(),
            json!("  2")
        );
        assert_eq!(render("${ fetch.result.rows[1].id }").unwrap(), json!(2));
        assert_eq!(render("${fetch.result[\"odd key\"]}").unwrap(), json!(true));
        assert_eq!(
            render("${fetch.metadata.duration_ms}").unwrap(),
            json!(1500)
        );
        assert_eq!(render("${fetch.metadata.attempt}").unwrap(), json!(2));
        assert_eq!(render("${fetch.metadata.started_at}").unwrap(), json!(1000));
        assert_eq!(
            render("${fetch.metadata.finished_at}").unwrap(),
            json!(2500)
        );
        assert_eq!(render("${workflow.variables.cfg.n[0]}").unwrap(), json!(5));
        assert_eq!(render("${workflow.id}").unwrap(), json!("wf-1"));
        assert_eq!(render("${workflow.name}").unwrap(), json!("etl"));
        assert_eq!(render("${env.HOME}").unwrap(), json!("/home/q"));
    }

    #[test]
    fn interpolation_makes_strings() {
        assert_eq!(
            render("rows=${fetch.result.n} of ${fetch.result.name} on ${workflow.variables.date}")
                .unwrap(),
            json!("rows=2 of x on 2026-01-01")
        );
        assert_eq!(
            render("ids: ${fetch.result.rows[0]}").unwrap(),
            json!("ids: {\"id\":1}")
        );
        assert_eq!(
            render("cost $$5 and $${not.a.ref}").unwrap(),
            json!("cost $$5 and ${not.a.ref}")
        );
        assert_eq!(render("plain").unwrap(), json!("plain"));
        assert_eq!(render("").unwrap(), json!(""));
    }

    #[test]
    fn missing_paths_are_clear_errors() {
        let e = render("${fetch.result.rows[3]}").unwrap_err();
        assert_eq!(e.reference, "${fetch.result.rows[3]}");
        assert!(e.message.contains("index 3 is out of range"), "{e}");
        assert!(e.message.contains("has 2 items"), "{e}");
        let e = render("${fetch.result.nope}").unwrap_err();
        assert!(e.message.contains("no key `nope`"), "{e}");
        assert!(e.message.contains("keys: n, name, odd key, rows"), "{e}");
        let e = render("${fetch.result.n.x}").unwrap_err();
        assert!(e.message.contains("is a number, not an object"), "{e}");
        let e = render("${fetch.result.name[0]}").unwrap_err();
        assert!(e.message.contains("not a list"), "{e}");
        let e = render("${other.result}").unwrap_err();
        assert!(e.message.contains("has not finished"), "{e}");
        let e = render("${empty.result}").unwrap_err();
        assert!(e.message.contains("no result"), "{e}");
        let e = render("${empty.metadata.duration_ms}").unwrap_err();
        assert!(e.message.contains("no duration_ms"), "{e}");
        let e = render("${workflow.variables.zzz}").unwrap_err();
        assert!(e.message.contains("no variable `zzz`"), "{e}");
        let e = render("${env.NOPE}").unwrap_err();
        assert!(e.message.contains("NOPE is not set"), "{e}");
        let e = render("${item}").unwrap_err();
        assert!(e.message.contains("for_each"), "{e}");
        let e = render("x${index}").unwrap_err();
        assert!(e.message.contains("for_each"), "{e}");
    }

    #[test]
    fn env_access_follows_the_source() {
        let t = Template::parse("${env.PATH}").unwrap();
        let mut c = ctx();
        c.env = EnvSource::Denied;
        assert!(
            t.render(&c, None)
                .unwrap_err()
                .message
                .contains("not available")
        );
        c.env = EnvSource::Process {
            allow: BTreeSet::new(),
        };
        assert!(
            t.render(&c, None)
                .unwrap_err()
                .message
                .contains("allow-list")
        );
        c.env = EnvSource::Process {
            allow: ["PATH".to_owned()].into_iter().collect(),
        };
        assert_eq!(
            t.render(&c, None).unwrap(),
            json!(std::env::var("PATH").unwrap())
        );
    }

    #[test]
    fn items_and_indexes() {
        let v = json!({"path": "/a", "size": 3});
        let it = Some(Item {
            value: &v,
            index: 7,
        });
        let t = ValueTemplate::parse(
            &json!({"file": "${item.path}", "n": "${index}", "all": "${item}", "s": "#${index}"}),
        )
        .unwrap();
        assert_eq!(
            t.render(&ctx(), it).unwrap(),
            json!({"file": "/a", "n": 7, "all": {"path": "/a", "size": 3}, "s": "#7"})
        );
    }

    #[test]
    fn value_templates_keep_literals_and_collect_refs() {
        let v = json!({"argv": ["echo", "${fetch.result.n}", "x"], "env": {"A": "1"}, "n": 3, "esc": "$${x}"});
        let t = ValueTemplate::parse(&v).unwrap();
        let refs = t.references();
        assert_eq!(refs.len(), 1);
        assert_eq!(format_path(&refs[0].0), ".argv[1]");
        assert_eq!(refs[0].1.task(), Some("fetch"));
        assert_eq!(
            t.render(&ctx(), None).unwrap(),
            json!({"argv": ["echo", 2, "x"], "env": {"A": "1"}, "n": 3, "esc": "${x}"})
        );
        let lit = ValueTemplate::parse(&json!({"a": [1, "b"]})).unwrap();
        assert_eq!(lit, ValueTemplate::Literal(json!({"a": [1, "b"]})));
    }

    #[test]
    fn value_template_errors_have_paths() {
        let errs = ValueTemplate::parse(&json!({"a": ["ok", "${bad"], "b": "${}"})).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(format_path(&errs[0].path), ".a[1]");
        assert!(errs[0].error.message.contains("unterminated"));
        assert_eq!(format_path(&errs[1].path), ".b");
    }

    #[test]
    fn malformed_templates_report_columns() {
        let cases = [
            ("${", 1, "unterminated"),
            ("ab ${x.result", 4, "unterminated"),
            ("${}", 3, "empty reference"),
            ("${ 1x.result}", 4, "starts with a name"),
            ("${fetch}", 3, "expected ${fetch.result…}"),
            ("${HOME}", 3, "write $${HOME} for a literal ${HOME}"),
            ("${fetch.output}", 8, "expected ${fetch.result…}"),
            ("${fetch.result.}", 15, "expected a name after `.`"),
            ("${fetch.result[x]}", 15, "list index"),
            ("${fetch.result[1}", 15, "list index"),
            ("${fetch.result[\"a]}", 15, "unterminated quoted key"),
            ("${fetch.result a}", 15, "unexpected ` `"),
            ("${fetch.metadata.size}", 17, "duration_ms, attempt"),
            ("${fetch.metadata.attempt.x}", 25, "has no fields"),
            ("${workflow.foo}", 11, "${workflow.id}"),
            ("${workflow.variables}", 11, "variable name"),
            ("${workflow.id.x}", 14, "has no fields"),
            ("${env}", 3, "${env.NAME}"),
            ("${env.A.B}", 8, "has no fields"),
            ("${env.A-B}", 6, "not an environment variable name"),
            ("${index.x}", 8, "has no fields"),
            ("x ${a.result} ${b.bad}", 18, "expected ${b.result…}"),
        ];
        for (s, col, needle) in cases {
            let e = Template::parse(s).unwrap_err();
            assert!(e.message.contains(needle), "{s}: {e}");
            assert_eq!(e.column, col, "{s}: {e}");
        }
    }

    #[test]
    fn paths_print_as_typed() {
        let r = parse_reference("t.result.a[0][\"b c\"].d-e", 0).unwrap();
        match &r.target {
            RefTarget::TaskResult { task, path } => {
                assert_eq!(task, "t");
                assert_eq!(format_path(path), ".a[0][\"b c\"].d-e");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.to_string(), "${t.result.a[0][\"b c\"].d-e}");
    }
}
