//! A quick end-to-end pass over the main operations on a real file database. The full
//! semantics are pinned by the conformance suite; this is the backend's own sanity check.

use std::sync::Arc;
use std::time::Duration;

use quern::backend::*;
use quern::{Backend, JobState, ManualClock, NewJob};
use quern_sqlite::{SqliteBackend, SqliteOptions};

pub async fn file_backend(dir: &tempfile::TempDir, clock: Arc<ManualClock>) -> SqliteBackend {
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    SqliteBackend::open_with(SqliteOptions::new(&url).unwrap().clock(clock))
        .await
        .unwrap()
}

fn claim(worker: &str, queues: &[&str], limit: usize) -> ClaimParams {
    ClaimParams {
        worker_id: worker.into(),
        queues: queues.iter().map(|q| QueueWeight::new(*q, 1)).collect(),
        limit,
        lease: Duration::from_secs(30),
        more_urgent_than: None,
    }
}

#[tokio::test]
async fn enqueue_claim_complete_unblocks_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_fixed_start();
    let b = file_backend(&dir, clock.clone()).await;
    let a = NewJob::json("a", serde_json::json!({"n": 1})).unwrap();
    let c = NewJob::json("c", serde_json::json!({}))
        .unwrap()
        .depends_on([a.id]);
    let (aid, cid) = (a.id, c.id);
    let res = b
        .job_enqueue(EnqueueParams {
            jobs: vec![a, c],
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
    assert_eq!(res[0].as_ref().unwrap().state, JobState::Queued);
    assert_eq!(res[1].as_ref().unwrap().state, JobState::Blocked);

    let got = b.job_claim(claim("w1", &["default"], 10)).await.unwrap();
    assert_eq!(got.len(), 1, "the blocked job must not be claimed");
    assert_eq!(got[0].job.id, aid);
    assert_eq!(got[0].token.attempt, 1);
    let result =
        quern::Payload::from_json_value(&serde_json::json!({"ok": true}), &Default::default())
            .unwrap();
    let r = b
        .job_complete(CompleteParams {
            items: vec![Completion {
                token: got[0].token.clone(),
                result: Some(result),
                result_ttl: None,
                started_at: None,
            }],
        })
        .await
        .unwrap();
    assert!(r[0].is_ok());
    assert_eq!(
        b.job_get(cid.into()).await.unwrap().unwrap().state,
        JobState::Queued
    );
    let done = b.job_get(aid.into()).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result.unwrap().to_json_value().unwrap()["ok"], true);

    // The token is now stale.
    let again = b
        .job_complete(CompleteParams {
            items: vec![Completion {
                token: got[0].token.clone(),
                result: None,
                result_ttl: None,
                started_at: None,
            }],
        })
        .await
        .unwrap();
    assert!(matches!(again[0], Err(quern::Error::LeaseLost { .. })));
    assert_eq!(b.integrity_check().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn expired_lease_is_rescued_and_dead_skips_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_fixed_start();
    let b = file_backend(&dir, clock.clone()).await;
    let a = NewJob::json("a", serde_json::json!({}))
        .unwrap()
        .max_attempts(1);
    let c = NewJob::json("c", serde_json::json!({}))
        .unwrap()
        .depends_on([a.id]);
    let d = NewJob::json("d", serde_json::json!({}))
        .unwrap()
        .depends_on([c.id]);
    let ids = [a.id, c.id, d.id];
    b.job_enqueue(EnqueueParams {
        jobs: vec![a, c, d],
        mode: BatchMode::Atomic,
    })
    .await
    .unwrap();
    let got = b.job_claim(claim("w1", &["default"], 10)).await.unwrap();
    assert_eq!(got.len(), 1);
    clock.advance(Duration::from_secs(31));
    let report = b
        .lease_rescue(RescueParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.dead, vec![ids[0]]);
    for id in &ids[1..] {
        assert_eq!(
            b.job_get((*id).into()).await.unwrap().unwrap().state,
            JobState::Skipped
        );
    }
    let hb = b
        .job_heartbeat(HeartbeatParams {
            items: vec![HeartbeatItem {
                token: got[0].token.clone(),
                progress: None,
                checkpoint: None,
            }],
            lease: Duration::from_secs(30),
        })
        .await
        .unwrap();
    assert!(matches!(hb[0], Err(quern::Error::LeaseLost { .. })));
}
