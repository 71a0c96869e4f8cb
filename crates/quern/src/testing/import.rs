//! `store_import`: records written back verbatim (restore, migrate) read back field for
//! field, and behave exactly like natively stored ones: an imported queued job is claimed,
//! an imported blocked job unblocks when its imported dependency completes, an imported
//! scheduled job becomes due, an imported unique key holds, a paused queue stays paused.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::Error;
use crate::backend::{
    ImportItem, ImportMode, ImportParams, ImportReport, ImportSkip, QueueImport, ScheduleImport,
    ScheduleRunsParams, WorkflowParams,
};
use crate::model::{
    ErrorKind, ErrorRecord, Job, JobId, JobState, JobTemplate, Lease, Progress, RetryPolicy,
    RunKind, ScheduleRun, ScheduleSpec, StoredSchedule, Trigger, WorkflowPhase, WorkflowRecord,
    WorkflowState,
};

/// A stored-looking job of `kind` in `state`, created a minute ago, with most fields set.
fn image(h: &Harness, kind: &str, state: JobState) -> Job {
    let now = h.now();
    let mut j = Job::from_new(job(kind).queue("imp"), state, now - 60_000);
    j.run_at = now - 50_000;
    j.retry = Some(RetryPolicy::Fixed {
        delay: Duration::from_secs(2),
    });
    j.timeout = Some(Duration::from_secs(9));
    j.tags = vec!["t1".into(), "t2".into()];
    j.meta = serde_json::json!({ "from": "archive" });
    j.version = 2;
    j.result_ttl = Some(Duration::from_secs(3600));
    j.trace = Some(crate::model::TraceContext {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        tracestate: Some("congo=t61rcWkgMzE".into()),
    });
    if state != JobState::Queued && state != JobState::Scheduled && state != JobState::Blocked {
        j.attempt = 2;
        j.lease_epoch = 2;
        j.claimed_at = Some(now - 40_000);
        j.started_at = Some(now - 39_000);
    }
    if state.is_terminal() {
        j.finished_at = Some(now - 30_000);
        j.errors = vec![ErrorRecord {
            attempt: 1,
            at: now - 45_000,
            kind: ErrorKind::Retryable,
            message: "first try failed".into(),
            claimed_at: None,
            due_at: None,
            retry_at: None,
        }];
        j.progress = Some(Progress {
            percent: 80.0,
            message: Some("almost".into()),
        });
        j.checkpoint = Some(json_payload(serde_json::json!({ "cursor": 7 })));
    }
    if state == JobState::Succeeded {
        j.result = Some(json_payload(serde_json::json!({ "rows": 3 })));
        j.result_expires_at = Some(now + 3_600_000);
    }
    if state == JobState::Scheduled {
        j.run_at = now + 60_000;
        j.attempt = 1;
        j.lease_epoch = 1;
        j.errors = vec![ErrorRecord {
            attempt: 1,
            at: now - 1_000,
            kind: ErrorKind::Timeout,
            message: "timed out".into(),
            claimed_at: None,
            due_at: None,
            retry_at: None,
        }];
    }
    j
}

async fn import(h: &Harness, params: ImportParams) -> ImportReport {
    h.backend
        .store_import(params)
        .await
        .unwrap_or_else(|e| panic!("{}: store_import: {e}", h.case))
}

async fn import_jobs(h: &Harness, jobs: Vec<Job>) -> ImportReport {
    import(
        h,
        ImportParams {
            jobs,
            ..Default::default()
        },
    )
    .await
}

/// Jobs in every state but running read back with every field as imported.
pub async fn jobs_in_every_state_read_back_verbatim(h: Harness) {
    let states = [
        JobState::Queued,
        JobState::Scheduled,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
        JobState::Skipped,
    ];
    let mut jobs: Vec<Job> = states.iter().map(|s| image(&h, "v", *s)).collect();
    // A blocked job waiting on the queued one, with a trigger and a unique key.
    let mut blocked = image(&h, "v", JobState::Blocked);
    blocked.depends_on = vec![jobs[0].id, jobs[2].id];
    blocked.trigger = Trigger::AllDone;
    blocked.unique_key = Some("u-1".into());
    blocked.unique_for = Some(Duration::from_secs(600));
    jobs.push(blocked);
    let report = import_jobs(&h, jobs.clone()).await;
    assert_eq!(report.jobs, jobs.len(), "{}: report {report:?}", h.case);
    assert!(report.skipped.is_empty(), "{}: {report:?}", h.case);
    for want in &jobs {
        let got = h.get(want.id).await;
        assert_eq!(
            &got, want,
            "{}: {:?} job reads back verbatim",
            h.case, want.state
        );
    }
    let stats = h.stats("imp").await;
    assert_eq!(
        (
            stats.counts.queued,
            stats.counts.scheduled,
            stats.counts.blocked
        ),
        (1, 1, 1),
        "{}: counted in their states: {stats:?}",
        h.case
    );
}

/// An imported queued job is claimed like any other: attempt and epoch go on from theirs.
pub async fn imported_queued_job_is_claimed(h: Harness) {
    let mut j = image(&h, "q", JobState::Queued);
    j.attempt = 1;
    j.lease_epoch = 4;
    import_jobs(&h, vec![j.clone()]).await;
    let c = h.claim_one("imp").await;
    assert_eq!(c.job.id, j.id, "{}: the imported job is claimed", h.case);
    assert_eq!(
        (c.job.attempt, c.token.epoch),
        (2, 5),
        "{}: attempt and epoch continue",
        h.case
    );
    h.complete(&c.token).await;
    h.assert_state(j.id, JobState::Succeeded, "completed").await;
}

/// An imported job's later events carry its kind (the store keeps it for them).
pub async fn events_of_an_imported_job_carry_its_kind(h: Harness) {
    let j = image(&h, "imported.kind", JobState::Queued);
    import_jobs(&h, vec![j.clone()]).await;
    let c = h.claim_one("imp").await;
    h.complete(&c.token).await;
    let ev = h
        .backend
        .event_list(crate::backend::EventListParams { job: j.id })
        .await
        .unwrap_or_else(|e| panic!("{}: event_list: {e}", h.case));
    let after: Vec<&str> = ev
        .iter()
        .filter(|e| e.from.is_some())
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        after,
        vec!["imported.kind", "imported.kind"],
        "{}: claim and completion events: {ev:?}",
        h.case
    );
}

/// An imported blocked job unblocks when its imported dependency completes.
pub async fn imported_blocked_job_unblocks_when_its_dependency_completes(h: Harness) {
    let dep = image(&h, "dep", JobState::Queued);
    let mut child = image(&h, "child", JobState::Blocked);
    child.depends_on = vec![dep.id];
    import_jobs(&h, vec![dep.clone(), child.clone()]).await;
    h.assert_state(child.id, JobState::Blocked, "still waiting")
        .await;
    let c = h.claim_one("imp").await;
    assert_eq!(
        c.job.id, dep.id,
        "{}: only the dependency is claimable",
        h.case
    );
    h.complete(&c.token).await;
    h.assert_state(child.id, JobState::Queued, "unblocked")
        .await;
    h.claim_id("imp", child.id).await;
}

/// An imported blocked job is skipped when its imported dependency dies.
pub async fn imported_blocked_job_is_skipped_when_its_dependency_dies(h: Harness) {
    let mut dep = image(&h, "dep", JobState::Queued);
    dep.max_attempts = 1;
    let mut child = image(&h, "child", JobState::Blocked);
    child.depends_on = vec![dep.id];
    import_jobs(&h, vec![dep.clone(), child.clone()]).await;
    h.claim_and_fail("imp", dep.id, crate::backend::FailAction::Dead)
        .await;
    h.assert_state(child.id, JobState::Skipped, "skipped").await;
}

/// A blocked job whose dependencies are already settled in the store is settled on import
/// (a copy taken while workers ran may hold such a job).
pub async fn settled_blocked_job_is_released_on_import(h: Harness) {
    let dep = image(&h, "dep", JobState::Succeeded);
    let mut child = image(&h, "child", JobState::Blocked);
    child.depends_on = vec![dep.id];
    let dead = image(&h, "dead", JobState::Dead);
    let mut doomed = image(&h, "doomed", JobState::Blocked);
    doomed.depends_on = vec![dead.id];
    import_jobs(&h, vec![dep, child.clone(), dead, doomed.clone()]).await;
    h.assert_state(child.id, JobState::Queued, "released").await;
    h.assert_state(doomed.id, JobState::Skipped, "skipped")
        .await;
    h.claim_id("imp", child.id).await;
}

/// An imported scheduled job is not claimable before its run_at, and is once it is due.
pub async fn imported_scheduled_job_becomes_due(h: Harness) {
    let j = image(&h, "later", JobState::Scheduled);
    import_jobs(&h, vec![j.clone()]).await;
    h.claim_none("imp", "not due yet").await;
    h.advance_to(j.run_at);
    let c = h.claim_one("imp").await;
    assert_eq!(c.job.id, j.id, "{}: due now", h.case);
    assert_eq!(c.job.attempt, 2, "{}: its attempts go on", h.case);
}

/// A running job is imported queued with the running attempt counted (its lease belonged to
/// the old store's worker), or dead when that was its last attempt.
pub async fn running_job_is_imported_queued_with_its_attempt_counted(h: Harness) {
    let mut r = image(&h, "r", JobState::Running);
    r.attempt = 1;
    r.lease = Some(Lease {
        worker_id: "old-worker".into(),
        expires_at: h.now() + 30_000,
    });
    let mut last = r.clone();
    last.id = JobId::new();
    last.attempt = last.max_attempts;
    import_jobs(&h, vec![r.clone(), last.clone()]).await;
    let got = h.get(r.id).await;
    assert_eq!(
        (got.state, got.attempt, got.lease.clone()),
        (JobState::Queued, 1, None),
        "{}: queued, attempt kept",
        h.case
    );
    assert_eq!(
        got.errors.last().map(|e| e.kind),
        Some(ErrorKind::LeaseExpired),
        "{}: the lost attempt is in the history",
        h.case
    );
    let c = h.claim_id("imp", r.id).await;
    assert_eq!(
        c.job.attempt, 2,
        "{}: the next attempt is the second",
        h.case
    );
    h.assert_state(last.id, JobState::Dead, "out of attempts")
        .await;
}

/// In `Refuse` mode an id already stored fails the call and nothing of it is written.
pub async fn refuse_mode_writes_nothing_when_an_id_is_taken(h: Harness) {
    let existing = h.enqueue(job("old").queue("imp")).await.id;
    let fresh = image(&h, "new", JobState::Queued);
    let mut clash = image(&h, "clash", JobState::Queued);
    clash.id = existing;
    let res = h
        .backend
        .store_import(ImportParams {
            jobs: vec![fresh.clone(), clash],
            ..Default::default()
        })
        .await;
    expect_err!(h, res, Error::InvalidArgument(_), "an id already stored");
    h.assert_absent(&[fresh.id], "refused call").await;
    assert_eq!(h.get(existing).await.kind, "old", "{}: kept", h.case);
}

/// In `SkipExisting` mode an id already stored is reported and left as it is; the rest is
/// imported.
pub async fn skip_existing_never_overwrites(h: Harness) {
    let existing = h.enqueue(job("old").queue("imp")).await.id;
    let fresh = image(&h, "new", JobState::Queued);
    let mut clash = image(&h, "clash", JobState::Dead);
    clash.id = existing;
    let report = import(
        &h,
        ImportParams {
            mode: ImportMode::SkipExisting,
            jobs: vec![clash, fresh.clone()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(report.jobs, 1, "{}: {report:?}", h.case);
    assert_eq!(
        report.skipped,
        vec![ImportSkip {
            item: ImportItem::Job,
            id: existing.to_string()
        }],
        "{}: skipped",
        h.case
    );
    let old = h.get(existing).await;
    assert_eq!(
        (old.kind.as_str(), old.state),
        ("old", JobState::Queued),
        "{}: not overwritten",
        h.case
    );
    assert_eq!(h.get(fresh.id).await, fresh, "{}: the new one", h.case);
}

/// A dependency neither stored nor earlier in the call is refused, and so is a bad job.
pub async fn unknown_dependency_and_bad_jobs_are_refused(h: Harness) {
    let mut orphan = image(&h, "orphan", JobState::Blocked);
    orphan.depends_on = vec![JobId::new()];
    let res = h
        .backend
        .store_import(ImportParams {
            jobs: vec![orphan.clone()],
            ..Default::default()
        })
        .await;
    expect_err!(h, res, Error::InvalidJob { .. }, "unknown dependency");
    h.assert_absent(&[orphan.id], "refused").await;
    let mut bad = image(&h, "bad", JobState::Queued);
    bad.queue = "no spaces allowed".into();
    let res = h
        .backend
        .store_import(ImportParams {
            jobs: vec![bad],
            ..Default::default()
        })
        .await;
    expect_err!(h, res, Error::InvalidJob { .. }, "bad queue name");
}

/// A finished job may name a dependency pruned before the copy: it is imported with its list.
pub async fn finished_job_with_a_pruned_dependency_is_imported(h: Harness) {
    let mut done = image(&h, "done", JobState::Succeeded);
    done.depends_on = vec![JobId::new()];
    import_jobs(&h, vec![done.clone()]).await;
    assert_eq!(h.get(done.id).await, done, "{}: verbatim", h.case);
}

/// The unique key of an imported live job holds against new enqueues.
pub async fn imported_unique_key_holds(h: Harness) {
    let mut j = image(&h, "u", JobState::Queued);
    j.unique_key = Some("report-42".into());
    import_jobs(&h, vec![j.clone()]).await;
    let again = h
        .enqueue(job("u").queue("imp").unique("report-42", None))
        .await;
    assert!(
        again.duplicate && again.id == j.id,
        "{}: the imported job holds its key: {again:?}",
        h.case
    );
}

/// Queues are created with their paused flag; a paused queue is not claimed from.
pub async fn paused_queue_is_imported_paused(h: Harness) {
    let j = image(&h, "p", JobState::Queued);
    let report = import(
        &h,
        ImportParams {
            queues: vec![
                QueueImport {
                    name: "imp".into(),
                    paused: true,
                    settings: Default::default(),
                },
                QueueImport {
                    name: "empty".into(),
                    paused: false,
                    settings: Default::default(),
                },
            ],
            jobs: vec![j.clone()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(report.queues, 2, "{}: {report:?}", h.case);
    assert!(h.stats("imp").await.paused, "{}: paused", h.case);
    assert!(!h.stats("empty").await.paused, "{}: known", h.case);
    h.claim_none("imp", "paused").await;
    h.backend.queue_resume("imp".into()).await.unwrap();
    h.claim_id("imp", j.id).await;
}

/// Workflow records read back verbatim, and their imported jobs count as theirs.
pub async fn workflow_records_and_their_jobs(h: Harness) {
    if h.lacks("workflows", h.caps().workflows) {
        return;
    }
    let mut a = image(&h, "a", JobState::Succeeded);
    a.workflow_id = Some("wf-imp".into());
    let mut b = image(&h, "b", JobState::Blocked);
    b.workflow_id = Some("wf-imp".into());
    b.depends_on = vec![a.id];
    let mut c = image(&h, "c", JobState::Queued);
    c.workflow_id = Some("wf-imp".into());
    let mut b_waits = b.clone();
    // A dependency that has succeeded settles a blocked job: make b wait on c as well.
    b_waits.depends_on = vec![a.id, c.id];
    let now = h.now();
    let rec = WorkflowRecord {
        id: "wf-imp".into(),
        name: "imported".into(),
        state: WorkflowState::Running,
        phase: WorkflowPhase::Tasks,
        revision: 7,
        spec: serde_json::json!({ "name": "imported", "tasks": [] }),
        tasks: BTreeMap::from([("a".into(), a.id), ("b".into(), b.id), ("c".into(), c.id)]),
        compensations: vec![],
        error: Some("not really".into()),
        created_at: now - 60_000,
        updated_at: now - 1_000,
        finished_at: None,
    };
    let report = import(
        &h,
        ImportParams {
            jobs: vec![a, c.clone(), b_waits.clone()],
            workflows: vec![rec.clone()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (report.jobs, report.workflows),
        (3, 1),
        "{}: {report:?}",
        h.case
    );
    let got = h
        .backend
        .workflow_get(WorkflowParams {
            id: "wf-imp".into(),
        })
        .await
        .unwrap();
    assert_eq!(got, Some(rec.clone()), "{}: record verbatim", h.case);
    let counts = h
        .backend
        .workflow_counts(WorkflowParams {
            id: "wf-imp".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (counts.succeeded, counts.blocked, counts.queued),
        (1, 1, 1),
        "{}: members counted: {counts:?}",
        h.case
    );
    let again = h
        .backend
        .store_import(ImportParams {
            workflows: vec![rec],
            ..Default::default()
        })
        .await;
    expect_err!(h, again, Error::InvalidArgument(_), "workflow id taken");
    let cl = h.claim_id("imp", c.id).await;
    h.complete(&cl.token).await;
    h.assert_state(b_waits.id, JobState::Queued, "the workflow's join runs")
        .await;
}

/// Schedules read back verbatim with their run history; a taken name is skipped.
pub async fn schedules_read_back_with_their_history(h: Harness) {
    if h.lacks("schedules", h.caps().schedules) {
        return;
    }
    let now = h.now();
    let mut tpl = JobTemplate::new("tick");
    tpl.queue = "cron".into();
    let spec = ScheduleSpec::new("nightly", "0 3 * * *", tpl);
    let job_id = JobId::new();
    let s = StoredSchedule {
        spec: spec.clone(),
        paused: true,
        revision: 4,
        created_at: now - 86_400_000,
        updated_at: now - 3_600_000,
        watermark: now - 60_000,
        runs: 12,
        last_tick: Some(now - 60_000),
        last_job: Some(job_id),
    };
    let runs = vec![
        ScheduleRun {
            tick: now - 60_000,
            fired_at: now - 59_000,
            kind: RunKind::Scheduled,
            job_id: Some(job_id),
        },
        ScheduleRun {
            tick: now - 120_000,
            fired_at: now - 119_000,
            kind: RunKind::SkippedOverlap,
            job_id: None,
        },
    ];
    let report = import(
        &h,
        ImportParams {
            schedules: vec![ScheduleImport {
                schedule: s.clone(),
                runs: runs.clone(),
            }],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(report.schedules, 1, "{}: {report:?}", h.case);
    let got = h.backend.schedule_get("nightly".into()).await.unwrap();
    assert_eq!(got, Some(s.clone()), "{}: verbatim", h.case);
    let got_runs = h
        .backend
        .schedule_runs(ScheduleRunsParams {
            name: "nightly".into(),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(got_runs, runs, "{}: history newest first", h.case);
    let mut other = s.clone();
    other.revision = 99;
    let report = import(
        &h,
        ImportParams {
            mode: ImportMode::SkipExisting,
            schedules: vec![ScheduleImport {
                schedule: other,
                runs: vec![],
            }],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (report.schedules, report.skipped.len()),
        (0, 1),
        "{}: {report:?}",
        h.case
    );
    assert_eq!(
        h.backend.schedule_get("nightly".into()).await.unwrap(),
        Some(s),
        "{}: not overwritten",
        h.case
    );
}
