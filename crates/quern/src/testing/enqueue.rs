//! `job_enqueue`: the initial state of a new job (queued, scheduled, blocked, skipped), that
//! every field is stored as given, and that bad jobs are refused without storing anything.

use std::time::Duration;

use super::*;
use crate::backend::{BatchMode, FailAction};
use crate::model::{JobState, NewJob, Priority, RetryPolicy, Trigger};

/// A job with no delay and no dependencies starts `queued`, and every field reads back as
/// given with the documented initial values.
pub async fn new_job_is_queued_with_fields_as_given(h: Harness) {
    let mut new = job("send_email")
        .queue("mail")
        .priority(Priority::HIGH)
        .max_attempts(7)
        .retry(RetryPolicy::Fixed {
            delay: Duration::from_secs(3),
        })
        .timeout(Duration::from_secs(90))
        .unique("welcome:42", Some(Duration::from_secs(600)))
        .workflow("wf-1");
    new.tags = vec!["a".into(), "b".into()];
    new.meta = serde_json::json!({ "task": "fetch", "n": [1, 2] });
    new.version = 3;
    new.trace = Some(crate::model::TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: Some("vendor=opaque,other=x1".into()),
    });
    let out = h.enqueue(new.clone()).await;
    assert_eq!(out.id, new.id, "{}: outcome carries the new id", h.case);
    assert_eq!(out.state, JobState::Queued, "{}: outcome state", h.case);
    assert!(!out.duplicate, "{}: not a duplicate", h.case);

    let got = h.get(new.id).await;
    let want = crate::Job::from_new(new, JobState::Queued, h.now());
    assert_eq!(
        got, want,
        "{}: stored job differs from what was enqueued",
        h.case
    );
    assert_eq!(got.payload.to_json_value().unwrap()["kind"], "send_email");
}

/// A job with a future `run_at` starts `scheduled`, with `run_at` as given.
pub async fn future_run_at_is_scheduled(h: Harness) {
    let at = h.now() + 60_000;
    let out = h.enqueue(job("later").run_at(at)).await;
    assert_eq!(out.state, JobState::Scheduled, "{}: outcome state", h.case);
    let j = h.get(out.id).await;
    assert_eq!(j.state, JobState::Scheduled, "{}", h.case);
    assert_eq!(j.run_at, at, "{}: run_at stored as given", h.case);
}

/// A job with a `delay` is due exactly that long after it was stored: the backend adds the
/// delay to the clock reading it records as `created_at`, in batches and on its own, and it
/// is claimable then and not a millisecond before.
pub async fn delay_counts_from_the_store(h: Harness) {
    h.advance(Duration::from_millis(7));
    let out = h
        .enqueue(job("later").delay(Duration::from_millis(250)))
        .await;
    assert_eq!(out.state, JobState::Scheduled, "{}: outcome state", h.case);
    let j = h.get(out.id).await;
    assert_eq!(j.created_at, h.now(), "{}: created_at", h.case);
    assert_eq!(
        j.run_at,
        j.created_at + 250,
        "{}: run_at = created_at + delay",
        h.case
    );
    let batch = h
        .backend
        .job_enqueue(crate::backend::EnqueueParams {
            jobs: vec![
                job("b1").delay(Duration::from_secs(2)),
                job("b2").delay(Duration::from_millis(250)),
            ],
            mode: BatchMode::Atomic,
        })
        .await
        .expect("batch enqueue");
    let ids: Vec<_> = batch
        .iter()
        .map(|o| o.as_ref().expect("stored").id)
        .collect();
    assert_eq!(
        h.get(ids[0]).await.run_at,
        h.now() + 2_000,
        "{}: batch delay",
        h.case
    );
    h.advance(Duration::from_millis(249));
    h.claim_none("default", "a delayed job before its delay has passed")
        .await;
    h.advance(Duration::from_millis(1));
    let got = h.claim("default", 10).await;
    let mut got: Vec<_> = got.iter().map(|c| c.job.id).collect();
    got.sort();
    let mut want = vec![out.id, ids[1]];
    want.sort();
    assert_eq!(got, want, "{}: both 250 ms jobs are due at once", h.case);
    // Giving both a delay and a run_at is refused.
    let mut both = job("both").delay(Duration::from_secs(1));
    both.run_at = Some(h.now());
    let res = h
        .backend
        .job_enqueue(crate::backend::EnqueueParams {
            jobs: vec![both],
            mode: BatchMode::Atomic,
        })
        .await;
    expect_err!(h, res, crate::Error::InvalidJob { .. }, "delay and run_at");
}

/// A job whose `run_at` is already past is `queued` and keeps its `run_at` (which orders it
/// among equal priorities).
pub async fn past_run_at_is_queued(h: Harness) {
    let at = h.now() - 5_000;
    let out = h.enqueue(job("overdue").run_at(at)).await;
    assert_eq!(out.state, JobState::Queued, "{}: outcome state", h.case);
    assert_eq!(h.get(out.id).await.run_at, at, "{}: run_at kept", h.case);
    h.claim_id("default", out.id).await;
}

/// A job depending on an unfinished job starts `blocked` and is not claimable.
pub async fn pending_dependency_is_blocked(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    let b = h.enqueue(job("b").depends_on([a])).await;
    assert_eq!(b.state, JobState::Blocked, "{}: outcome state", h.case);
    h.assert_state(b.id, JobState::Blocked, "stored").await;
    // Only `a` is claimable.
    let got = h.claim("default", 10).await;
    assert_eq!(got.len(), 1, "{}: only the dependency is ready", h.case);
    assert_eq!(got[0].job.id, a, "{}", h.case);
}

/// A job whose dependencies all succeeded already starts `queued`.
pub async fn succeeded_dependency_is_queued(h: Harness) {
    let a = h.enqueue_and_claim(job("a")).await;
    h.complete(&a.token).await;
    let b = h.enqueue(job("b").depends_on([a.job.id])).await;
    assert_eq!(b.state, JobState::Queued, "{}: outcome state", h.case);
    h.claim_id("default", b.id).await;
}

/// A job whose dependency is already dead starts `skipped` (it can never run under
/// `all_success`), finished, and never claimable; under `all_done` it starts `queued`.
pub async fn failed_dependency_is_skipped(h: Harness) {
    let a = h.enqueue(job("a")).await.id;
    h.claim_and_fail("default", a, FailAction::Dead).await;
    let b = h.enqueue(job("b").depends_on([a])).await;
    assert_eq!(b.state, JobState::Skipped, "{}: outcome state", h.case);
    let bj = h.get(b.id).await;
    assert_eq!(bj.state, JobState::Skipped, "{}", h.case);
    assert!(
        bj.finished_at.is_some(),
        "{}: skipped is terminal: finished_at set",
        h.case
    );
    let c = h
        .enqueue(job("c").depends_on([a]).trigger(Trigger::AllDone))
        .await;
    assert_eq!(
        c.state,
        JobState::Queued,
        "{}: all_done on a dead dependency",
        h.case
    );
    h.claim_id("default", c.id).await;
    h.claim_none("default", "the skipped job never runs").await;
}

/// A dependency on a job that does not exist is refused and nothing is stored.
pub async fn unknown_dependency_is_refused(h: Harness) {
    let ghost = crate::JobId::new();
    let new = job("orphan").depends_on([ghost]);
    let id = new.id;
    let res = h.try_enqueue(vec![new], BatchMode::Atomic).await;
    expect_err!(h, res, ref e if is_input_error(e), "unknown dependency");
    h.assert_absent(&[id], "refused job").await;
}

/// Enqueuing a second job with an id already in use is refused and leaves the first as it
/// was (no silent overwrite).
pub async fn duplicate_id_is_refused(h: Harness) {
    let first = job("first");
    let id = first.id;
    h.enqueue(first).await;
    let before = h.get(id).await;
    let second = job("second").id(id).queue("other");
    let res = h.try_enqueue(vec![second], BatchMode::Atomic).await;
    expect_err!(h, res, ref e if is_input_error(e), "reused id");
    assert_eq!(h.get(id).await, before, "{}: first job unchanged", h.case);
}

/// Jobs that fail validation are refused with an input error and nothing is stored.
pub async fn invalid_jobs_are_refused(h: Harness) {
    let mut empty_kind = job("x");
    empty_kind.kind = String::new();
    let self_dep = {
        let j = job("x");
        let id = j.id;
        j.depends_on([id])
    };
    let cases: Vec<(&str, NewJob)> = vec![
        ("empty kind", empty_kind),
        ("bad queue name", job("x").queue("no spaces allowed")),
        ("hash-tag queue name", job("x").queue("{q}")),
        ("zero attempts", job("x").max_attempts(0)),
        ("self dependency", self_dep),
        ("unique_for without key", {
            let mut j = job("x");
            j.unique_for = Some(Duration::from_secs(1));
            j
        }),
        ("malformed traceparent", {
            let mut j = job("x");
            j.trace = Some(crate::model::TraceContext {
                traceparent: "00-not-a-trace-01".into(),
                tracestate: None,
            });
            j
        }),
    ];
    for (what, new) in cases {
        let id = new.id;
        let res = h.try_enqueue(vec![new], BatchMode::Atomic).await;
        expect_err!(h, res, ref e if is_input_error(e), what);
        h.assert_absent(&[id], what).await;
    }
    let all = h
        .backend
        .job_list(crate::backend::ListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.jobs.is_empty(), "{}: nothing stored at all", h.case);
}
