//! The workflow file model, as written by users (YAML or JSON).
//!
//! These types are what the file *says*; [`super::WorkflowPlan`] is what it *means* after
//! validation (defaults applied, templates and conditions parsed, tasks in topological order).
//! Every struct rejects unknown fields. Older spellings are accepted: `method` for `kind`,
//! `parameters` for `params`, `dependencies` for `depends_on`, and `conditions: [..]` (all
//! must hold) next to `when`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Error;
use crate::model::{Priority, RetryPolicy, Trigger, serde_ms};

/// A workflow file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// A short name, shown in listings.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Values templates read as `${workflow.variables.NAME}`; `--var NAME=VALUE` overrides
    /// them when the workflow is run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Value>,
    /// Settings every task inherits unless it sets its own.
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// At most this many tasks of the workflow run at once (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    #[serde(default)]
    pub on_failure: FailurePolicy,
    pub tasks: Vec<TaskSpec>,
}

/// Settings every task inherits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl Defaults {
    fn is_empty(&self) -> bool {
        *self == Defaults::default()
    }
}

/// Whether independent tasks may run at the same time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// Every task whose dependencies are met may run (bounded by `max_parallel`).
    #[default]
    Parallel,
    /// One task at a time, in topological order.
    Sequential,
}

/// What the rest of the workflow does when a task ends dead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Cancel every task that has not started; running tasks finish.
    #[default]
    FailFast,
    /// Let branches that do not depend on the failed task run to the end.
    Continue,
}

/// One task of a workflow file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique within the workflow; letters, digits, `_` and `-`, starting with a letter or `_`.
    pub id: String,
    /// The handler (or built-in executor such as `shell` or `http`) that runs the task.
    #[serde(alias = "method")]
    pub kind: String,
    /// The payload; strings may hold `${…}` templates.
    #[serde(default, alias = "parameters", skip_serializing_if = "Value::is_null")]
    pub params: Value,
    /// Tasks that must finish first (see `trigger`).
    #[serde(default, alias = "dependencies", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Run only when this condition holds; otherwise the task is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Conditions that must all hold (the older spelling of `when`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// Run one instance of the task per element of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEachSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Per-attempt time limit (`"30s"`, `"5m"`, or milliseconds).
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// When the task may run given how its dependencies ended.
    #[serde(default)]
    pub trigger: Trigger,
    /// The undo step, run if the workflow fails after this task succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate: Option<CompensateSpec>,
}

/// A task's undo step (saga compensation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompensateSpec {
    #[serde(alias = "method")]
    pub kind: String,
    /// The payload; templates may also read the compensated task's own result.
    #[serde(default, alias = "parameters", skip_serializing_if = "Value::is_null")]
    pub params: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    #[serde(
        default,
        with = "serde_ms::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// What a `for_each` task iterates over.
#[derive(Clone, Debug, PartialEq)]
pub enum ForEachSpec {
    /// A `${…}` reference to a list (an upstream result or a variable), read at run time.
    Reference(String),
    /// A literal list written in the file.
    Items(Vec<Value>),
}

impl Serialize for ForEachSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ForEachSpec::Reference(r) => s.serialize_str(r),
            ForEachSpec::Items(items) => items.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ForEachSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(ForEachSpec::Reference(s)),
            Value::Array(items) => Ok(ForEachSpec::Items(items)),
            _ => Err(serde::de::Error::custom(
                "for_each takes a ${…} reference to a list, or a list",
            )),
        }
    }
}

/// Retries for a task: how many attempts and how long to wait between them.
///
/// Written as a number of retries (`retry: 3` means up to 4 attempts), or as a mapping with
/// `max_attempts` and/or a [`RetryPolicy`] (`{max_attempts: 5, type: exponential, base: 1s,
/// max: 1m}`). Fields left out come from `defaults.retry`, then from the built-in default
/// (one attempt, no retry).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetrySpec {
    /// Total attempts, the first included.
    pub max_attempts: Option<u32>,
    /// The backoff between attempts.
    pub policy: Option<RetryPolicy>,
}

impl RetrySpec {
    /// Fills what this spec leaves out from `fallback`.
    pub fn or(&self, fallback: Option<&RetrySpec>) -> RetrySpec {
        RetrySpec {
            max_attempts: self
                .max_attempts
                .or_else(|| fallback.and_then(|f| f.max_attempts)),
            policy: self
                .policy
                .clone()
                .or_else(|| fallback.and_then(|f| f.policy.clone())),
        }
    }
}

impl Serialize for RetrySpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = match &self.policy {
            Some(p) => match serde_json::to_value(p).map_err(serde::ser::Error::custom)? {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        if let Some(n) = self.max_attempts {
            map.insert("max_attempts".into(), n.into());
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RetrySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let attempts = |v: &Value, what: &str| -> Result<u32, D::Error> {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| D::Error::custom(format!("{what} must be a whole number")))
        };
        match Value::deserialize(d)? {
            v @ Value::Number(_) => {
                let retries = attempts(&v, "retry")?;
                Ok(RetrySpec {
                    max_attempts: Some(retries.saturating_add(1)),
                    policy: None,
                })
            }
            Value::Object(mut map) => {
                let max_attempts = match map.remove("max_attempts") {
                    Some(v) => {
                        let n = attempts(&v, "max_attempts")?;
                        if n == 0 {
                            return Err(D::Error::custom("max_attempts must be at least 1"));
                        }
                        Some(n)
                    }
                    None => None,
                };
                let policy = if map.is_empty() {
                    None
                } else {
                    if !map.contains_key("type") {
                        return Err(D::Error::custom(
                            "a retry policy needs `type` (none, fixed, linear, exponential or custom); \
                             write `max_attempts` for the number of attempts",
                        ));
                    }
                    let p = RetryPolicy::deserialize(Value::Object(map))
                        .map_err(|e| D::Error::custom(format!("retry: {e}")))?;
                    p.validate().map_err(|e| D::Error::custom(e.to_string()))?;
                    Some(p)
                };
                Ok(RetrySpec {
                    max_attempts,
                    policy,
                })
            }
            _ => Err(D::Error::custom(
                "retry is a number of retries or a mapping with max_attempts and a policy type",
            )),
        }
    }
}

/// Parses one `--var NAME=VALUE` argument. The value is read as JSON when it parses as JSON
/// (`n=3`, `flags=[1,2]`, `on=true`), otherwise it is the plain string (`date=2026-01-01`).
pub fn parse_var(arg: &str) -> Result<(String, Value), Error> {
    let (name, raw) = arg.split_once('=').ok_or_else(|| {
        Error::InvalidArgument(format!("--var {arg:?} must look like NAME=VALUE"))
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "--var {arg:?} has an empty name"
        )));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Ok((name.to_owned(), value))
}

impl WorkflowSpec {
    /// Overrides a declared variable (`--var`). Variables must be declared in the file, so a
    /// misspelt name is an error rather than a silently unused value.
    pub fn set_variable(&mut self, name: &str, value: Value) -> Result<(), Error> {
        match self.variables.get_mut(name) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => {
                let declared: Vec<&str> = self.variables.keys().map(String::as_str).collect();
                Err(Error::InvalidArgument(format!(
                    "the workflow has no variable `{name}` ({})",
                    if declared.is_empty() {
                        "it declares none".to_owned()
                    } else {
                        format!("declared: {}", declared.join(", "))
                    }
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn aliases_and_defaults() {
        let spec: WorkflowSpec = serde_json::from_value(json!({
            "name": "w",
            "tasks": [
                {"id": "a", "method": "shell", "parameters": {"argv": ["true"]}},
                {"id": "b", "kind": "k", "dependencies": ["a"], "conditions": ["true"], "trigger": "all_done",
                 "priority": "high", "timeout": "30s", "retry": 2, "queue": "q"}
            ]
        }))
        .unwrap();
        assert_eq!(spec.execution_mode, ExecutionMode::Parallel);
        assert_eq!(spec.on_failure, FailurePolicy::FailFast);
        assert_eq!(spec.tasks[0].kind, "shell");
        assert_eq!(spec.tasks[0].params, json!({"argv": ["true"]}));
        let b = &spec.tasks[1];
        assert_eq!(b.depends_on, ["a"]);
        assert_eq!(b.conditions, ["true"]);
        assert_eq!(b.trigger, Trigger::AllDone);
        assert_eq!(b.priority, Some(Priority::HIGH));
        assert_eq!(b.timeout, Some(Duration::from_secs(30)));
        assert_eq!(b.retry.as_ref().unwrap().max_attempts, Some(3));
    }

    #[test]
    fn unknown_fields_and_doubled_aliases_are_rejected() {
        let e = serde_json::from_value::<TaskSpec>(json!({"id": "a", "kind": "k", "bogus": 1}))
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = serde_json::from_value::<TaskSpec>(json!({"id": "a", "kind": "k", "method": "m"}))
            .unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
        let e = serde_json::from_value::<WorkflowSpec>(
            json!({"name": "w", "tasks": [], "on_failure": "explode"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant `explode`"), "{e}");
    }

    #[test]
    fn retry_forms() {
        let r: RetrySpec = serde_json::from_value(json!(0)).unwrap();
        assert_eq!(r.max_attempts, Some(1));
        let r: RetrySpec =
            serde_json::from_value(json!({"max_attempts": 5, "type": "fixed", "delay": "2s"}))
                .unwrap();
        assert_eq!(r.max_attempts, Some(5));
        assert_eq!(
            r.policy,
            Some(RetryPolicy::Fixed {
                delay: Duration::from_secs(2)
            })
        );
        let back: RetrySpec = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let r: RetrySpec = serde_json::from_value(json!({"type": "none"})).unwrap();
        assert_eq!(r.policy, Some(RetryPolicy::None));
        for bad in [
            json!({"max_attempts": 0}),
            json!({"delay": "1s"}),
            json!({"type": "fixed", "delay": "1s", "extra": 1}),
            json!({"type": "exponential", "base": "1s", "max": "1m", "multiplier": 0.5}),
            json!(-1),
            json!("3"),
        ] {
            assert!(
                serde_json::from_value::<RetrySpec>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let merged = RetrySpec {
            max_attempts: None,
            policy: Some(RetryPolicy::None),
        }
        .or(Some(&RetrySpec {
            max_attempts: Some(4),
            policy: Some(RetryPolicy::default()),
        }));
        assert_eq!(merged.max_attempts, Some(4));
        assert_eq!(merged.policy, Some(RetryPolicy::None));
    }

    #[test]
    fn for_each_forms() {
        let f: ForEachSpec = serde_json::from_value(json!("${split.result.chunks}")).unwrap();
        assert_eq!(f, ForEachSpec::Reference("${split.result.chunks}".into()));
        let f: ForEachSpec = serde_json::from_value(json!([1, "a"])).unwrap();
        assert_eq!(f, ForEachSpec::Items(vec![json!(1), json!("a")]));
        assert!(serde_json::from_value::<ForEachSpec>(json!({"a": 1})).is_err());
    }

    #[test]
    fn vars_parse_as_json_or_string() {
        assert_eq!(parse_var("n=3").unwrap(), ("n".into(), json!(3)));
        assert_eq!(parse_var("l=[1,2]").unwrap(), ("l".into(), json!([1, 2])));
        assert_eq!(parse_var("b=true").unwrap(), ("b".into(), json!(true)));
        assert_eq!(
            parse_var("d=2026-01-01").unwrap(),
            ("d".into(), json!("2026-01-01"))
        );
        assert_eq!(parse_var("s=a=b").unwrap(), ("s".into(), json!("a=b")));
        assert_eq!(parse_var("e=").unwrap(), ("e".into(), json!("")));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=3").is_err());

        let mut spec: WorkflowSpec =
            serde_json::from_value(json!({"name": "w", "variables": {"date": null}, "tasks": []}))
                .unwrap();
        spec.set_variable("date", json!("x")).unwrap();
        assert_eq!(spec.variables["date"], json!("x"));
        let e = spec.set_variable("dat", json!(1)).unwrap_err();
        assert!(e.to_string().contains("declared: date"), "{e}");
    }
}
