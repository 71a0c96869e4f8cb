//! The example workflows (`examples/workflows/*.yaml`) run through the library: a `Worker`
//! with the built-in executors (`shell` allowed, for these files only) and the workflow
//! monitor it runs itself, on a real SQLite file. The binary runs them too
//! (`quern-cli/tests/it/workflow.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quern::JobState;
use quern::executors::{ExecutorConfig, ShellConfig};
use quern::model::WorkflowState;
use quern::workflow::{
    EnvSource, SourceFormat, SubmitOptions, WorkflowPlan, WorkflowStatus, status, submit,
};
use quern::{Backend, Worker};
use serde_json::{Value, json};

use crate::worker::{WAIT, open};

fn example(name: &str, vars: &[(String, Value)]) -> WorkflowPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workflows")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    WorkflowPlan::load(&text, SourceFormat::from_path(&path), vars).unwrap()
}

/// Runs a workflow to its end on a fresh database; returns the backend and its status.
async fn run(plan: &WorkflowPlan) -> (Arc<dyn Backend>, WorkflowStatus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(&dir).await;
    let exec = ExecutorConfig {
        shell: ShellConfig {
            allow_any: true,
            ..ShellConfig::default()
        },
        ..ExecutorConfig::default()
    };
    let mut b = Worker::builder(backend.clone())
        .queues([("default", 1), ("etl", 1)])
        .concurrency(8)
        .workflow_env(EnvSource::ProcessUnrestricted);
    for (kind, h) in quern::executors::builtin(&exec).unwrap() {
        b = b.handler(kind, h);
    }
    let worker = b.build().unwrap().start().await.unwrap();
    let rec = submit(&*backend, plan, SubmitOptions::default())
        .await
        .unwrap();
    let give_up = tokio::time::Instant::now() + WAIT;
    let st = loop {
        let st = status(&*backend, &rec.id).await.unwrap();
        if st.record.state.is_final() {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{} did not finish: {:?}",
            plan.name(),
            st.tasks
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.shutdown().await.unwrap();
    (backend, st, dir)
}

async fn result(b: &Arc<dyn Backend>, st: &WorkflowStatus, task: &str) -> Value {
    let id = st.task(task).and_then(|t| t.job_id).unwrap();
    let job = b.job_get(id.into()).await.unwrap().unwrap();
    job.result
        .unwrap_or_else(|| panic!("{task} has no result"))
        .to_json_value()
        .unwrap()
}

#[tokio::test]
async fn etl() {
    let vars = [("source".to_string(), json!("library"))];
    let (b, st, _dir) = run(&example("etl.yaml", &vars)).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let fin = result(&b, &st, "final_output").await;
    assert_eq!(
        (fin["sum"].clone(), fin["report"].clone()),
        (json!(108), json!("7 rows from library"))
    );
    assert_eq!(
        result(&b, &st, "clean_data").await["rows"],
        json!([4, 8, 15, 16, 23, 42])
    );
}

#[tokio::test]
async fn fanout() {
    let (b, st, _dir) = run(&example("fanout.yaml", &[])).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let total = result(&b, &st, "total").await;
    assert_eq!(total["total"], json!(55));
    let sums: Vec<Value> = result(&b, &st, "sum_chunk")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sum"].clone())
        .collect();
    assert_eq!(sums, [json!(6), json!(9), json!(6), json!(34)]);
}

#[tokio::test]
async fn conditional() {
    let (b, st, _dir) = run(&example("conditional.yaml", &[])).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded);
    assert_eq!(
        st.task("incremental_load").unwrap().state,
        Some(JobState::Skipped)
    );
    assert_eq!(result(&b, &st, "full_load").await["loaded"], json!("full"));
    let report = result(&b, &st, "report").await;
    assert_eq!(report["workflow"], json!(st.record.id));
}

#[tokio::test]
async fn saga() {
    let (b, st, _dir) = run(&example("saga.yaml", &[])).await;
    assert_eq!(
        st.record.state,
        WorkflowState::Compensated,
        "{:?}",
        st.record
    );
    assert_eq!(st.task("charge_card").unwrap().state, Some(JobState::Dead));
    let undone: Vec<&str> = st.compensations.iter().map(|c| c.task.as_str()).collect();
    assert_eq!(undone, ["reserve_hotel", "reserve_flight"]);
    let first = b
        .job_get(st.compensations[0].job_id.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.result.unwrap().to_json_value().unwrap(),
        json!({"cancelled": "HT-77"})
    );
}
