//! The hot path of the job events on a real file: enqueue, claim, a failure with a retry,
//! the promotion, a second claim and the completion leave `jobs.events` empty (the timeline
//! is derived when read) and write one `job_events` row per call and queue.

use std::time::Duration;

use quern::backend::*;
use quern::model::ErrorKind;
use quern::{Backend, Clock, ManualClock, NewJob};
use quern_sqlite::{SqliteBackend, SqliteOptions};
use rusqlite::Connection;

#[tokio::test]
async fn hot_path_stores_no_timeline_lines_and_one_stream_row_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = ManualClock::new(1_795_000_000_000);
    let opts = SqliteOptions::new(&format!("sqlite://{}", path.display()))
        .unwrap()
        .clock(clock.clone());
    let b = SqliteBackend::open_with(opts).await.unwrap();
    let jobs: Vec<NewJob> = (0..3)
        .map(|n| {
            NewJob::json("hot", serde_json::json!({ "n": n }))
                .unwrap()
                .queue("hot")
        })
        .collect();
    let first = jobs[0].id;
    b.job_enqueue(EnqueueParams {
        jobs,
        mode: BatchMode::Atomic,
    })
    .await
    .unwrap();
    let claim = || ClaimParams {
        worker_id: "w".into(),
        queues: vec![QueueWeight::new("hot", 1)],
        limit: 3,
        lease: Duration::from_secs(30),
        more_urgent_than: None,
    };
    let c = b.job_claim(claim()).await.unwrap();
    assert_eq!(c.len(), 3);
    let f = c.iter().find(|c| c.job.id == first).unwrap();
    b.job_fail(FailParams {
        items: vec![Failure {
            token: f.token.clone(),
            action: FailAction::Retry {
                retry_at: Some(clock.now_ms() + 10),
            },
            error_kind: ErrorKind::Retryable,
            message: "again".into(),
            started_at: None,
        }],
    })
    .await
    .unwrap();
    let done = |t: &LeaseToken| Completion {
        token: t.clone(),
        result: None,
        result_ttl: None,
        started_at: None,
    };
    b.job_complete(CompleteParams {
        items: c
            .iter()
            .filter(|c| c.job.id != first)
            .map(|c| done(&c.token))
            .collect(),
    })
    .await
    .unwrap();
    clock.advance(Duration::from_millis(20));
    let again = b.job_claim(claim()).await.unwrap();
    assert_eq!(again.len(), 1);
    b.job_complete(CompleteParams {
        items: vec![done(&again[0].token)],
    })
    .await
    .unwrap();
    let db = Connection::open(&path).unwrap();
    let lines: i64 = db
        .query_row(
            "SELECT count(*) FROM jobs WHERE events IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lines, 0, "no timeline line on the hot path");
    // enqueue, claim, fail, complete, claim (with the promotion), complete.
    let rows: i64 = db
        .query_row("SELECT count(*) FROM job_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 6);
    let t = b.event_list(EventListParams { job: first }).await.unwrap();
    assert_eq!(t.len(), 6, "{t:?}");
}
