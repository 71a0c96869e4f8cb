//! Unit tests for `source.rs`.

use super::*;

fn line_of(n: Option<&Node>) -> u32 {
    n.and_then(|n| n.pos).map(|p| p.line).unwrap_or(0)
}

#[test]
fn yaml_nodes_know_their_lines() {
    let text = "name: x\ntasks:\n  - id: a\n    kind: shell\n    params:\n      argv: [echo, hi]\n  - id: b\n";
    let n = Node::parse(text, SourceFormat::Yaml).unwrap();
    let tasks = n.get(&["tasks"]).unwrap();
    assert_eq!(line_of(tasks.index(0).and_then(|t| t.get(&["id"]))), 3);
    assert_eq!(line_of(tasks.index(1).and_then(|t| t.get(&["id"]))), 7);
    let argv = tasks
        .index(0)
        .unwrap()
        .at(&[
            PathSegment::Key("params".into()),
            PathSegment::Key("argv".into()),
            PathSegment::Index(1),
        ])
        .unwrap();
    assert_eq!(argv.as_str(), Some("hi"));
    assert_eq!(argv.pos.unwrap().line, 6);
    let (key, _) = tasks.index(0).unwrap().entry(&["kind"]).unwrap();
    assert_eq!(key.pos.unwrap().line, 4);
}

#[test]
fn json_nodes_know_their_lines_even_with_tabs() {
    let text = "{\n\t\"name\": \"x\",\n\t\"tasks\": [\n\t\t{\"id\": \"a\",\n\t\t \"kind\": \"k\"},\n\t\t{\"id\": \"b\", \"kind\": \"k\", \"n\": 1.5, \"s\": \"tab\\there\"}\n\t]\n}\n";
    let n = Node::parse(text, SourceFormat::Json).unwrap();
    let tasks = n.get(&["tasks"]).unwrap();
    assert_eq!(line_of(tasks.index(0).and_then(|t| t.get(&["kind"]))), 5);
    assert_eq!(line_of(tasks.index(1).and_then(|t| t.get(&["id"]))), 6);
    let v = n.to_value();
    assert_eq!(v["tasks"][1]["n"], serde_json::json!(1.5));
    assert_eq!(v["tasks"][1]["s"], "tab\there");
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(text).unwrap(),
        "the tree means what JSON says"
    );
}

#[test]
fn syntax_errors_have_lines() {
    let e = Node::parse("name: x\ntasks: [a, b\n", SourceFormat::Yaml).unwrap_err();
    assert!(e.pos.is_some(), "{e:?}");
    let e = Node::parse("{\n \"a\": 1,\n \"b\": }\n", SourceFormat::Json).unwrap_err();
    assert_eq!(e.pos.unwrap().line, 3, "{e:?}");
    assert!(e.message.starts_with("invalid JSON"), "{e:?}");
    let e = Node::parse("a: 1\na: 2\n", SourceFormat::Yaml).unwrap_err();
    assert!(e.message.contains("uplicate"), "{e:?}");
}

#[test]
fn yaml_booleans_are_strict() {
    let n = Node::parse("country: no\nok: true\n", SourceFormat::Yaml).unwrap();
    assert_eq!(
        n.to_value(),
        serde_json::json!({"country": "no", "ok": true})
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Inner {
    a: u32,
    #[serde(default, with = "crate::model::serde_ms::option")]
    t: Option<std::time::Duration>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Outer {
    items: Vec<Inner>,
}

#[test]
fn typed_errors_point_at_the_node() {
    let text = "items:\n  - a: 1\n  - a: 2\n    bogus: 3\n";
    let n = Node::parse(text, SourceFormat::Yaml).unwrap();
    let e = n.deserialize::<Outer>().unwrap_err();
    assert_eq!(e.pos.unwrap().line, 4, "{e:?}");
    assert!(e.message.contains("unknown field `bogus`"), "{e:?}");

    let text = "items:\n  - a: 1\n  - a: 2\n    t: 3x\n";
    let n = Node::parse(text, SourceFormat::Yaml).unwrap();
    let e = n.deserialize::<Outer>().unwrap_err();
    assert_eq!(e.pos.unwrap().line, 4, "{e:?}");

    let text = "items:\n  - a: 1\n  - t: 1s\n";
    let n = Node::parse(text, SourceFormat::Yaml).unwrap();
    let e = n.deserialize::<Outer>().unwrap_err();
    assert_eq!(e.pos.unwrap().line, 3, "{e:?}");
    assert!(e.message.contains("missing field `a`"), "{e:?}");

    let ok = Node::parse("items: [{a: 1, t: 30s}]", SourceFormat::Yaml).unwrap();
    let o: Outer = ok.deserialize().unwrap();
    assert_eq!(o.items[0].t, Some(std::time::Duration::from_secs(30)));
}
