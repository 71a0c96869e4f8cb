//! Fencing: every call that changes a running job carries a lease token, and a stale one
//! gets `LeaseLost` and changes nothing, so a zombie worker cannot overwrite the attempt
//! that replaced it.

use super::*;
use crate::backend::{
    CompleteParams, Completion, FailAction, FailParams, Failure, HeartbeatItem, HeartbeatParams,
};
use crate::model::{ErrorKind, JobState, Progress};
use crate::{Error, LeaseToken};

/// Tries every token-carrying call with `token` and checks each is `LeaseLost` and leaves the
/// stored job exactly as it was.
async fn every_call_is_refused(h: &Harness, token: &LeaseToken, why: &str) {
    let id = token.job_id;
    let before = h.get(id).await;
    let lost = |e: &Error| matches!(e, Error::LeaseLost { job_id } if *job_id == id);
    let check = |what: &str, res: Result<(), Error>| match res {
        Err(ref e) if lost(e) => {}
        other => panic!(
            "{}: {why}: {what} with a stale token: expected LeaseLost, got {other:?}",
            h.case
        ),
    };

    check("heartbeat", h.heartbeat(token).await.map(|_| ()));
    let progress = HeartbeatItem {
        token: token.clone(),
        progress: Some(Progress {
            percent: 99.0,
            message: Some("zombie".into()),
        }),
        checkpoint: None,
    };
    check("progress", h.try_heartbeat(progress).await.map(|_| ()));
    let checkpoint = HeartbeatItem {
        token: token.clone(),
        progress: None,
        checkpoint: Some(json_payload(serde_json::json!({ "zombie": true }))),
    };
    check("checkpoint", h.try_heartbeat(checkpoint).await.map(|_| ()));
    let done = Completion {
        token: token.clone(),
        result: Some(json_payload(serde_json::json!("zombie result"))),
        result_ttl: None,
        started_at: None,
    };
    check("complete", h.try_complete(done).await);
    for action in [
        FailAction::Retry {
            retry_at: Some(h.now() + 1_000),
        },
        FailAction::Retry { retry_at: None },
        FailAction::Dead,
        FailAction::Snooze {
            run_at: h.now() + 1_000,
        },
        FailAction::Cancel,
    ] {
        let what = format!("fail {action:?}");
        check(&what, h.try_fail(token, action).await);
    }
    check("release", h.try_release(token).await);
    assert_eq!(
        h.get(id).await,
        before,
        "{}: {why}: stored job changed",
        h.case
    );
}

/// The zombie: attempt 1's lease expires, the job is rescued and claimed again; attempt 1's
/// token is refused everywhere while attempt 2's works.
pub async fn stale_token_changes_nothing(h: Harness) {
    let first = h.enqueue_and_claim(job("slow")).await;
    h.advance(LEASE + std::time::Duration::from_secs(1));
    let rescued = h.rescue().await;
    assert_eq!(rescued.requeued, vec![first.job.id], "{}: rescued", h.case);
    let second = h.claim_id("default", first.job.id).await;
    assert!(second.token.epoch > first.token.epoch, "{}", h.case);
    every_call_is_refused(&h, &first.token, "zombie after rescue").await;
    h.heartbeat(&second.token)
        .await
        .unwrap_or_else(|e| panic!("{}: current token heartbeat: {e}", h.case));
    h.complete(&second.token).await;
    h.assert_state(
        first.job.id,
        JobState::Succeeded,
        "current attempt completed",
    )
    .await;
}

/// A token with an epoch the job never had is refused.
pub async fn forged_epoch_is_refused(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    every_call_is_refused(&h, &with_epoch(&c.token, c.token.epoch + 1), "future epoch").await;
    if c.token.epoch > 0 {
        every_call_is_refused(&h, &with_epoch(&c.token, c.token.epoch - 1), "past epoch").await;
    }
    h.complete(&c.token).await;
}

/// Once a job finished, its token is dead: nothing can change the result.
pub async fn token_of_finished_job_is_refused(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    h.try_complete(Completion {
        token: c.token.clone(),
        result: Some(json_payload(serde_json::json!({ "rows": 3 }))),
        result_ttl: None,
        started_at: None,
    })
    .await
    .unwrap();
    every_call_is_refused(&h, &c.token, "after complete").await;
    let j = h.get(c.job.id).await;
    assert_eq!(
        j.result.unwrap().to_json_value().unwrap(),
        serde_json::json!({ "rows": 3 }),
        "{}: the real result stays",
        h.case
    );
    let d = h.enqueue_and_claim(job("y")).await;
    h.fail(&d.token, FailAction::Dead).await;
    every_call_is_refused(&h, &d.token, "after dead").await;
}

/// After a give-back the job is queued again; the old token (whose epoch is still the job's
/// latest) is refused because the job is no longer running under it.
pub async fn released_token_is_refused(h: Harness) {
    let c = h.enqueue_and_claim(job("x")).await;
    h.try_release(&c.token).await.unwrap();
    h.assert_state(c.job.id, JobState::Queued, "released").await;
    every_call_is_refused(&h, &c.token, "after release").await;
    h.claim_id("default", c.job.id).await;
}

/// In one batch call, a stale item gets `LeaseLost` and the others still succeed.
pub async fn stale_item_does_not_fail_the_batch(h: Harness) {
    h.enqueue_many("default", 2).await;
    let got = h.claim("default", 2).await;
    assert_eq!(got.len(), 2, "{}", h.case);
    let (a, b) = (&got[0], &got[1]);
    let stale = with_epoch(&a.token, a.token.epoch + 7);
    let before_a = h.get(a.job.id).await;

    let hb = h
        .backend
        .job_heartbeat(HeartbeatParams {
            items: [&stale, &b.token]
                .into_iter()
                .map(|t| HeartbeatItem {
                    token: t.clone(),
                    progress: None,
                    checkpoint: None,
                })
                .collect(),
            lease: LEASE,
        })
        .await
        .unwrap();
    assert!(
        matches!(hb[0], Err(Error::LeaseLost { .. })),
        "{}: {hb:?}",
        h.case
    );
    assert!(hb[1].is_ok(), "{}: {hb:?}", h.case);

    let fail = h
        .backend
        .job_fail(FailParams {
            items: vec![Failure {
                token: stale.clone(),
                action: FailAction::Dead,
                error_kind: ErrorKind::Fatal,
                message: "zombie".into(),
                started_at: None,
            }],
        })
        .await
        .unwrap();
    assert!(
        matches!(fail[0], Err(Error::LeaseLost { .. })),
        "{}: {fail:?}",
        h.case
    );

    let done = h
        .backend
        .job_complete(CompleteParams {
            items: [&b.token, &stale]
                .into_iter()
                .map(|t| Completion {
                    token: t.clone(),
                    result: None,
                    result_ttl: None,
                    started_at: None,
                })
                .collect(),
        })
        .await
        .unwrap();
    assert!(done[0].is_ok(), "{}: {done:?}", h.case);
    assert!(
        matches!(done[1], Err(Error::LeaseLost { .. })),
        "{}: {done:?}",
        h.case
    );
    h.assert_state(b.job.id, JobState::Succeeded, "good item")
        .await;
    assert_eq!(
        h.get(a.job.id).await,
        before_a,
        "{}: stale item's job unchanged",
        h.case
    );
}
