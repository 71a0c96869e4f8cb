//! File maintenance on a real database: stats, checkpoints, `ANALYZE`, `VACUUM` and the
//! integrity check, alone and while a `Worker` and enqueues run against the same backend.

use std::sync::Arc;
use std::time::Duration;

use quern::backend::*;
use quern::{Backend, JobId, JobState, NewJob, Worker};
use quern_sqlite::{CheckpointMode, SCHEMA_VERSION, SqliteBackend, SqliteStats};

use crate::worker::WAIT;

async fn open(path: &std::path::Path) -> SqliteBackend {
    SqliteBackend::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// `n` jobs of kind `noop` with a payload of about `bytes` bytes each.
fn jobs(n: usize, bytes: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| {
            NewJob::json(
                "noop",
                serde_json::json!({"i": i, "pad": "x".repeat(bytes)}),
            )
            .unwrap()
        })
        .collect()
}

async fn enqueue(b: &SqliteBackend, jobs: Vec<NewJob>) -> Vec<JobId> {
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let res = b
        .job_enqueue(EnqueueParams {
            jobs,
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    ids
}

/// A worker running the `noop` jobs of [`jobs`] with the built-in `quern.noop` handler.
async fn noop_worker(b: &SqliteBackend, concurrency: usize) -> quern::WorkerHandle {
    let backend: Arc<dyn Backend> = Arc::new(b.clone());
    Worker::builder(backend)
        .concurrency(concurrency)
        .handler("noop", Arc::new(quern::executors::NoopExecutor))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Polls the stats until `pred` holds (bounded by [`WAIT`]).
async fn stats_until(b: &SqliteBackend, pred: impl Fn(&SqliteStats) -> bool) -> SqliteStats {
    let give_up = tokio::time::Instant::now() + WAIT;
    loop {
        let s = b.stats().await.unwrap();
        if pred(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "never reached: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stats_count_jobs_per_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("q.db")).await;
    let mut batch = jobs(3, 10);
    let first = batch[0].id;
    batch.push(
        NewJob::json("later", serde_json::json!({}))
            .unwrap()
            .delay(Duration::from_secs(3600)),
    );
    batch.push(
        NewJob::json("after", serde_json::json!({}))
            .unwrap()
            .depends_on([first]),
    );
    enqueue(&b, batch).await;
    let claimed = b
        .job_claim(ClaimParams {
            worker_id: "w1".into(),
            queues: vec![QueueWeight::new("default", 1)],
            limit: 2,
            lease: Duration::from_secs(30),
            more_urgent_than: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    let s = b.stats().await.unwrap();
    let counts: Vec<(JobState, u64)> = JobState::ALL
        .iter()
        .map(|st| (*st, s.jobs.get(*st)))
        .collect();
    assert_eq!(s.jobs.running, 2, "{counts:?}");
    assert_eq!(s.jobs.queued, 1, "{counts:?}");
    assert_eq!(s.jobs.scheduled, 1, "{counts:?}");
    assert_eq!(s.jobs.blocked, 1, "{counts:?}");
    assert_eq!(s.jobs.total(), 5);
    assert_eq!(s.schema_version, SCHEMA_VERSION);
    assert!(s.page_size >= 512 && s.page_count > 0, "{s:?}");
    assert!(s.file_bytes > 0 && s.wal_bytes > 0, "{s:?}");
    assert_eq!(s.free_bytes, s.free_pages * s.page_size);
}

#[tokio::test]
async fn truncate_checkpoint_empties_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("q.db")).await;
    enqueue(&b, jobs(200, 100)).await;
    assert!(b.stats().await.unwrap().wal_bytes > 0);

    let passive = b.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert!(!passive.busy && passive.log_frames > 0, "{passive:?}");
    let full = b.checkpoint(CheckpointMode::Full).await.unwrap();
    assert!(!full.busy, "{full:?}");
    assert_eq!(full.log_frames, full.checkpointed_frames);

    enqueue(&b, jobs(10, 100)).await;
    assert!(b.stats().await.unwrap().wal_bytes > 0);
    // A truncate that succeeded leaves an empty log, so SQLite reports no frames.
    let r = b.checkpoint(CheckpointMode::Truncate).await.unwrap();
    assert_eq!((r.busy, r.log_frames, r.checkpointed_frames), (false, 0, 0));
    let s = b.stats().await.unwrap();
    assert_eq!(s.wal_bytes, 0, "{s:?}");
    assert_eq!(s.jobs.queued, 210);
    // The next write starts the WAL again.
    enqueue(&b, jobs(1, 10)).await;
    assert!(b.stats().await.unwrap().wal_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_after_pruning_gives_the_free_pages_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("q.db")).await;
    for _ in 0..4 {
        enqueue(&b, jobs(500, 2000)).await;
    }
    let w = noop_worker(&b, 16).await;
    stats_until(&b, |s| s.jobs.succeeded == 2000).await;
    w.shutdown().await.unwrap();
    let pruned = b
        .job_prune(PruneParams {
            finished_before: i64::MAX,
            states: vec![JobState::Succeeded],
            limit: 10_000,
            dry_run: false,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pruned.jobs_deleted, 2000);
    b.checkpoint(CheckpointMode::Truncate).await.unwrap();
    let before = b.stats().await.unwrap();
    assert!(before.free_pages > 100, "{before:?}");

    let r = b.vacuum().await.unwrap();
    assert!(!r.busy, "{r:?}");
    let after = b.stats().await.unwrap();
    assert_eq!(after.free_pages, 0, "{after:?}");
    assert_eq!(after.wal_bytes, 0, "{after:?}");
    assert!(
        after.file_bytes < before.file_bytes / 4,
        "before {before:?}, after {after:?}"
    );
    assert_eq!(after.jobs.total(), 0);
    // Still a working store.
    enqueue(&b, jobs(3, 10)).await;
    assert_eq!(b.stats().await.unwrap().jobs.queued, 3);
    assert!(b.integrity_check().await.unwrap().is_empty());
}

#[tokio::test]
async fn integrity_reports_a_corrupted_copy() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("q.db")).await;
    enqueue(&b, jobs(2000, 200)).await;
    b.analyze().await.unwrap();
    assert_eq!(b.integrity_check().await.unwrap(), Vec::<String>::new());

    // With the WAL emptied, the main file holds everything: copy it and overwrite a page in
    // the middle (a page of the jobs table or one of its indexes) with garbage.
    b.checkpoint(CheckpointMode::Truncate).await.unwrap();
    let s = b.stats().await.unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join("q.db"), &copy).unwrap();
    let mut bytes = std::fs::read(&copy).unwrap();
    let page = (s.page_count / 2) as usize;
    let at = page * s.page_size as usize;
    for (i, byte) in bytes[at..at + s.page_size as usize].iter_mut().enumerate() {
        *byte = (i * 7 + 13) as u8;
    }
    std::fs::write(&copy, bytes).unwrap();

    let broken = open(&copy).await;
    let report = broken.integrity_check().await.unwrap();
    assert!(!report.is_empty(), "corruption of page {page} not found");
    assert!(report.iter().all(|l| !l.contains('\n')), "{report:?}");
    // The original is untouched.
    assert!(b.integrity_check().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_runs_beside_a_worker_and_enqueues() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("q.db")).await;
    let w = noop_worker(&b, 8).await;
    let producer = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..40 {
                ids.extend(enqueue(&b, jobs(25, 500)).await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        })
    };
    for mode in [
        CheckpointMode::Passive,
        CheckpointMode::Full,
        CheckpointMode::Truncate,
    ]
    .into_iter()
    .cycle()
    .take(6)
    {
        b.checkpoint(mode).await.unwrap();
        b.analyze().await.unwrap();
        b.stats().await.unwrap();
        assert!(b.integrity_check().await.unwrap().is_empty());
        b.vacuum().await.unwrap();
    }
    let ids = producer.await.unwrap();
    assert_eq!(ids.len(), 1000);
    stats_until(&b, |s| s.jobs.succeeded == 1000).await;
    w.shutdown().await.unwrap();
    let got = b.job_get_many(JobGetManyParams { ids }).await.unwrap();
    assert!(got.iter().all(|j| {
        j.as_ref()
            .is_some_and(|j| j.state == JobState::Succeeded && j.attempt == 1)
    }));
    assert_eq!(b.stats().await.unwrap().jobs.total(), 1000);
}

/// The supervisor's store upkeep (`quern::maintenance::StoreUpkeep`, which knows nothing of
/// SQLite) runs `ANALYZE` and passive checkpoints through `Backend::store_maintain`.
#[tokio::test]
async fn periodic_upkeep_analyzes_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let b = open(&path).await;
    enqueue(&b, jobs(200, 100)).await;
    let has_stats = || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    };
    assert!(!has_stats(), "no ANALYZE has run yet");
    let b: Arc<dyn Backend> = Arc::new(b);
    let r = b
        .store_maintain(StoreMaintainParams {
            analyze: false,
            checkpoint: true,
        })
        .await
        .unwrap();
    assert_eq!((r.analyzed, r.checkpointed), (false, true));
    let stop = tokio_util::sync::CancellationToken::new();
    let upkeep = quern::maintenance::StoreUpkeep::new(
        b.clone(),
        quern::maintenance::StoreUpkeepConfig {
            analyze_every: Some(Duration::from_millis(50)),
            checkpoint_every: Some(Duration::from_millis(20)),
        },
    );
    let task = tokio::spawn(upkeep.run(stop.clone()));
    let give_up = std::time::Instant::now() + WAIT;
    while !has_stats() {
        assert!(std::time::Instant::now() < give_up, "ANALYZE never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
}

/// The store checkpoints its WAL on its own thread: while batches keep coming, the `-wal`
/// file stays a small part of what was written (SQLite's automatic checkpoint is off on
/// the writer, so without the checkpointer it would hold every page written), and the
/// pages reach the main file without anyone asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let b = open(&path).await;
    let rounds = 30;
    for _ in 0..rounds {
        enqueue(&b, jobs(500, 400)).await;
        // Room for the checkpointer (every 50 ms) between batches.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let s = b.stats().await.unwrap();
    let written = s.page_count * s.page_size;
    assert!(
        written > 6_000_000,
        "the batches wrote enough to tell: {written} bytes"
    );
    assert!(
        s.wal_bytes < written / 3,
        "the WAL ({} bytes) stays well below what was written ({written} bytes)",
        s.wal_bytes
    );
    let s = stats_until(&b, |s| s.file_bytes >= written).await;
    assert!(s.file_bytes >= written, "the pages reached the main file");
}
