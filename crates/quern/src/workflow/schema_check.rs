//! A small JSON Schema (draft 2020-12) checker for the tests, covering exactly the keywords
//! `docs/workflow.schema.json` uses.
//!
//! Why not the `jsonschema` crate: with default features off it still brought 75 crates and
//! took 4 min 12 s wall / 5 min 31 s CPU for a clean debug build on this 2-core machine,
//! for one test. This checker refuses any keyword it does not implement, so the schema
//! cannot silently rely on something nobody checks.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::condition::json_eq;

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "default",
    "examples",
    "$defs",
];

/// Keywords this checker implements.
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
];

pub(crate) struct Checker<'a> {
    root: &'a Value,
    regexes: HashMap<String, Regex>,
}

impl<'a> Checker<'a> {
    /// Prepares a checker; panics on keywords it does not implement or on bad `$ref`s.
    pub fn new(root: &'a Value) -> Checker<'a> {
        let mut c = Checker {
            root,
            regexes: HashMap::new(),
        };
        c.audit(root, "#");
        c
    }

    /// Walks the schema once: every keyword known, every `$ref` resolvable, every pattern
    /// compiled.
    fn audit(&mut self, s: &Value, at: &str) {
        let Value::Object(map) = s else {
            assert!(s.is_boolean(), "{at}: a schema is an object or a boolean");
            return;
        };
        for (k, v) in map {
            assert!(
                ANNOTATIONS.contains(&k.as_str()) || ASSERTIONS.contains(&k.as_str()),
                "{at}: keyword `{k}` is not implemented by the test checker"
            );
            match k.as_str() {
                "$ref" => {
                    let r = v.as_str().expect("$ref is a string");
                    assert!(self.resolve(r).is_some(), "{at}: unresolvable $ref {r}");
                }
                "pattern" => {
                    let p = v.as_str().expect("pattern is a string");
                    let re = Regex::new(p).unwrap_or_else(|e| panic!("{at}: bad pattern {p}: {e}"));
                    self.regexes.insert(p.to_owned(), re);
                }
                "properties" | "$defs" => {
                    for (name, sub) in v.as_object().expect("an object of schemas") {
                        self.audit(sub, &format!("{at}/{k}/{name}"));
                    }
                }
                "items" | "additionalProperties" | "not" => self.audit(v, &format!("{at}/{k}")),
                "oneOf" | "anyOf" | "allOf" => {
                    for (i, sub) in v
                        .as_array()
                        .expect("an array of schemas")
                        .iter()
                        .enumerate()
                    {
                        self.audit(sub, &format!("{at}/{k}/{i}"));
                    }
                }
                _ => {}
            }
        }
    }

    fn resolve(&self, r: &str) -> Option<&'a Value> {
        let path = r.strip_prefix("#")?;
        self.root.pointer(path)
    }

    /// The problems with `v`, each with the JSON pointer of the value it is about.
    pub fn errors(&self, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.check(self.root, v, "", &mut out);
        out
    }

    fn check(&self, s: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let map = match s {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                out.push(format!("{at}: no value is allowed here"));
                return;
            }
            Value::Object(m) => m,
            _ => return,
        };
        let mut local: Vec<String> = Vec::new();
        let mut fail = |m: String| local.push(m);
        if let Some(r) = map.get("$ref").and_then(Value::as_str) {
            let target = self.resolve(r).expect("audited");
            let mut sub = Vec::new();
            self.check(target, v, at, &mut sub);
            out.extend(sub);
        }
        if let Some(t) = map.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| has_type(v, t)) {
                fail(format!("expected {}, got {v}", types.join(" or ")));
            }
        }
        if let Some(Value::Array(options)) = map.get("enum")
            && !options.iter().any(|o| json_eq(o, v))
        {
            fail(format!(
                "{v} is not one of {}",
                Value::Array(options.clone())
            ));
        }
        if let Some(c) = map.get("const")
            && !json_eq(c, v)
        {
            fail(format!("expected {c}, got {v}"));
        }
        if let Value::Object(obj) = v {
            let props = map.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(req)) = map.get("required") {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        fail(format!("missing required property `{r}`"));
                    }
                }
            }
            for (k, x) in obj {
                let sub_at = format!("{at}/{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => {
                        let mut sub = Vec::new();
                        self.check(ps, x, &sub_at, &mut sub);
                        out.extend(sub);
                    }
                    None => {
                        if let Some(extra) = map.get("additionalProperties") {
                            let mut sub = Vec::new();
                            self.check(extra, x, &sub_at, &mut sub);
                            if !sub.is_empty() && extra == &Value::Bool(false) {
                                fail(format!("unknown property `{k}`"));
                            } else {
                                out.extend(sub);
                            }
                        }
                    }
                }
            }
        }
        if let Value::Array(items) = v {
            if let Some(schema) = map.get("items") {
                for (i, x) in items.iter().enumerate() {
                    let mut sub = Vec::new();
                    self.check(schema, x, &format!("{at}/{i}"), &mut sub);
                    out.extend(sub);
                }
            }
            if let Some(n) = map.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < n
            {
                fail(format!("needs at least {n} items"));
            }
            if map.get("uniqueItems") == Some(&Value::Bool(true)) {
                for (i, x) in items.iter().enumerate() {
                    if items[..i].iter().any(|y| json_eq(x, y)) {
                        fail(format!("item {i} repeats an earlier item"));
                    }
                }
            }
        }
        if let Value::String(st) = v {
            let len = st.chars().count() as u64;
            if let Some(n) = map.get("minLength").and_then(Value::as_u64)
                && len < n
            {
                fail(format!("shorter than {n} characters"));
            }
            if let Some(n) = map.get("maxLength").and_then(Value::as_u64)
                && len > n
            {
                fail(format!("longer than {n} characters"));
            }
            if let Some(p) = map.get("pattern").and_then(Value::as_str)
                && !self.regexes[p].is_match(st)
            {
                fail(format!("{st:?} does not match {p}"));
            }
        }
        if let Some(x) = v.as_f64() {
            if let Some(m) = map.get("minimum").and_then(Value::as_f64)
                && x < m
            {
                fail(format!("{x} is below the minimum {m}"));
            }
            if let Some(m) = map.get("maximum").and_then(Value::as_f64)
                && x > m
            {
                fail(format!("{x} is above the maximum {m}"));
            }
        }
        let passes = |sub: &Value| {
            let mut e = Vec::new();
            self.check(sub, v, at, &mut e);
            e.is_empty()
        };
        if let Some(Value::Array(all)) = map.get("allOf") {
            for sub in all {
                let mut e = Vec::new();
                self.check(sub, v, at, &mut e);
                out.extend(e);
            }
        }
        if let Some(Value::Array(any)) = map.get("anyOf")
            && !any.iter().any(passes)
        {
            fail("matches none of anyOf".into());
        }
        if let Some(Value::Array(one)) = map.get("oneOf") {
            let n = one.iter().filter(|s| passes(s)).count();
            if n != 1 {
                fail(format!("matches {n} of oneOf, not exactly one"));
            }
        }
        if let Some(not) = map.get("not")
            && passes(not)
        {
            fail("matches a schema it must not match".into());
        }
        out.extend(local.into_iter().map(|m| format!("{at}: {m}")));
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}
