//! The read-only SQL views (migration `views`) answer on a real file with the figures the
//! store holds.

use std::time::Duration;

use quern::backend::*;
use quern::model::ErrorKind;
use quern::{Backend, NewJob};
use quern_sqlite::SqliteBackend;
use rusqlite::{Connection, OpenFlags};

#[tokio::test]
async fn each_view_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let b = SqliteBackend::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mk = |kind: &str| {
        NewJob::json(kind, serde_json::json!({}))
            .unwrap()
            .queue("v")
    };
    b.job_enqueue(EnqueueParams {
        jobs: vec![mk("a"), mk("a"), mk("b")],
        mode: BatchMode::Atomic,
    })
    .await
    .unwrap();
    let claim = |limit| ClaimParams {
        worker_id: "w1".into(),
        queues: vec![QueueWeight::new("v", 1)],
        limit,
        lease: Duration::from_secs(30),
        more_urgent_than: None,
    };
    let c = b.job_claim(claim(2)).await.unwrap();
    let now = quern::Clock::now_ms(&quern::SystemClock);
    b.job_complete(CompleteParams {
        items: vec![Completion {
            token: c[0].token.clone(),
            result: None,
            result_ttl: None,
            started_at: Some(now),
        }],
    })
    .await
    .unwrap();
    b.job_fail(FailParams {
        items: vec![Failure {
            token: c[1].token.clone(),
            action: FailAction::Dead,
            error_kind: ErrorKind::Fatal,
            message: "boom".into(),
            started_at: Some(now),
        }],
    })
    .await
    .unwrap();
    b.worker_register(WorkerInfo {
        id: "w1".into(),
        hostname: "h".into(),
        pid: 7,
        queues: vec!["v".into()],
        capabilities: vec![],
        concurrency: 4,
        started_at: now,
        last_seen_at: now,
        running: 0,
        heartbeat_interval_ms: Some(2000),
    })
    .await
    .unwrap();

    // As someone with `sqlite3` would: a read-only connection beside the running store.
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (queue, queued, succeeded, dead): (String, i64, i64, i64) = conn
        .query_row(
            "SELECT queue, queued, succeeded, dead FROM quern_queue_status WHERE queue = 'v'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((queue.as_str(), queued, succeeded, dead), ("v", 1, 1, 1));

    let mut s = conn
        .prepare("SELECT kind, finished, succeeded, dead FROM quern_kind_performance ORDER BY kind")
        .unwrap();
    let rows: Vec<(String, i64, i64, i64)> = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let finished: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(finished, 2, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.2 + r.3).sum::<i64>(), 2, "{rows:?}");

    let (worker, pid, lost): (String, i64, bool) = conn
        .query_row(
            "SELECT worker, pid, lost FROM quern_worker_status",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((worker.as_str(), pid, lost), ("w1", 7, false));

    let (id, error): (String, String) = conn
        .query_row(
            "SELECT id, last_error FROM quern_recent_failures",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        id,
        c[1].job.id.to_string(),
        "the id reads as Quern prints it"
    );
    assert_eq!(error, "boom");

    // Read-only: a view cannot be written through.
    let rw = Connection::open(&path).unwrap();
    assert!(rw.execute("DELETE FROM quern_queue_status", []).is_err());
}
