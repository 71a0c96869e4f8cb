//! `${…}` references, the syntax that templates and conditions share: what a reference
//! reads ([`RefTarget`]), paths into a JSON value, and the parser of the text inside `${…}`.
//! Nothing here renders: `render.rs` resolves a reference against a `RenderContext`, and
//! `template.rs` and `condition.rs` build on both. The user-facing syntax is documented on
//! the public module `template`, which re-exports these items.

use std::fmt;

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
