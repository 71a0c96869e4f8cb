//! Parameter passing and conditions: templates rendered from stored upstream results when a
//! task becomes ready, types kept for whole values, missing paths failing the task clearly,
//! `when` skipping tasks and triggers deciding what follows.

use quern::JobState;
use quern::model::{ErrorKind, WorkflowState};
use quern::workflow::EnvSource;
use serde_json::json;

use super::harness::Env;

#[tokio::test]
async fn upstream_results_variables_and_metadata_reach_the_params() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: passing
variables: {region: eu, limits: {rows: 10}}
tasks:
  - id: fetch
    kind: step
    params: {name: fetch, return: {rows: [4, 8, 15], meta: {source: "s3"}, n: 3}}
  - id: middle
    kind: step
    depends_on: [fetch]
    params: {name: middle, return: {ok: true}}
  - id: report
    kind: step
    depends_on: [middle]
    params:
      name: report
      rows: ${fetch.result.rows}
      first: ${fetch.result.rows[0]}
      n: ${fetch.result.n}
      text: "got ${fetch.result.rows} from ${fetch.result.meta.source} in ${workflow.variables.region}"
      limit: ${workflow.variables.limits.rows}
      wf: ${workflow.id}
      attempt: ${fetch.metadata.attempt}
      took: ${fetch.metadata.duration_ms}
      literal: "$${HOME}"
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let p = env.log.params("report");
    assert_eq!(
        p["rows"],
        json!([4, 8, 15]),
        "a whole reference keeps its type"
    );
    assert_eq!(p["first"], json!(4));
    assert_eq!(p["n"], json!(3));
    assert_eq!(p["text"], json!("got [4,8,15] from s3 in eu"));
    assert_eq!(p["limit"], json!(10));
    assert_eq!(p["wf"], json!(st.record.id));
    assert_eq!(p["attempt"], json!(1));
    assert!(p["took"].is_u64(), "duration_ms is a number: {p}");
    assert_eq!(p["literal"], json!("${HOME}"));
    // The order of the chain is the dependency order.
    assert_eq!(env.log.names(), ["fetch", "middle", "report"]);
    assert_eq!(st.counts.succeeded, 3);
    env.stop().await;
}

#[tokio::test]
async fn a_missing_path_fails_the_task_with_a_clear_error() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: missing
tasks:
  - {id: fetch, kind: step, params: {name: fetch, return: {rows: [1, 2]}}}
  - id: use
    kind: step
    depends_on: [fetch]
    params: {name: use, third: "${fetch.result.rows[2]}"}
  - {id: after, kind: step, depends_on: [use], params: {name: after}}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Failed);
    let job = env.job(&st, "use").await;
    assert_eq!(job.state, JobState::Dead, "failed at once, not retried");
    let err = &job.errors.last().unwrap();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(
        err.message.contains("${fetch.result.rows[2]}")
            && err.message.contains("index 2 is out of range"),
        "{}",
        err.message
    );
    assert_eq!(env.job(&st, "after").await.state, JobState::Skipped);
    let werr = st.record.error.as_deref().unwrap();
    assert!(
        werr.contains("task `use`") && werr.contains("out of range"),
        "{werr}"
    );
    assert_eq!(
        env.log.names(),
        ["fetch"],
        "the failing task's handler never ran"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_false_condition_skips_and_triggers_decide_what_follows() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: conditional
variables: {threshold: 100}
tasks:
  - {id: check, kind: step, params: {name: check, return: {changed: 120, mode: nightly}}}
  - id: full
    kind: step
    depends_on: [check]
    when: ${check.result.changed} > ${workflow.variables.threshold}
    params: {name: full, return: {loaded: full}}
  - id: incremental
    kind: step
    depends_on: [check]
    when: ${check.result.changed} <= ${workflow.variables.threshold} && ${check.result.mode} in ['nightly']
    params: {name: incremental}
  - id: after_incremental
    kind: step
    depends_on: [incremental]
    params: {name: after_incremental}
  - id: report
    kind: step
    depends_on: [full, incremental]
    trigger: any_success
    params: {name: report, loaded: "${full.result.loaded}"}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let inc = env.job(&st, "incremental").await;
    assert_eq!(inc.state, JobState::Skipped);
    let why = inc.errors.last().unwrap();
    assert_eq!(why.kind, ErrorKind::Skipped);
    assert!(why.message.contains("was false"), "{}", why.message);
    assert_eq!(
        env.job(&st, "after_incremental").await.state,
        JobState::Skipped
    );
    assert_eq!(env.log.params("report")["loaded"], json!("full"));
    let mut ran = env.log.names();
    ran.sort();
    assert_eq!(ran, ["check", "full", "report"]);
    env.stop().await;
}

#[tokio::test]
async fn environment_variables_are_read_only_when_allowed() {
    let yaml = r#"
name: env
tasks:
  - {id: t, kind: step, params: {name: t, home: "${env.QUERN_WF_TEST_VAR}"}}
"#;
    let env = Env::start().await;
    let st = env.run(yaml).await;
    assert_eq!(st.record.state, WorkflowState::Failed, "denied by default");
    let msg = env
        .job(&st, "t")
        .await
        .errors
        .last()
        .unwrap()
        .message
        .clone();
    assert!(msg.contains("not available"), "{msg}");
    env.stop().await;

    let allowed = EnvSource::Map([("QUERN_WF_TEST_VAR".to_string(), "here".to_string())].into());
    let env = Env::start_with(allowed).await;
    let st = env.run(yaml).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded);
    assert_eq!(env.log.params("t")["home"], json!("here"));
    env.stop().await;
}

#[tokio::test]
async fn max_parallel_and_sequential_mode_bound_concurrency() {
    for (mode, limit) in [("max_parallel: 2", 2), ("execution_mode: sequential", 1)] {
        let env = Env::start().await;
        let tasks: String = (0..6)
            .map(|i| {
                format!("  - {{id: t{i}, kind: step, params: {{name: t{i}, sleep_ms: 60}}}}\n")
            })
            .collect();
        let st = env
            .run(&format!("name: bounded\n{mode}\ntasks:\n{tasks}"))
            .await;
        assert_eq!(st.record.state, WorkflowState::Succeeded, "{mode}");
        assert_eq!(env.log.names().len(), 6, "{mode}: each task ran once");
        assert!(
            env.log.gauge.max() <= limit,
            "{mode}: at most {limit} at once, saw {}",
            env.log.gauge.max()
        );
        env.stop().await;
    }
}
