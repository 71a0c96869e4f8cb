//! Workflow records: atomic creation with the task jobs, compare-and-set updates with the job
//! changes that go with them (cancel, retry, compensations), counts by state, listing.

use std::collections::BTreeMap;

use super::*;
use crate::Error;
use crate::backend::{
    CancelScope, FailAction, WorkflowCreateParams, WorkflowListParams, WorkflowUpdateParams,
};
use crate::model::{
    JobId, JobState, NewJob, NewWorkflow, StateCounts, Trigger, WorkflowPhase, WorkflowRecord,
    WorkflowState,
};

/// A job of workflow `wf`.
fn task(wf: &str, kind: &str) -> NewJob {
    job(kind).workflow(wf)
}

/// A new workflow `id` whose task `t{i}` maps to `jobs[i]`.
fn new_workflow(id: &str, jobs: &[NewJob]) -> NewWorkflow {
    NewWorkflow {
        id: id.into(),
        name: format!("{id}-name"),
        spec: serde_json::json!({"name": id, "tasks": []}),
        tasks: jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (format!("t{i}"), j.id))
            .collect(),
    }
}

async fn create(h: &Harness, id: &str, jobs: Vec<NewJob>) -> WorkflowRecord {
    let workflow = new_workflow(id, &jobs);
    h.backend
        .workflow_create(WorkflowCreateParams { workflow, jobs })
        .await
        .unwrap_or_else(|e| panic!("{}: workflow_create {id}: {e}", h.case))
}

async fn get(h: &Harness, id: &str) -> WorkflowRecord {
    h.backend
        .workflow_get(id.into())
        .await
        .unwrap_or_else(|e| panic!("{}: workflow_get {id}: {e}", h.case))
        .unwrap_or_else(|| panic!("{}: workflow {id} is missing", h.case))
}

async fn update(h: &Harness, p: WorkflowUpdateParams) -> WorkflowRecord {
    let id = p.id.clone();
    h.backend
        .workflow_update(p)
        .await
        .unwrap_or_else(|e| panic!("{}: workflow_update {id}: {e}", h.case))
}

async fn counts(h: &Harness, id: &str) -> StateCounts {
    h.backend
        .workflow_counts(id.into())
        .await
        .unwrap_or_else(|e| panic!("{}: workflow_counts {id}: {e}", h.case))
}

/// The record and every task job are stored by one call, with the documented initial
/// values; jobs with dependencies start blocked as usual.
pub async fn create_stores_the_record_and_its_jobs(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = task("wf-1", "a");
    let b = task("wf-1", "b").depends_on([a.id]);
    let (ai, bi) = (a.id, b.id);
    let rec = create(&h, "wf-1", vec![a, b]).await;
    let want_tasks: BTreeMap<String, JobId> = [("t0".into(), ai), ("t1".into(), bi)].into();
    assert_eq!(
        (rec.state, rec.phase, rec.revision),
        (WorkflowState::Running, WorkflowPhase::Tasks, 1),
        "{}: initial state",
        h.case
    );
    assert_eq!(rec.tasks, want_tasks, "{}: task map", h.case);
    assert_eq!(rec.name, "wf-1-name", "{}: name", h.case);
    assert_eq!(
        (rec.created_at, rec.updated_at),
        (h.now(), h.now()),
        "{}: times",
        h.case
    );
    assert!(rec.finished_at.is_none() && rec.error.is_none() && rec.compensations.is_empty());
    assert_eq!(
        get(&h, "wf-1").await,
        rec,
        "{}: read back as returned",
        h.case
    );
    assert_eq!(rec.spec["name"], "wf-1", "{}: spec kept", h.case);
    let aj = h.get(ai).await;
    assert_eq!(
        aj.workflow_id.as_deref(),
        Some("wf-1"),
        "{}: job carries the id",
        h.case
    );
    assert_eq!(aj.state, JobState::Queued, "{}: root queued", h.case);
    h.assert_state(bi, JobState::Blocked, "dependent").await;
}

/// Anything wrong refuses the whole call: no record and no job is stored.
pub async fn create_is_all_or_nothing(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let good = task("wf-x", "a");
    let bad_queue = task("wf-x", "b").queue("bad queue");
    let ids = [good.id, bad_queue.id];
    let r = h
        .backend
        .workflow_create(WorkflowCreateParams {
            workflow: new_workflow("wf-x", &[good.clone(), bad_queue.clone()]),
            jobs: vec![good, bad_queue],
        })
        .await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: bad job refused, got {r:?}",
        h.case
    );
    h.assert_absent(&ids, "after a bad job").await;
    assert!(
        h.backend
            .workflow_get("wf-x".into())
            .await
            .unwrap()
            .is_none(),
        "{}: no record",
        h.case
    );

    // A job that does not carry the workflow's id.
    let stray = job("a");
    let stray_id = stray.id;
    let r = h
        .backend
        .workflow_create(WorkflowCreateParams {
            workflow: new_workflow("wf-x", std::slice::from_ref(&stray)),
            jobs: vec![stray],
        })
        .await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: stray job, got {r:?}",
        h.case
    );
    h.assert_absent(&[stray_id], "stray job").await;

    // A task mapped to a job that is not in the batch.
    let a = task("wf-x", "a");
    let a_id = a.id;
    let mut w = new_workflow("wf-x", std::slice::from_ref(&a));
    w.tasks.insert("ghost".into(), JobId::new());
    let r = h
        .backend
        .workflow_create(WorkflowCreateParams {
            workflow: w,
            jobs: vec![a],
        })
        .await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: ghost task, got {r:?}",
        h.case
    );
    h.assert_absent(&[a_id], "ghost task").await;

    // A bad id, and an id already taken.
    let a = task("bad id", "a");
    let r = h
        .backend
        .workflow_create(WorkflowCreateParams {
            workflow: new_workflow("bad id", std::slice::from_ref(&a)),
            jobs: vec![a],
        })
        .await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: bad id, got {r:?}",
        h.case
    );
    let first = create(&h, "wf-x", vec![task("wf-x", "a")]).await;
    let again = task("wf-x", "a");
    let again_id = again.id;
    let r = h
        .backend
        .workflow_create(WorkflowCreateParams {
            workflow: new_workflow("wf-x", std::slice::from_ref(&again)),
            jobs: vec![again],
        })
        .await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: taken id, got {r:?}",
        h.case
    );
    h.assert_absent(&[again_id], "taken id").await;
    assert_eq!(
        get(&h, "wf-x").await,
        first,
        "{}: first record intact",
        h.case
    );
}

/// Unknown ids: `None` from get, `WorkflowNotFound` from update and counts.
pub async fn unknown_workflow(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    assert!(
        h.backend
            .workflow_get("nope".into())
            .await
            .unwrap()
            .is_none()
    );
    expect_err!(
        h,
        h.backend.workflow_update(WorkflowUpdateParams::new("nope", 1)).await,
        Error::WorkflowNotFound(id) if id == "nope",
        "update unknown"
    );
    expect_err!(
        h,
        h.backend.workflow_counts("nope".into()).await,
        Error::WorkflowNotFound(_),
        "counts unknown"
    );
}

/// An update applies only at the expected revision; a stale one changes nothing, not even
/// the job changes it carries.
pub async fn update_is_compare_and_set(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = task("wf-1", "a");
    let ai = a.id;
    create(&h, "wf-1", vec![a]).await;
    h.advance(Duration::from_secs(1));
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.error = Some(Some("first".into()));
    let r = update(&h, p).await;
    assert_eq!(r.revision, 2, "{}: revision bumped", h.case);
    assert_eq!(r.error.as_deref(), Some("first"), "{}: error set", h.case);
    assert_eq!(r.updated_at, h.now(), "{}: updated_at", h.case);
    assert_eq!(
        r.state,
        WorkflowState::Running,
        "{}: state unchanged",
        h.case
    );

    let mut stale = WorkflowUpdateParams::new("wf-1", 1);
    stale.state = Some(WorkflowState::Cancelled);
    stale.cancel = Some(CancelScope::All);
    stale.compensations = vec![task("wf-1", "undo")];
    let undo = stale.compensations[0].id;
    expect_err!(
        h,
        h.backend.workflow_update(stale).await,
        Error::Conflict(_),
        "stale revision"
    );
    assert_eq!(get(&h, "wf-1").await, r, "{}: record unchanged", h.case);
    h.assert_state(
        ai,
        JobState::Queued,
        "job not cancelled by the stale update",
    )
    .await;
    h.assert_absent(&[undo], "compensation of the stale update")
        .await;
}

/// A final state sets `finished_at`; going back to `running` clears it.
pub async fn final_states_set_finished_at(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    create(&h, "wf-1", vec![task("wf-1", "a")]).await;
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.state = Some(WorkflowState::Failed);
    let r = update(&h, p).await;
    assert_eq!(r.finished_at, Some(h.now()), "{}: finished", h.case);
    h.advance(Duration::from_secs(5));
    let mut p = WorkflowUpdateParams::new("wf-1", 2);
    p.state = Some(WorkflowState::Running);
    p.error = Some(None);
    let r = update(&h, p).await;
    assert_eq!(
        (r.finished_at, r.error),
        (None, None),
        "{}: reopened",
        h.case
    );
}

/// Counts cover exactly this workflow's jobs, by state.
pub async fn counts_by_state(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = task("wf-1", "a");
    let b = task("wf-1", "b");
    let c = task("wf-1", "c").depends_on([a.id]);
    let (ai, bi) = (a.id, b.id);
    create(&h, "wf-1", vec![a, b, c]).await;
    create(&h, "wf-2", vec![task("wf-2", "x")]).await;
    h.enqueue(job("plain")).await;
    let got = counts(&h, "wf-1").await;
    let want = StateCounts {
        queued: 2,
        blocked: 1,
        ..Default::default()
    };
    assert_eq!(got, want, "{}: before any claim", h.case);
    let ca = h.claim_id("default", ai).await;
    h.complete(&ca.token).await;
    h.claim_and_fail("default", bi, FailAction::Dead).await;
    let got = counts(&h, "wf-1").await;
    let want = StateCounts {
        queued: 1,
        succeeded: 1,
        dead: 1,
        ..Default::default()
    };
    assert_eq!(got, want, "{}: after a success and a death", h.case);
    assert_eq!(
        counts(&h, "wf-2").await.total(),
        1,
        "{}: other workflow",
        h.case
    );
}

/// `NotStarted` cancels scheduled, queued and blocked jobs and leaves running ones alone;
/// `All` also revokes running leases.
pub async fn cancel_scopes(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let run = task("wf-1", "run");
    let queued = task("wf-1", "queued");
    let later = task("wf-1", "later").run_at(h.now() + 60_000);
    let blocked = task("wf-1", "blocked").depends_on([run.id]);
    // A chain of waiting jobs: each ends cancelled, none skipped by the one before.
    let after_queued = task("wf-1", "after_queued").depends_on([queued.id]);
    let last = task("wf-1", "last").depends_on([after_queued.id]);
    let ids = [
        run.id,
        queued.id,
        later.id,
        blocked.id,
        after_queued.id,
        last.id,
    ];
    create(
        &h,
        "wf-1",
        vec![run, queued, later, blocked, after_queued, last],
    )
    .await;
    let other = h.enqueue(job("plain")).await.id;
    let running = h.claim_id("default", ids[0]).await;

    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.cancel = Some(CancelScope::NotStarted);
    update(&h, p).await;
    h.assert_state(ids[0], JobState::Running, "running job left alone")
        .await;
    h.heartbeat(&running.token)
        .await
        .unwrap_or_else(|e| panic!("{}: lease still valid: {e}", h.case));
    for id in &ids[1..] {
        h.assert_state(*id, JobState::Cancelled, "not started")
            .await;
    }
    h.assert_state(other, JobState::Queued, "job outside the workflow")
        .await;

    let mut p = WorkflowUpdateParams::new("wf-1", 2);
    p.cancel = Some(CancelScope::All);
    p.state = Some(WorkflowState::Cancelled);
    let r = update(&h, p).await;
    assert_eq!(r.state, WorkflowState::Cancelled, "{}: state", h.case);
    h.assert_state(ids[0], JobState::Cancelled, "running job")
        .await;
    expect_err!(
        h,
        h.heartbeat(&running.token).await,
        Error::LeaseLost { .. },
        "revoked lease"
    );
}

/// `retry` reopens failed jobs, dependencies first, in the same step as the record change;
/// a job of another workflow refuses the whole update.
pub async fn retry_reopens_failed_jobs(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let a = task("wf-1", "a");
    let b = task("wf-1", "b").depends_on([a.id]);
    let (ai, bi) = (a.id, b.id);
    create(&h, "wf-1", vec![a, b]).await;
    h.claim_and_fail("default", ai, FailAction::Dead).await;
    h.assert_state(bi, JobState::Skipped, "dependent of the dead job")
        .await;
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.state = Some(WorkflowState::Failed);
    update(&h, p).await;

    let foreign = h.enqueue(job("plain")).await.id;
    h.claim_and_fail("default", foreign, FailAction::Dead).await;
    let mut p = WorkflowUpdateParams::new("wf-1", 2);
    p.retry = vec![ai, foreign];
    p.state = Some(WorkflowState::Running);
    let r = h.backend.workflow_update(p).await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: foreign job, got {r:?}",
        h.case
    );
    h.assert_state(ai, JobState::Dead, "nothing moved").await;
    assert_eq!(
        get(&h, "wf-1").await.state,
        WorkflowState::Failed,
        "{}: unchanged",
        h.case
    );

    let mut p = WorkflowUpdateParams::new("wf-1", 2);
    p.retry = vec![ai, bi];
    p.state = Some(WorkflowState::Running);
    let r = update(&h, p).await;
    assert_eq!(r.state, WorkflowState::Running, "{}: running again", h.case);
    h.assert_state(ai, JobState::Queued, "retried").await;
    h.assert_state(bi, JobState::Blocked, "waits for the retried one")
        .await;
    assert_eq!(h.get(ai).await.attempt, 0, "{}: attempts reset", h.case);
}

/// Compensation jobs are stored with the record change and listed on the record in order;
/// a bad one refuses the update.
pub async fn compensations_are_stored_with_the_update(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    create(&h, "wf-1", vec![task("wf-1", "a")]).await;
    let c1 = task("wf-1", "undo_b").queue("undo");
    let c2 = task("wf-1", "undo_a")
        .queue("undo")
        .depends_on([c1.id])
        .trigger(Trigger::AllDone);
    let (i1, i2) = (c1.id, c2.id);
    let bad = task("wf-1", "undo").queue("bad queue");
    let bad_id = bad.id;
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.phase = Some(WorkflowPhase::Compensating);
    p.compensations = vec![c1.clone(), bad];
    let r = h.backend.workflow_update(p).await;
    assert!(
        matches!(&r, Err(e) if is_input_error(e)),
        "{}: bad compensation, got {r:?}",
        h.case
    );
    h.assert_absent(&[i1, bad_id], "refused compensations")
        .await;
    assert_eq!(
        get(&h, "wf-1").await.revision,
        1,
        "{}: record unchanged",
        h.case
    );

    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.phase = Some(WorkflowPhase::Compensating);
    p.compensations = vec![c1, c2];
    let r = update(&h, p).await;
    assert_eq!(r.phase, WorkflowPhase::Compensating, "{}: phase", h.case);
    assert_eq!(r.compensations, vec![i1, i2], "{}: in order", h.case);
    h.assert_state(i1, JobState::Queued, "first compensation")
        .await;
    h.assert_state(i2, JobState::Blocked, "second waits").await;
    let c = h.claim_id("undo", i1).await;
    h.fail(&c.token, FailAction::Dead).await;
    h.assert_state(i2, JobState::Queued, "all_done runs after a failure")
        .await;
}

/// Newest first, filtered by state, paged by id.
pub async fn list_newest_first_by_state(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let ids: Vec<String> = sorted_ids(5).iter().map(|i| i.to_string()).collect();
    for id in &ids {
        create(&h, id, vec![task(id, "a")]).await;
    }
    for id in &ids[..2] {
        let mut p = WorkflowUpdateParams::new(id.as_str(), 1);
        p.state = Some(WorkflowState::Succeeded);
        update(&h, p).await;
    }
    let all = h
        .backend
        .workflow_list(WorkflowListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<&str> = all.workflows.iter().map(|w| w.id.as_str()).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want, "{}: newest first", h.case);
    let running = h
        .backend
        .workflow_list(WorkflowListParams {
            state: Some(WorkflowState::Running),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<&str> = running.workflows.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(got, want[..3].to_vec(), "{}: running only", h.case);
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = h
            .backend
            .workflow_list(WorkflowListParams {
                state: None,
                limit: 2,
                before: before.clone(),
            })
            .await
            .unwrap();
        assert!(page.workflows.len() <= 2, "{}: page size", h.case);
        seen.extend(page.workflows.into_iter().map(|w| w.id));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, want, "{}: pages cover everything once", h.case);
}

/// A job enqueued on its own carrying the workflow's id (not through create, a spawn or a
/// compensation) is one of the workflow's jobs: counted, and cancelled with it, in either
/// batch mode.
pub async fn enqueued_jobs_join_their_workflow(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    create(&h, "wf-1", vec![task("wf-1", "a")]).await;
    let extra = h.enqueue(task("wf-1", "extra")).await.id;
    let plain = job("plain");
    let plain_id = plain.id;
    let res = h
        .try_enqueue(
            vec![task("wf-1", "b"), plain],
            crate::backend::BatchMode::BestEffort,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: best-effort enqueue: {e}", h.case));
    let b = res[0]
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: job b refused: {e}", h.case))
        .id;
    let want = StateCounts {
        queued: 3,
        ..Default::default()
    };
    assert_eq!(counts(&h, "wf-1").await, want, "{}: counted", h.case);
    let mut p = WorkflowUpdateParams::new("wf-1", 1);
    p.cancel = Some(CancelScope::NotStarted);
    update(&h, p).await;
    for id in [extra, b] {
        h.assert_state(id, JobState::Cancelled, "cancelled with its workflow")
            .await;
    }
    h.assert_state(plain_id, JobState::Queued, "job outside the workflow")
        .await;
}
