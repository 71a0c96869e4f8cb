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
//! - `${env.NAME}` (a worker only shows allow-listed names)
//! - `${item…}` and `${index}` inside a `for_each` task

use serde_json::Value;

pub use super::reference::{
    MetadataField, PathSegment, RESERVED_ROOTS, RefTarget, Reference, TemplateError, format_path,
    parse_reference,
};
use super::render::{Item, RenderContext, RenderError};

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
#[path = "template_tests.rs"]
mod tests;
