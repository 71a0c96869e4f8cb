//! Operator actions: cancelling a running workflow and retrying a failed one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use quern::JobState;
use quern::model::WorkflowState;
use quern::workflow::{cancel, retry, status};

use super::harness::Env;
use crate::worker::WAIT;

#[tokio::test]
async fn cancel_stops_running_tasks_and_cancels_pending_ones() {
    let env = Env::start().await;
    let rec = env
        .submit(
            r#"
name: long
tasks:
  - {id: wait, kind: step, params: {name: wait, wait_cancel: true}}
  - {id: next, kind: step, depends_on: [wait], params: {name: next}}
"#,
        )
        .await;
    // Wait for the first task to be running.
    let give_up = tokio::time::Instant::now() + WAIT;
    while env.log.count("wait") == 0 {
        assert!(tokio::time::Instant::now() < give_up, "task never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = cancel(&*env.backend, &rec.id, Some("changed my mind".into()))
        .await
        .unwrap();
    assert_eq!(done.state, WorkflowState::Cancelled);
    let st = env.finished(&rec.id).await;
    assert_eq!(st.record.error.as_deref(), Some("changed my mind"));
    assert_eq!(env.job(&st, "wait").await.state, JobState::Cancelled);
    assert_eq!(env.job(&st, "next").await.state, JobState::Cancelled);
    // The running handler was told to stop (at its next lease heartbeat).
    let give_up = tokio::time::Instant::now() + WAIT;
    while env.log.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < give_up,
            "the handler was never told to stop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = cancel(&*env.backend, &rec.id, None).await.unwrap_err();
    assert!(again.to_string().contains("already ended"), "{again}");
    assert_eq!(env.log.count("next"), 0);
    env.stop().await;
}

#[tokio::test]
async fn retry_reruns_failed_tasks_and_keeps_succeeded_results() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: flaky
tasks:
  - {id: fetch, kind: step, params: {name: fetch, return: {n: 5}}}
  - {id: load, kind: step, depends_on: [fetch], params: {name: load, fail_unless: db_up, n: "${fetch.result.n}"}}
  - {id: report, kind: step, depends_on: [load], params: {name: report}}
  - id: each
    kind: step
    depends_on: [fetch]
    for_each: [1, 2, 3]
    params: {name: "each ${item}", fail_unless: "db_up_${item}"}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Failed);
    assert_eq!(env.job(&st, "report").await.state, JobState::Skipped);
    {
        let mut on = env.log.switches.lock().unwrap();
        on.extend(["db_up", "db_up_1", "db_up_2", "db_up_3"].map(String::from));
    }
    let report = retry(&*env.backend, &st.record.id).await.unwrap();
    assert_eq!(report.record.state, WorkflowState::Running);
    assert_eq!(report.tasks, ["each", "load", "report"], "{report:?}");
    let st = env.finished(&st.record.id).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    assert_eq!(st.record.error, None);
    assert_eq!(
        env.log.count("fetch"),
        1,
        "the succeeded task kept its result"
    );
    assert_eq!(env.log.count("load"), 2);
    assert_eq!(env.log.count("report"), 1);
    // Each failed instance ran again, and only those.
    assert_eq!(env.log.count("each 2"), 2);
    let again = retry(&*env.backend, &st.record.id).await.unwrap_err();
    assert!(
        again.to_string().contains("only a failed or cancelled"),
        "{again}"
    );
    let _ = status(&*env.backend, &st.record.id).await.unwrap();
    env.stop().await;
}

/// Workers run the workflow monitor themselves (under a leader lease): with no separate
/// monitor, a workflow still reaches its final state, and a failed one compensates.
#[tokio::test]
async fn workers_alone_finish_workflows() {
    use std::sync::Arc;

    use quern::workflow::{SourceFormat, SubmitOptions, WorkflowPlan, submit};

    use super::harness::{Log, Step};
    use crate::worker::{open, worker};

    let dir = tempfile::tempdir().unwrap();
    let backend = open(&dir).await;
    let log = Arc::new(Log::default());
    let handle = worker(&backend)
        .register(Step(log.clone()))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let plan = WorkflowPlan::load(
        r#"
name: alone
tasks:
  - id: a
    kind: step
    params: {name: a}
    compensate: {kind: step, params: {name: undo_a}}
  - {id: b, kind: step, depends_on: [a], params: {name: b, fail: no}}
"#,
        SourceFormat::Yaml,
        &[],
    )
    .unwrap();
    let rec = submit(&*backend, &plan, SubmitOptions::default())
        .await
        .unwrap();
    let give_up = tokio::time::Instant::now() + WAIT;
    let done = loop {
        let st = status(&*backend, &rec.id).await.unwrap();
        if st.record.state.is_final() {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "never finished: {:?}",
            st.record
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.record.state, WorkflowState::Compensated);
    assert_eq!(log.names(), ["a", "b", "undo_a"]);
    handle.shutdown().await.unwrap();
}
