//! Failure policy and saga compensation: a dead task fails the workflow; fail-fast cancels
//! what has not started while `continue` lets independent branches finish; then the
//! compensations of the tasks that succeeded run in reverse topological order.

use quern::JobState;
use quern::model::{WorkflowPhase, WorkflowState};
use serde_json::json;

use super::harness::Env;

const SAGA: &str = r#"
name: saga
tasks:
  - id: flight
    kind: step
    params: {name: flight, return: {booking: FL-1}}
    compensate: {kind: step, params: {name: undo_flight, booking: "${flight.result.booking}"}}
  - id: hotel
    kind: step
    depends_on: [flight]
    params: {name: hotel, return: {booking: HT-7}}
    compensate: {kind: step, params: {name: undo_hotel, booking: "${hotel.result.booking}", flight: "${flight.result.booking}"}}
  - id: car
    kind: step
    depends_on: [flight]
    params: {name: car, return: {booking: CAR-3}}
    compensate: {kind: step, params: {name: undo_car, booking: "${car.result.booking}"}}
  - id: charge
    kind: step
    depends_on: [hotel, car]
    params: {name: charge, fail: "card declined"}
    compensate: {kind: step, params: {name: undo_charge}}
"#;

#[tokio::test]
async fn a_failed_step_runs_the_compensations_in_reverse_order() {
    let env = Env::start().await;
    let st = env.run(SAGA).await;
    assert_eq!(
        st.record.state,
        WorkflowState::Compensated,
        "{:?}",
        st.record
    );
    assert_eq!(st.record.phase, WorkflowPhase::Compensating);
    let err = st.record.error.as_deref().unwrap();
    assert!(
        err.contains("task `charge`") && err.contains("card declined"),
        "{err}"
    );
    let ran = env.log.names();
    // flight first, charge after hotel and car (which may run in either order); the
    // failed step itself is not compensated; hotel and car (reverse of their id order)
    // are undone before flight, which both depend on.
    assert_eq!(ran[0], "flight");
    let mut middle = ran[1..3].to_vec();
    middle.sort();
    assert_eq!(middle, ["car", "hotel"]);
    assert_eq!(ran[3], "charge");
    assert_eq!(ran[4..], ["undo_hotel", "undo_car", "undo_flight"]);
    assert_eq!(env.log.params("undo_hotel")["booking"], json!("HT-7"));
    assert_eq!(env.log.params("undo_hotel")["flight"], json!("FL-1"));
    assert_eq!(env.log.params("undo_flight")["booking"], json!("FL-1"));
    assert_eq!(st.record.compensations.len(), 3);
    env.stop().await;
}

#[tokio::test]
async fn a_failing_compensation_leaves_the_workflow_failed_but_the_others_still_run() {
    let env = Env::start().await;
    let yaml = SAGA.replace(
        "params: {name: undo_car, booking",
        "params: {name: undo_car, fail: nope, booking",
    );
    let st = env.run(&yaml).await;
    assert_eq!(st.record.state, WorkflowState::Failed, "{:?}", st.record);
    let err = st.record.error.as_deref().unwrap();
    assert!(
        err.contains("card declined") && err.contains("compensation of `car`"),
        "{err}"
    );
    assert_eq!(
        env.log.names()[4..],
        ["undo_hotel", "undo_car", "undo_flight"]
    );
    env.stop().await;
}

const BRANCHES: &str = r#"
name: branches
on_failure: POLICY
tasks:
  - {id: bad, kind: step, params: {name: bad, fail: boom}}
  - {id: after_bad, kind: step, depends_on: [bad], params: {name: after_bad}}
  - {id: slow, kind: step, params: {name: slow, sleep_ms: 300}}
  - {id: after_slow, kind: step, depends_on: [slow], params: {name: after_slow}}
"#;

#[tokio::test]
async fn fail_fast_cancels_what_has_not_started() {
    let env = Env::start().await;
    let st = env.run(&BRANCHES.replace("POLICY", "fail_fast")).await;
    assert_eq!(st.record.state, WorkflowState::Failed);
    assert_eq!(env.job(&st, "bad").await.state, JobState::Dead);
    assert_eq!(env.job(&st, "after_bad").await.state, JobState::Skipped);
    assert_eq!(
        env.job(&st, "slow").await.state,
        JobState::Succeeded,
        "running work finishes"
    );
    let after = env.job(&st, "after_slow").await;
    assert_eq!(after.state, JobState::Cancelled, "not started: cancelled");
    assert!(after.errors.last().unwrap().message.contains("failed"));
    assert_eq!(env.log.count("after_slow"), 0);
    env.stop().await;
}

#[tokio::test]
async fn continue_lets_independent_branches_finish() {
    let env = Env::start().await;
    let st = env.run(&BRANCHES.replace("POLICY", "continue")).await;
    assert_eq!(st.record.state, WorkflowState::Failed);
    assert_eq!(env.job(&st, "after_bad").await.state, JobState::Skipped);
    assert_eq!(env.job(&st, "after_slow").await.state, JobState::Succeeded);
    assert_eq!(env.log.count("after_slow"), 1);
    env.stop().await;
}

#[tokio::test]
async fn succeeded_instances_of_a_for_each_task_are_compensated_one_by_one() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: each_saga
on_failure: continue
tasks:
  - id: book
    kind: step
    for_each: [a, b, c]
    params: {name: "book ${item}", return: {ref: "R-${item}"}}
    compensate: {kind: step, params: {name: "undo ${item}", ref: "${book.result.ref}", index: "${index}"}}
  - {id: pay, kind: step, depends_on: [book], params: {name: pay, fail: declined}}
"#,
        )
        .await;
    assert_eq!(
        st.record.state,
        WorkflowState::Compensated,
        "{:?}",
        st.record
    );
    let undo: Vec<String> = env
        .log
        .names()
        .into_iter()
        .filter(|n| n.starts_with("undo"))
        .collect();
    assert_eq!(undo, ["undo c", "undo b", "undo a"], "last item first");
    assert_eq!(env.log.params("undo b")["ref"], json!("R-b"));
    assert_eq!(env.log.params("undo b")["index"], json!(1));
    env.stop().await;
}
