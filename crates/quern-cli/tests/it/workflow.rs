//! `quern workflow …` end to end: the example workflows run by the built binary (shell tasks
//! passing JSON, fan-out/fan-in, a conditional branch, a saga), validation that stores
//! nothing, detach / status / graph / list / cancel, and retry after a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Env, eventually};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workflows")
        .join(name)
        .display()
        .to_string()
}

/// Runs a workflow in the foreground with `--json`; returns the exit code and the final
/// status it printed.
fn run(env: &Env, file: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "workflow", "run", file];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "quern {args:?}: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), status)
}

/// The result of a task of a finished workflow, read with `quern jobs show`.
fn result(env: &Env, status: &Value, task: &str) -> Value {
    let id = task_field(status, task, "job_id");
    env.job(id.as_str().unwrap())["result"].clone()
}

fn task_field(status: &Value, task: &str, field: &str) -> Value {
    status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task)
        .unwrap_or_else(|| panic!("no task {task} in {status}"))[field]
        .clone()
}

#[test]
fn the_etl_example_passes_json_between_shell_tasks() {
    let env = Env::new();
    let (code, st) = run(&env, &example("etl.yaml"), &["--var", "source=nightly"]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["record"]["state"], "succeeded");
    assert_eq!(st["counts"]["succeeded"], 6);
    // rows [4, 8, -1, 15, 16, 23, 42], -1 dropped by clean_data (min_value 0).
    let fin = result(&env, &st, "final_output");
    assert_eq!(fin["sum"], 108, "{fin}");
    assert_eq!(fin["report"], "7 rows from nightly");
    assert!(fin["took_ms"].is_u64(), "{fin}");
    // Levels are reported per task.
    assert_eq!(task_field(&st, "final_output", "level"), 4);
}

#[test]
fn the_fanout_example_collects_results_in_item_order() {
    let env = Env::new();
    let (code, st) = run(&env, &example("fanout.yaml"), &[]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(task_field(&st, "sum_chunk", "instances"), 4);
    let total = result(&env, &st, "total");
    assert_eq!(total["total"], 55, "{total}");
    let parts: Vec<Value> = total["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["index"], p["sum"]]))
        .collect();
    assert_eq!(
        parts,
        [json!([0, 6]), json!([1, 9]), json!([2, 6]), json!([3, 34])]
    );
}

#[test]
fn the_conditional_example_takes_one_branch() {
    let env = Env::new();
    let (code, st) = run(&env, &example("conditional.yaml"), &[]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(task_field(&st, "full_load", "state"), "succeeded");
    assert_eq!(task_field(&st, "incremental_load", "state"), "skipped");
    assert!(
        task_field(&st, "incremental_load", "last_error")
            .as_str()
            .unwrap()
            .contains("was false")
    );
    let (code, st) = run(
        &env,
        &example("conditional.yaml"),
        &["--var", "threshold=500"],
    );
    assert_eq!(code, 0, "{st}");
    assert_eq!(task_field(&st, "full_load", "state"), "skipped");
    assert_eq!(
        result(&env, &st, "incremental_load")["loaded"],
        "incremental"
    );
    assert_eq!(result(&env, &st, "report")["done"], true);
}

#[test]
fn the_saga_example_compensates_in_reverse_order_and_exits_1() {
    let env = Env::new();
    let (code, st) = run(&env, &example("saga.yaml"), &[]);
    assert_eq!(code, 1, "{st}");
    assert_eq!(st["record"]["state"], "compensated");
    assert!(
        st["record"]["error"]
            .as_str()
            .unwrap()
            .contains("card declined"),
        "{st}"
    );
    let comps: Vec<&str> = st["compensations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"].as_str().unwrap())
        .collect();
    assert_eq!(comps, ["reserve_hotel", "reserve_flight"]);
    let first = st["compensations"][0]["job_id"].as_str().unwrap();
    assert_eq!(env.job(first)["result"], json!({"cancelled": "HT-77"}));
}

#[test]
fn human_output_shows_levels_progress_and_a_summary() {
    let env = Env::new();
    let out = env.run(&["workflow", "run", &example("etl.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("workflow etl succeeded in"), "{stdout}");
    assert!(stdout.contains("final_output"), "{stdout}");
    // Off a terminal the live view is one line per task state change.
    assert!(
        stderr.contains("level 4 task final_output: succeeded"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_file_reports_every_problem_and_stores_nothing() {
    let env = Env::new();
    let bad = env.path("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\ntasks:\n  - id: a\n    kind: shell\n    retries: 3\n  - {id: b, kind: shell, depends_on: [c]}\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let out = env.run(&["workflow", "run", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 5: task `a`: unknown field `retries`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 6: task `b`: depends on `c`"),
        "{stderr}"
    );
    assert!(!env.path("quern.db").exists(), "nothing was stored");
    let v: Value =
        serde_json::from_slice(&env.run(&["--json", "workflow", "validate", &bad]).stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    assert_eq!(v["errors"][0]["line"], 5);
    // A good file: its levels, as documented.
    let good = env.ok(&["workflow", "validate", &example("etl.yaml")]);
    assert!(
        good.ends_with(
            "0: fetch_data\n1: validate_data\n2: clean_data, generate_report\n3: process_data\n4: final_output\n"
        ),
        "{good}"
    );
    // An undeclared --var is a validation error too.
    let out = env.run(&[
        "workflow",
        "validate",
        &example("etl.yaml"),
        "--var",
        "sorce=x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no variable `sorce`"));
}

#[test]
fn detach_status_graph_list_and_cancel() {
    let env = Env::new();
    let wf = env.path("long.yaml");
    std::fs::write(
        &wf,
        "name: long\ntasks:\n  - {id: wait, kind: quern.sleep, params: {ms: 60000}}\n  - {id: after, kind: quern.noop, depends_on: [wait]}\n",
    )
    .unwrap();
    let id = env
        .ok(&["workflow", "run", &wf.display().to_string(), "--detach"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 36, "{id}");
    let st = env.json(&["workflow", "status", &id]);
    assert_eq!(st["record"]["state"], "running");
    assert_eq!(
        task_field(&st, "wait", "state"),
        "queued",
        "no worker runs it"
    );
    assert_eq!(task_field(&st, "after", "state"), "blocked");
    let human = env.ok(&["workflow", "status", &id]);
    assert!(human.contains("(long): running"), "{human}");
    let graph = env.ok(&["workflow", "graph", &id, "--format", "text"]);
    assert!(graph.contains("level 1: after"), "{graph}");
    let mermaid = env.ok(&["workflow", "graph", &id, "--format", "mermaid"]);
    assert!(
        mermaid.starts_with("flowchart TD") && mermaid.contains("<b>queued</b>"),
        "{mermaid}"
    );
    let list = env.json(&["workflow", "list", "--state", "running"]);
    assert_eq!(list["workflows"][0]["id"], id.as_str());
    assert_eq!(list["workflows"][0]["counts"]["blocked"], 1);

    let done = env.json(&["workflow", "cancel", &id, "--reason", "not today"]);
    assert_eq!(done["state"], "cancelled");
    let st = env.json(&["workflow", "status", &id]);
    assert_eq!(st["record"]["error"], "not today");
    assert_eq!(task_field(&st, "wait", "state"), "cancelled");
    assert_eq!(task_field(&st, "after", "state"), "cancelled");
    let err = env.fails(1, &["workflow", "cancel", &id]);
    assert!(err.contains("already ended"), "{err}");
    let err = env.fails(1, &["workflow", "status", "no-such-workflow"]);
    assert!(err.contains("not found"), "{err}");
    assert!(
        env.json(&["workflow", "list", "--state", "running"])["workflows"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retry_reruns_what_failed_and_keeps_what_succeeded() {
    let env = Env::new();
    let marker: PathBuf = env.path("db-is-up");
    let count = env.path("fetches.txt");
    let wf = env.path("flaky.yaml");
    std::fs::write(
        &wf,
        format!(
            r#"name: flaky
tasks:
  - id: fetch
    kind: shell
    params: {{argv: [sh, -c, "echo x >> {count}; echo '{{\"n\": 3}}'"]}}
  - id: load
    kind: shell
    depends_on: [fetch]
    params: {{argv: [sh, -c, "test -f {marker} && echo '{{\"loaded\": ${{fetch.result.n}}}}'"]}}
  - {{id: report, kind: quern.noop, depends_on: [load]}}
"#,
            count = count.display(),
            marker = marker.display()
        ),
    )
    .unwrap();
    let (code, st) = run(&env, &wf.display().to_string(), &[]);
    assert_eq!(code, 1, "{st}");
    assert_eq!(st["record"]["state"], "failed");
    assert_eq!(task_field(&st, "report", "state"), "skipped");
    let id = st["record"]["id"].as_str().unwrap().to_string();

    std::fs::write(&marker, "").unwrap();
    let out = env.run(&["--json", "workflow", "retry", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["record"]["state"], "succeeded");
    assert_eq!(result(&env, &st, "load")["loaded"], 3);
    let fetched = std::fs::read_to_string(&count).unwrap();
    assert_eq!(
        fetched.lines().count(),
        1,
        "fetch kept its result and did not run again"
    );
    let err = env.fails(1, &["workflow", "retry", &id]);
    assert!(err.contains("only a failed or cancelled"), "{err}");
}

#[test]
fn a_foreground_run_only_runs_its_own_jobs() {
    let mut env = Env::new();
    // A shell job that is not part of the workflow, in the workflow's queue: the in-process
    // workers must leave it alone (it would need --allow-shell).
    let foreign = env.enqueue(&["shell", "--payload", r#"{"argv": ["echo", "not mine"]}"#]);
    let wf = env.path("mine.yaml");
    std::fs::write(
        &wf,
        "name: mine\ntasks:\n  - {id: a, kind: shell, params: {argv: [echo, '{\"mine\": true}']}}\n",
    )
    .unwrap();
    let (code, st) = run(&env, &wf.display().to_string(), &[]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(result(&env, &st, "a")["mine"], true);
    let job = env.job(&foreign);
    assert_ne!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["attempt"], 0,
        "snoozed back without counting an attempt: {job}"
    );
    // A regular worker with --allow-shell runs it.
    env.spawn(&["worker", "--allow-shell"]);
    eventually(Duration::from_secs(30), "the foreign job to run", || {
        env.job(&foreign)["state"] == "succeeded"
    });
}

#[test]
fn env_references_follow_who_runs_the_task() {
    let mut env = Env::new();
    env.var("QUERN_WF_GREETING", "hello");
    let wf = env.path("env.yaml");
    std::fs::write(
        &wf,
        "name: env\ntasks:\n  - {id: t, kind: quern.noop, params: {greeting: \"${env.QUERN_WF_GREETING}\"}}\n",
    )
    .unwrap();
    let wf = wf.display().to_string();
    // A local run lets its own workflow read the environment.
    let (code, st) = run(&env, &wf, &[]);
    assert_eq!(code, 0, "{st}");
    let job = env.job(task_field(&st, "t", "job_id").as_str().unwrap());
    assert_eq!(job["state"], "succeeded");

    // A `quern worker` shows only allow-listed names.
    let denied = env
        .ok(&["workflow", "run", &wf, "--detach"])
        .trim()
        .to_string();
    env.drain(&[]);
    let st = env.json(&["workflow", "status", &denied]);
    assert_eq!(task_field(&st, "t", "state"), "dead");
    let why = task_field(&st, "t", "last_error");
    assert!(why.as_str().unwrap().contains("allow-list"), "{why}");

    env.var("QUERN_WORKER__WORKFLOW_ENV", "QUERN_WF_GREETING");
    let allowed = env
        .ok(&["workflow", "run", &wf, "--detach"])
        .trim()
        .to_string();
    env.drain(&[]);
    eventually(Duration::from_secs(20), "the workflow to finish", || {
        env.json(&["workflow", "status", &allowed])["record"]["state"] == "succeeded"
    });
}
