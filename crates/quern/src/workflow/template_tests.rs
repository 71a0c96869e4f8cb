//! Unit tests for `template.rs`.

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
