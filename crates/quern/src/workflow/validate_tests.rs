//! Validation tests: every error class with its line, in YAML and JSON.

use std::time::Duration;

use serde_json::json;

use crate::model::{Priority, RetryPolicy, Trigger};
use crate::workflow::SourceFormat;
use crate::workflow::{
    ExecutionMode, FailurePolicy, ForEach, Item, RenderContext, TaskOutput,
    ValidationErrorKind as K, WorkflowPlan, WorkflowSpec, parse_var,
};

fn errors(text: &str) -> Vec<(K, Option<String>, Option<u32>, String)> {
    let format = SourceFormat::sniff(text);
    match WorkflowPlan::load(text, format, &[]) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.kind, e.task, e.line, e.message))
                .collect()
        }
    }
}

/// Asserts exactly one error, of `kind`, about `task`, on `line`, whose message contains
/// `needle`.
#[track_caller]
fn one(text: &str, kind: K, task: Option<&str>, line: u32, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let (k, t, l, m) = &errs[0];
    assert_eq!(*k, kind, "{m}");
    assert_eq!(t.as_deref(), task, "{m}");
    assert_eq!(*l, Some(line), "{m}");
    assert!(m.contains(needle), "{m:?} does not contain {needle:?}");
}

const ETL: &str = "\
name: etl
tasks:
  - id: fetch_data
    kind: shell
  - id: validate_data
    kind: shell
    depends_on: [fetch_data]
  - id: clean_data
    kind: shell
    depends_on: [validate_data]
  - id: generate_report
    kind: shell
    depends_on: [validate_data]
  - id: process_data
    kind: shell
    depends_on: [clean_data]
  - id: final_output
    kind: shell
    depends_on: [process_data, generate_report]
";

#[test]
fn the_levels_example_reproduces_exactly() {
    let plan = WorkflowPlan::load(ETL, SourceFormat::Yaml, &[]).unwrap();
    assert_eq!(
        plan.levels_text(),
        "0: fetch_data\n1: validate_data\n2: clean_data, generate_report\n3: process_data\n4: final_output\n"
    );
    let order: Vec<&str> = plan.tasks().iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "fetch_data",
            "validate_data",
            "clean_data",
            "generate_report",
            "process_data",
            "final_output"
        ]
    );
    let rev: Vec<&str> = plan.reverse_topological().map(|t| t.id.as_str()).collect();
    assert_eq!(rev.first(), Some(&"final_output"));
    assert_eq!(rev.last(), Some(&"fetch_data"));
    assert_eq!(plan.task("process_data").unwrap().level, 3);
    assert_eq!(plan.task("final_output").unwrap().line, Some(17));
    let fin = plan.position("final_output").unwrap();
    let deps: Vec<&str> = plan
        .dependencies(fin)
        .iter()
        .map(|&d| plan.tasks()[d].id.as_str())
        .collect();
    assert_eq!(deps, ["process_data", "generate_report"]);
    let vd = plan.position("validate_data").unwrap();
    assert_eq!(plan.dependents(vd).len(), 2);
}

#[test]
fn aliases_load_like_the_canonical_spelling() {
    let old = r#"{
  "name": "legacy",
  "tasks": [
    {"id": "a", "method": "shell", "parameters": {"argv": ["echo", "{\"ok\": true}"]}},
    {"id": "b", "method": "shell", "dependencies": ["a"],
     "conditions": ["${a.result.ok}", "${a.metadata.attempt} == 1"],
     "parameters": {"argv": ["echo", "${a.result.ok}"]}}
  ]
}"#;
    let plan = WorkflowPlan::load(old, SourceFormat::Json, &[]).unwrap();
    let b = plan.task("b").unwrap();
    assert_eq!(b.job.kind, "shell");
    assert_eq!(b.depends_on, ["a"]);
    assert_eq!(
        b.condition.as_ref().unwrap().source(),
        "(${a.result.ok}) && (${a.metadata.attempt} == 1)"
    );
    assert_eq!(b.references().len(), 3);
    assert_eq!(b.line, Some(5));
}

#[test]
fn defaults_apply_and_tasks_override_them() {
    let text = r#"
name: d
defaults:
  queue: etl
  priority: high
  retry: {max_attempts: 4, type: fixed, delay: 2s}
  timeout: 1m
execution_mode: sequential
max_parallel: 3
on_failure: continue
tasks:
  - id: a
    kind: k
  - id: b
    kind: k
    queue: other
    priority: 9
    retry: 0
    timeout: 500ms
    depends_on: [a]
    trigger: any_success
    compensate:
      method: undo
      parameters: {id: "${b.result.id}"}
"#;
    let plan = WorkflowPlan::load(text, SourceFormat::Yaml, &[]).unwrap();
    assert_eq!(plan.execution_mode(), ExecutionMode::Sequential);
    assert_eq!(plan.on_failure(), FailurePolicy::Continue);
    assert_eq!(plan.max_parallel(), Some(3));
    let a = &plan.task("a").unwrap().job;
    assert_eq!(a.queue, "etl");
    assert_eq!(a.priority, Priority::HIGH);
    assert_eq!(a.max_attempts, 4);
    assert_eq!(
        a.retry,
        Some(RetryPolicy::Fixed {
            delay: Duration::from_secs(2)
        })
    );
    assert_eq!(a.timeout, Some(Duration::from_secs(60)));
    let b = plan.task("b").unwrap();
    assert_eq!(b.job.queue, "other");
    assert_eq!(b.job.priority, Priority::BATCH);
    assert_eq!(b.job.max_attempts, 1);
    assert_eq!(b.job.retry, a.retry, "the policy still comes from defaults");
    assert_eq!(b.job.timeout, Some(Duration::from_millis(500)));
    assert_eq!(b.trigger, Trigger::AnySuccess);
    let comp = b.compensate.as_ref().unwrap();
    assert_eq!(comp.kind, "undo");
    assert_eq!(comp.queue, "etl");
    assert_eq!(comp.raw_params, json!({"id": "${b.result.id}"}));

    let bare = WorkflowPlan::load(
        "name: x\ntasks: [{id: a, kind: k}]\n",
        SourceFormat::Yaml,
        &[],
    )
    .unwrap();
    let j = &bare.task("a").unwrap().job;
    assert_eq!(
        (
            j.queue.as_str(),
            j.priority,
            j.max_attempts,
            j.retry.as_ref(),
            j.timeout
        ),
        ("default", Priority::NORMAL, 1, None, None)
    );
}

#[test]
fn syntax_errors() {
    let e = WorkflowPlan::load(
        "name: x\ntasks:\n  - run: echo \"a\": b\n",
        SourceFormat::Yaml,
        &[],
    )
    .unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with("line 3: "), "{shown}");
    assert!(
        !shown.contains("at line"),
        "the position is not repeated: {shown}"
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: [unclosed\n",
        K::Syntax,
        None,
        4,
        "",
    );
    one(
        "{\n  \"name\": \"x\",\n  \"tasks\": [,]\n}\n",
        K::Syntax,
        None,
        3,
        "invalid JSON",
    );
    one(
        "- a\n- b\n",
        K::InvalidValue,
        None,
        1,
        "mapping with `name` and `tasks`",
    );
}

#[test]
fn unknown_fields_name_the_task_and_line() {
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n  - id: b\n    kind: k\n    dependson: [a]\n",
        K::UnknownField,
        Some("b"),
        7,
        "unknown field `dependson`",
    );
    one(
        "name: x\ncolour: red\ntasks:\n  - id: a\n    kind: k\n",
        K::UnknownField,
        None,
        2,
        "unknown field `colour`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    compensate:\n      kind: undo\n      when: x\n",
        K::UnknownField,
        Some("a"),
        7,
        "unknown field `when`",
    );
    one(
        "{\"name\": \"x\",\n \"tasks\": [\n  {\"id\": \"a\", \"kind\": \"k\",\n   \"prams\": {}}]}",
        K::UnknownField,
        Some("a"),
        4,
        "unknown field `prams`",
    );
}

#[test]
fn wrong_values_name_the_task_and_line() {
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    timeout: soon\n",
        K::InvalidValue,
        Some("a"),
        5,
        "not a duration",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    priority: urgent\n",
        K::InvalidValue,
        Some("a"),
        5,
        "not a priority",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    retry: {type: fixed}\n",
        K::InvalidValue,
        Some("a"),
        5,
        "missing field `delay`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    trigger: always\n    kind: k\n",
        K::InvalidValue,
        Some("a"),
        4,
        "unknown variant `always`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    params: {}\n",
        K::InvalidValue,
        Some("a"),
        3,
        "missing field `kind`",
    );
    one(
        "name: x\ntasks:\n  - kind: k\n",
        K::InvalidValue,
        Some("#1"),
        3,
        "missing field `id`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    queue: 'bad queue'\n",
        K::InvalidValue,
        Some("a"),
        5,
        "queue name",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    when: 1 == 1\n    conditions: [\"true\"]\n",
        K::InvalidValue,
        Some("a"),
        6,
        "either `when` or `conditions`",
    );
    one(
        "name: x\ntasks: []\n",
        K::InvalidValue,
        None,
        2,
        "at least one task",
    );
    one(
        "name: x\nmax_parallel: 0\ntasks: [{id: a, kind: k}]\n",
        K::InvalidValue,
        None,
        2,
        "max_parallel",
    );
}

#[test]
fn bad_ids_and_duplicates() {
    one(
        "name: x\ntasks:\n  - id: fetch\n    kind: k\n  - id: other\n    kind: k\n  - id: fetch\n    kind: k\n",
        K::DuplicateId,
        Some("fetch"),
        7,
        "already used on line 3",
    );
    one(
        "name: x\ntasks:\n  - id: 'has space'\n    kind: k\n",
        K::InvalidId,
        Some("has space"),
        3,
        "must start with a letter",
    );
    one(
        "name: x\ntasks:\n  - id: workflow\n    kind: k\n",
        K::InvalidId,
        Some("workflow"),
        3,
        "reserved",
    );
}

#[test]
fn unknown_dependencies_point_at_the_entry() {
    one(
        "name: x\ntasks:\n  - id: fetch\n    kind: k\n  - id: b\n    kind: k\n    depends_on:\n      - fetch\n      - fecth\n",
        K::UnknownDependency,
        Some("b"),
        9,
        "depends on `fecth`, which is not a task of this workflow (did you mean `fetch`?)",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    dependencies: [zzz]\n",
        K::UnknownDependency,
        Some("a"),
        5,
        "`zzz`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n  - id: b\n    kind: k\n    depends_on: [a, a]\n",
        K::InvalidValue,
        Some("b"),
        7,
        "lists `a` twice",
    );
}

#[test]
fn cycles_print_the_path() {
    let text = "\
name: x
tasks:
  - id: root
    kind: k
  - id: c
    kind: k
    depends_on: [b]
  - id: a
    kind: k
    depends_on: [root, c]
  - id: b
    kind: k
    depends_on: [a]
";
    one(
        text,
        K::Cycle,
        Some("a"),
        8,
        "dependency cycle: a → b → c → a",
    );
    one(
        "name: x\ntasks:\n  - id: s\n    kind: k\n    depends_on: [s]\n",
        K::Cycle,
        Some("s"),
        3,
        "s → s",
    );
}

#[test]
fn references_must_be_upstream() {
    let text = "\
name: x
variables: {date: '2026-01-01'}
tasks:
  - id: a
    kind: k
  - id: side
    kind: k
  - id: b
    kind: k
    depends_on: [a]
    params:
      ok: ${a.result.rows}
      var: ${workflow.variables.date}
      bad: ${side.result}
";
    one(
        text,
        K::NotUpstream,
        Some("b"),
        14,
        "params.bad: ${side.result} reads task `side`, which is not upstream of `b` (add it to depends_on)",
    );
    // Transitive upstream tasks are fine.
    WorkflowPlan::load(
        "name: x\ntasks:\n  - {id: a, kind: k}\n  - {id: b, kind: k, depends_on: [a]}\n  - {id: c, kind: k, depends_on: [b], params: {x: '${a.result}'}}\n",
        SourceFormat::Yaml,
        &[],
    )
    .unwrap();
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    when: ${ghost.result} == 1\n",
        K::UnknownReference,
        Some("a"),
        5,
        "when: ${ghost.result} reads task `ghost`, which is not a task of this workflow",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    params: {me: '${a.result}'}\n",
        K::NotUpstream,
        Some("a"),
        5,
        "own result",
    );
    one(
        "name: x\nvariables: {date: 1}\ntasks:\n  - id: a\n    kind: k\n    params: {d: '${workflow.variables.dat}'}\n",
        K::UnknownReference,
        Some("a"),
        6,
        "variable `dat`, which `variables` does not declare (declared: date)",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    params:\n      - ${item}\n",
        K::UnknownReference,
        Some("a"),
        6,
        "only available inside a task with for_each",
    );
    // A compensation may read its own task's result.
    WorkflowPlan::load(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    compensate: {kind: undo, params: {id: '${a.result.id}'}}\n",
        SourceFormat::Yaml,
        &[],
    )
    .unwrap();
}

#[test]
fn malformed_templates_and_conditions() {
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    params:\n      argv:\n        - echo\n        - ${a.result\n",
        K::Template,
        Some("a"),
        8,
        "params.argv[1]: malformed template: unterminated `${`",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    when: \"1 = 1\"\n",
        K::Condition,
        Some("a"),
        5,
        "when: malformed condition `1 = 1`: unexpected `=`: write `==` to compare (column 3)",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    conditions:\n      - \"true\"\n      - \"(true\"\n",
        K::Condition,
        Some("a"),
        7,
        "conditions[1]",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    for_each: items\n",
        K::Template,
        Some("a"),
        5,
        "must be a single reference to a list",
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    compensate:\n      kind: u\n      params: {x: '${}'}\n",
        K::Template,
        Some("a"),
        7,
        "compensate.params.x: malformed template: empty reference",
    );
}

#[test]
fn every_error_is_reported_in_line_order() {
    let text = "\
name: x
tasks:
  - id: a
    kind: k
    bogus: 1
  - id: b
    kind: k
    timeout: never
  - id: c
    kind: k
";
    let errs = errors(text);
    let got: Vec<(Option<&str>, Option<u32>)> =
        errs.iter().map(|(_, t, l, _)| (t.as_deref(), *l)).collect();
    assert_eq!(got, [(Some("a"), Some(5)), (Some("b"), Some(8))]);

    let text = "\
name: x
tasks:
  - id: b
    kind: k
    depends_on: [nope]
  - id: a
    kind: k
    depends_on: [a]
    when: '1 <'
  - id: b
    kind: k
";
    let errs = errors(text);
    let kinds: Vec<(K, Option<u32>)> = errs.iter().map(|(k, _, l, _)| (*k, *l)).collect();
    assert_eq!(
        kinds,
        [
            (K::UnknownDependency, Some(5)),
            (K::Cycle, Some(6)),
            (K::Condition, Some(9)),
            (K::DuplicateId, Some(10)),
        ],
        "{errs:#?}"
    );
    // The same input gives the same report.
    assert_eq!(errors(text), errs);
    let shown = WorkflowPlan::load(text, SourceFormat::Yaml, &[])
        .unwrap_err()
        .to_string();
    assert!(
        shown.starts_with("line 5: task `b`: depends on `nope`"),
        "{shown}"
    );
}

#[test]
fn json_errors_have_lines_too() {
    let text = r#"{
  "name": "x",
  "tasks": [
    {"id": "a", "kind": "k"},
    {"id": "b", "kind": "k",
     "depends_on": ["a", "c"]},
    {"id": "a", "kind": "k"}
  ]
}"#;
    let errs = errors(text);
    let kinds: Vec<(K, Option<u32>)> = errs.iter().map(|(k, _, l, _)| (*k, *l)).collect();
    assert_eq!(
        kinds,
        [(K::UnknownDependency, Some(6)), (K::DuplicateId, Some(7))],
        "{errs:#?}"
    );
}

#[test]
fn specs_without_a_file_validate_without_lines() {
    let spec: WorkflowSpec = serde_json::from_value(json!({
        "name": "api",
        "tasks": [{"id": "a", "kind": "k", "depends_on": ["b"]}, {"id": "b", "kind": "k", "depends_on": ["a"]}]
    }))
    .unwrap();
    let errs = WorkflowPlan::from_spec(spec).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs.0[0].line, None);
    assert_eq!(
        errs.0[0].to_string(),
        "task `a`: dependency cycle: a → b → a"
    );
}

#[test]
fn vars_override_declared_variables() {
    let text = "name: x\nvariables: {n: 1, d: x}\ntasks: [{id: a, kind: k}]\n";
    let plan = WorkflowPlan::load(
        text,
        SourceFormat::Yaml,
        &[parse_var("n=5").unwrap(), parse_var("d=2026").unwrap()],
    )
    .unwrap();
    assert_eq!(plan.variables()["n"], json!(5));
    assert_eq!(plan.variables()["d"], json!(2026));
    let e = WorkflowPlan::load(text, SourceFormat::Yaml, &[parse_var("m=1").unwrap()]).unwrap_err();
    assert!(e.to_string().contains("no variable `m`"), "{e}");
}

#[test]
fn for_each_forms_are_planned() {
    let text = "\
name: x
variables: {files: [a, b]}
tasks:
  - id: split
    kind: k
  - id: each
    kind: k
    depends_on: [split]
    for_each: ${split.result.chunks}
    params: {chunk: '${item}', n: '${index}'}
  - id: static
    kind: k
    for_each: [1, 2, 3]
  - id: vars
    kind: k
    for_each: ${workflow.variables.files}
  - id: join
    kind: k
    depends_on: [each]
    params: {all: '${each.result}'}
";
    let plan = WorkflowPlan::load(text, SourceFormat::Yaml, &[]).unwrap();
    assert!(matches!(
        plan.task("each").unwrap().for_each,
        Some(ForEach::Reference(_))
    ));
    assert_eq!(
        plan.task("static").unwrap().for_each,
        Some(ForEach::Items(vec![json!(1), json!(2), json!(3)]))
    );
    one(
        "name: x\ntasks:\n  - id: a\n    kind: k\n    for_each: ${item.x}\n",
        K::Template,
        Some("a"),
        5,
        "single reference to a list",
    );
}

#[test]
fn yaml_anchors_and_block_strings_keep_lines() {
    let text = "\
name: x
defaults_params: &p {argv: [echo]}
tasks:
  - id: a
    kind: k
";
    // An unknown top-level key, even one holding an anchor, is still reported.
    one(
        text,
        K::UnknownField,
        None,
        2,
        "unknown field `defaults_params`",
    );
    let text = "\
name: x
tasks:
  - id: a
    kind: k
    params:
      script: |
        echo one
        echo ${nope.result}
";
    // A block scalar is located at its first content line.
    one(text, K::UnknownReference, Some("a"), 7, "`nope`");
}

#[test]
fn a_ten_thousand_item_fan_out_renders_in_order() {
    let text = "\
name: big
tasks:
  - id: split
    kind: k
  - id: each
    kind: k
    depends_on: [split]
    for_each: ${split.result.items}
    params: {n: '${item.n}', at: '${index}', label: 'item ${index} of ${split.result.total}'}
";
    let plan = WorkflowPlan::load(text, SourceFormat::Yaml, &[]).unwrap();
    let items: Vec<serde_json::Value> = (0..10_000).map(|n| json!({"n": n * 2})).collect();
    let mut ctx = RenderContext::default();
    ctx.tasks.insert(
        "split".into(),
        TaskOutput {
            result: Some(json!({"items": items, "total": 10_000})),
            ..Default::default()
        },
    );
    let each = plan.task("each").unwrap();
    let list = each.for_each.as_ref().unwrap().items(&ctx).unwrap();
    assert_eq!(list.len(), 10_000);
    let rendered: Vec<serde_json::Value> = list
        .iter()
        .enumerate()
        .map(|(index, value)| {
            each.job
                .render_params(&ctx, Some(Item { value, index }))
                .unwrap()
        })
        .collect();
    assert_eq!(
        rendered[0],
        json!({"n": 0, "at": 0, "label": "item 0 of 10000"})
    );
    assert_eq!(
        rendered[9_999],
        json!({"n": 19_998, "at": 9_999, "label": "item 9999 of 10000"})
    );
    // A non-list is a clear error, not an empty fan-out.
    ctx.tasks.get_mut("split").unwrap().result = Some(json!({"items": {"a": 1}}));
    let e = each.for_each.as_ref().unwrap().items(&ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "${split.result.items}: for_each needs a list, got an object"
    );
}

#[test]
fn parse_errors_do_not_hide_graph_errors() {
    let text = "\
name: broken
tasks:
  - id: fetch
    kind: shell
    retries: 3
  - id: clean
    kind: shell
    depends_on: [fetch]
  - id: report
    kind: shell
    depends_on: [clean, summary]
    when: ${clean.result.rows} > 0 and true
  - id: clean
    kind: shell
";
    let got: Vec<(K, Option<u32>)> = errors(text).iter().map(|(k, _, l, _)| (*k, *l)).collect();
    assert_eq!(
        got,
        [
            (K::UnknownField, Some(5)),
            (K::UnknownDependency, Some(11)),
            (K::Condition, Some(12)),
            (K::DuplicateId, Some(13)),
        ]
    );
    // A task that did not parse still counts as a dependency target.
    let text =
        "name: x\ntasks:\n  - {id: a, kind: k, bogus: 1}\n  - {id: b, kind: k, depends_on: [a]}\n";
    let got: Vec<K> = errors(text).iter().map(|e| e.0).collect();
    assert_eq!(got, [K::UnknownField]);
}

#[test]
fn references_are_checked_next_to_cycles() {
    let text = "\
name: x
tasks:
  - id: a
    kind: k
    depends_on: [b]
  - id: b
    kind: k
    depends_on: [a]
  - id: c
    kind: k
    params: {x: '${a.result}'}
";
    let got: Vec<(K, Option<u32>)> = errors(text).iter().map(|(k, _, l, _)| (*k, *l)).collect();
    assert_eq!(got, [(K::Cycle, Some(3)), (K::NotUpstream, Some(11))]);
}

#[test]
fn yaml_anchors_aliases_and_merge_keys_work() {
    let text = "\
name: x
tasks:
  - &base
    id: a
    kind: shell
    queue: etl
    params: &argv {argv: [echo, hi]}
  - <<: *base
    id: b
    depends_on: [a]
    params: *argv
  - <<: *base
    id: c
    bogus: 1
";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, K::UnknownField);
    assert_eq!(errs[0].2, Some(14));
    let plan =
        WorkflowPlan::load(&text.replace("    bogus: 1\n", ""), SourceFormat::Yaml, &[]).unwrap();
    let b = plan.task("b").unwrap();
    assert_eq!(b.job.queue, "etl");
    assert_eq!(b.job.raw_params, json!({"argv": ["echo", "hi"]}));
    assert_eq!(plan.task("c").unwrap().job.kind, "shell");
}
