//! The files in `examples/workflows/`: they parse, validate and match
//! `docs/workflow.schema.json`, and a small in-process walk-through (sequential, real `sh`
//! processes) shows that their shell steps pass JSON to each other as intended. The real
//! runtime (jobs in a backend) runs them again in the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use super::schema_check::Checker;
use super::source::Node;
use super::*;
use crate::model::JobState;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema() -> Value {
    let text = std::fs::read_to_string(repo().join("docs/workflow.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn example_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    v.sort();
    v
}

fn load(name: &str, vars: &[(String, Value)]) -> WorkflowPlan {
    let path = repo().join("examples/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    WorkflowPlan::load(&text, SourceFormat::from_path(&path), vars)
        .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()))
}

#[test]
fn every_example_validates_and_matches_the_schema() {
    let schema = schema();
    let checker = Checker::new(&schema);
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in ["etl.yaml", "fanout.yaml", "conditional.yaml", "saga.yaml"] {
        assert!(names.iter().any(|n| n == want), "missing example {want}");
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let format = SourceFormat::from_path(&path);
        if let Err(e) = WorkflowPlan::load(&text, format, &[]) {
            panic!("{}:\n{e}", path.display());
        }
        let value = Node::parse(&text, format).unwrap().to_value();
        let errs = checker.errors(&value);
        assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
    }
}

#[test]
fn the_etl_example_has_the_documented_levels() {
    let plan = load("etl.yaml", &[]);
    assert_eq!(
        plan.levels_text(),
        "0: fetch_data\n1: validate_data\n2: clean_data, generate_report\n3: process_data\n4: final_output\n"
    );
}

/// Shapes the schema and the Rust model must agree on, accepted or rejected by both.
#[test]
fn schema_and_model_agree() {
    let schema = schema();
    let checker = Checker::new(&schema);
    let base = |task: Value| json!({"name": "w", "tasks": [task]});
    let good = [
        base(json!({"id": "a", "kind": "k"})),
        base(json!({"id": "a", "method": "k", "parameters": {"x": 1}, "dependencies": []})),
        base(json!({"id": "a", "kind": "k", "conditions": ["true"], "trigger": "all_done"})),
        base(json!({"id": "a", "kind": "k", "retry": 3, "timeout": "1h30m", "priority": "low"})),
        base(json!({"id": "a", "kind": "k", "retry": {"max_attempts": 2}, "timeout": 1500})),
        base(
            json!({"id": "a", "kind": "k", "retry": {"type": "exponential", "base": "1s", "max": "1m", "jitter": 0.2}}),
        ),
        base(
            json!({"id": "a", "kind": "k", "retry": {"type": "custom", "delays": ["1s", 500], "max_attempts": 3}}),
        ),
        base(json!({"id": "a", "kind": "k", "for_each": [1, 2], "queue": "q.1:x-y"})),
        base(
            json!({"id": "a", "kind": "k", "compensate": {"method": "undo", "parameters": {}, "retry": 1}}),
        ),
        json!({"name": "w", "description": "d", "variables": {"x": [1]}, "execution_mode": "sequential",
               "max_parallel": 2, "on_failure": "continue",
               "defaults": {"queue": "q", "priority": 3, "retry": {"type": "none"}, "timeout": "30s"},
               "tasks": [{"id": "a", "kind": "k"}]}),
    ];
    for doc in good {
        let errs = checker.errors(&doc);
        assert!(errs.is_empty(), "schema rejects {doc}: {errs:#?}");
        let spec: WorkflowSpec = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("model rejects {doc}: {e}"));
        WorkflowPlan::from_spec(spec).unwrap_or_else(|e| panic!("{doc}: {e}"));
    }
    let bad = [
        json!({"tasks": [{"id": "a", "kind": "k"}]}),
        json!({"name": "w", "tasks": [{"id": "a", "kind": "k"}], "extra": 1}),
        base(json!({"id": "a"})),
        base(json!({"id": "a", "kind": "k", "method": "m"})),
        base(json!({"id": "a", "kind": "k", "params": {}, "parameters": {}})),
        base(json!({"id": "a", "kind": "k", "depends_on": [], "dependencies": []})),
        base(json!({"id": "a", "kind": "k", "when": "true", "conditions": ["true"]})),
        base(json!({"id": "a", "kind": "k", "bogus": true})),
        base(json!({"id": "a", "kind": "k", "trigger": "always"})),
        base(json!({"id": "a", "kind": "k", "timeout": "soon"})),
        base(json!({"id": "a", "kind": "k", "priority": 12})),
        base(json!({"id": "a", "kind": "k", "retry": {"type": "fixed"}})),
        base(
            json!({"id": "a", "kind": "k", "retry": {"type": "fixed", "delay": "1s", "base": "1s"}}),
        ),
        base(json!({"id": "a", "kind": "k", "retry": {"max_attempts": 0}})),
        base(json!({"id": "a", "kind": "k", "queue": "has space"})),
        base(json!({"id": "1a", "kind": "k"})),
        base(json!({"id": "index", "kind": "k"})),
        base(json!({"id": "a", "kind": "k", "for_each": {"x": 1}})),
        base(json!({"id": "a", "kind": "k", "compensate": {"params": {}}})),
        json!({"name": "w", "tasks": []}),
        json!({"name": "w", "max_parallel": 0, "tasks": [{"id": "a", "kind": "k"}]}),
        json!({"name": "w", "on_failure": "explode", "tasks": [{"id": "a", "kind": "k"}]}),
        json!({"name": "w", "defaults": {"when": "x"}, "tasks": [{"id": "a", "kind": "k"}]}),
    ];
    for doc in bad {
        assert!(!checker.errors(&doc).is_empty(), "schema accepts {doc}");
        let model = serde_json::from_value::<WorkflowSpec>(doc.clone())
            .map_err(|e| e.to_string())
            .and_then(|s| WorkflowPlan::from_spec(s).map_err(|e| e.to_string()));
        assert!(model.is_err(), "model accepts {doc}");
    }
}

// ---- a sequential walk-through of a plan, with real processes -----------------------------

#[derive(Debug, Default)]
struct Walk {
    states: HashMap<String, JobState>,
    ctx: RenderContext,
    /// Compensations that ran, in order, with their results.
    compensations: Vec<(String, Value)>,
}

impl Walk {
    fn result(&self, id: &str) -> &Value {
        self.ctx.tasks[id].result.as_ref().unwrap()
    }
}

/// Runs an argv payload with `sh` & co; stdout is the result, parsed as JSON when it is JSON.
fn run_shell(params: &Value) -> Result<(Value, u64), String> {
    let argv: Vec<String> = params["argv"]
        .as_array()
        .ok_or("params.argv is not a list")?
        .iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let started = Instant::now();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_millis() as u64;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ms,
    ))
}

/// The reference semantics in miniature: tasks in topological order, triggers, conditions,
/// for_each fan-out with ordered fan-in, fail-fast, and saga compensation in reverse order.
fn walk(plan: &WorkflowPlan) -> Walk {
    let mut w = Walk {
        ctx: RenderContext {
            workflow_id: "wf-test".into(),
            workflow_name: plan.name().into(),
            variables: plan.variables().clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut failed = false;
    for t in plan.tasks() {
        if failed && plan.on_failure() == FailurePolicy::FailFast {
            w.states.insert(t.id.clone(), JobState::Cancelled);
            continue;
        }
        let deps: Vec<JobState> = t.depends_on.iter().map(|d| w.states[d]).collect();
        let state = match t.trigger.resolve(&deps) {
            Some(JobState::Queued) => {
                let go = match &t.condition {
                    Some(c) => c.evaluate(&w.ctx, None).unwrap(),
                    None => true,
                };
                if go {
                    run_task(&mut w, t)
                } else {
                    JobState::Skipped
                }
            }
            Some(other) => other,
            None => unreachable!("dependencies run first, so they are terminal"),
        };
        failed |= state == JobState::Dead;
        w.states.insert(t.id.clone(), state);
    }
    if failed {
        for t in plan.reverse_topological() {
            if let (Some(comp), Some(JobState::Succeeded)) = (&t.compensate, w.states.get(&t.id)) {
                let params = comp.render_params(&w.ctx, None).unwrap();
                let (out, _) = run_shell(&params).unwrap();
                w.compensations.push((t.id.clone(), out));
            }
        }
    }
    w
}

fn run_task(w: &mut Walk, t: &PlannedTask) -> JobState {
    let mut results = Vec::new();
    let mut total_ms = 0;
    let items = match &t.for_each {
        Some(fe) => Some(fe.items(&w.ctx).unwrap()),
        None => None,
    };
    let runs: Vec<Option<Item<'_>>> = match &items {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(index, value)| Some(Item { value, index }))
            .collect(),
        None => vec![None],
    };
    for item in runs {
        let params = t.job.render_params(&w.ctx, item).unwrap();
        match run_shell(&params) {
            Ok((v, ms)) => {
                results.push(v);
                total_ms += ms;
            }
            Err(_) => return JobState::Dead,
        }
    }
    let result = if items.is_some() {
        Value::Array(results)
    } else {
        results.pop().unwrap()
    };
    w.ctx.tasks.insert(
        t.id.clone(),
        TaskOutput {
            result: Some(result),
            metadata: TaskMetadata {
                duration_ms: Some(total_ms),
                attempt: Some(1),
                started_at: Some(0),
                finished_at: Some(total_ms as i64),
            },
        },
    );
    JobState::Succeeded
}

#[test]
fn etl_passes_json_between_shell_steps() {
    let w = walk(&load("etl.yaml", &[]));
    assert!(
        w.states.values().all(|s| *s == JobState::Succeeded),
        "{:?}",
        w.states
    );
    assert_eq!(w.result("validate_data")["count"], json!(7));
    assert_eq!(
        w.result("clean_data")["rows"],
        json!([4, 8, 15, 16, 23, 42])
    );
    let out = w.result("final_output");
    assert_eq!(out["sum"], json!(108));
    assert_eq!(out["report"], json!("7 rows from demo"));
    assert!(out["took_ms"].is_u64(), "{out}");

    let w = walk(&load("etl.yaml", &[parse_var("min_value=10").unwrap()]));
    assert_eq!(w.result("final_output")["sum"], json!(96));
}

#[test]
fn fanout_collects_results_in_item_order() {
    let w = walk(&load("fanout.yaml", &[]));
    assert_eq!(
        w.result("sum_chunk"),
        &json!([
            {"index": 0, "sum": 6},
            {"index": 1, "sum": 9},
            {"index": 2, "sum": 6},
            {"index": 3, "sum": 34}
        ])
    );
    assert_eq!(w.result("total")["total"], json!(55));
}

#[test]
fn conditional_takes_one_branch() {
    let w = walk(&load("conditional.yaml", &[]));
    assert_eq!(w.states["full_load"], JobState::Succeeded);
    assert_eq!(w.states["incremental_load"], JobState::Skipped);
    assert_eq!(w.states["report"], JobState::Succeeded);
    assert_eq!(w.result("report")["workflow"], json!("wf-test"));

    let w = walk(&load(
        "conditional.yaml",
        &[parse_var("threshold=500").unwrap()],
    ));
    assert_eq!(w.states["full_load"], JobState::Skipped);
    assert_eq!(w.states["incremental_load"], JobState::Succeeded);
    assert_eq!(w.result("incremental_load")["loaded"], json!("incremental"));
    assert_eq!(w.states["report"], JobState::Succeeded);
}

#[test]
fn saga_compensates_in_reverse_order() {
    let w = walk(&load("saga.yaml", &[]));
    assert_eq!(w.states["reserve_flight"], JobState::Succeeded);
    assert_eq!(w.states["reserve_hotel"], JobState::Succeeded);
    assert_eq!(w.states["charge_card"], JobState::Dead);
    assert_eq!(
        w.compensations,
        vec![
            ("reserve_hotel".to_owned(), json!({"cancelled": "HT-77"})),
            ("reserve_flight".to_owned(), json!({"cancelled": "FL-1042"})),
        ]
    );
}

#[test]
fn the_user_guide_agrees_with_the_code() {
    let doc = std::fs::read_to_string(repo().join("docs/workflows.md")).unwrap();
    // Every complete workflow in the guide validates.
    let mut complete = 0;
    for block in doc.split("```yaml\n").skip(1) {
        let body = block.split("```").next().unwrap();
        if body.starts_with("name:") {
            WorkflowPlan::load(body, SourceFormat::Yaml, &[])
                .unwrap_or_else(|e| panic!("{body}\n{e}"));
            complete += 1;
        }
    }
    assert!(complete >= 1);
    // The levels and the text graph it shows are what the code prints.
    let plan = load("etl.yaml", &[]);
    assert!(doc.contains(&format!("```text\n{}```", plan.levels_text())));
    let text = graph::render(&plan, GraphFormat::Text);
    let head: String = text.lines().take(9).map(|l| format!("{l}\n")).collect();
    assert!(doc.contains(&head), "{head}");
    // The validation report it shows is what the code prints (up to the elided field list).
    let broken = "\
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
    let report = WorkflowPlan::load(broken, SourceFormat::Yaml, &[])
        .unwrap_err()
        .to_string();
    for line in report.lines() {
        let shown = match line.find("`kind`, `method`") {
            Some(i) => format!("{}…", &line[..i + "`kind`, `method`, ".len()]),
            None => line.to_owned(),
        };
        assert!(doc.contains(&shown), "the guide lacks {shown:?}");
    }
}

/// The runtime stores `plan.spec()` as JSON and rebuilds the plan from it when tasks become
/// ready; that must give the same plan, and the stored form must still match the schema.
#[test]
fn stored_specs_rebuild_the_same_plan() {
    let schema = schema();
    let checker = Checker::new(&schema);
    for path in example_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let plan = load(&name, &[]);
        let stored = serde_json::to_value(plan.spec()).unwrap();
        let errs = checker.errors(&stored);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
        let spec: WorkflowSpec = serde_json::from_value(stored).unwrap();
        assert_eq!(&spec, plan.spec(), "{name}");
        let again = WorkflowPlan::from_spec(spec).unwrap();
        assert_eq!(again.tasks().len(), plan.tasks().len());
        for (a, b) in again.tasks().iter().zip(plan.tasks()) {
            assert_eq!((&a.id, &a.job, a.level), (&b.id, &b.job, b.level), "{name}");
            assert_eq!(a.condition, b.condition, "{name}");
            assert_eq!(a.for_each, b.for_each, "{name}");
            assert_eq!(a.compensate, b.compensate, "{name}");
            assert_eq!(a.line, None, "no file, no lines");
            assert!(b.line.is_some());
        }
    }
}
