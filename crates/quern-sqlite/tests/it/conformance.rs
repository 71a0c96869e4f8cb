//! The shared backend conformance suite (`quern::testing`) against SQLite: every case gets a
//! fresh database file in its own temp dir (WAL, read pool and writer thread, as in
//! production), reading time from the case's manual clock. After each case that passed, the
//! maintained queue counts are compared with the rows (`SqliteBackend::queue_counts_check`),
//! so a write path that forgets to count a job it inserts, deletes or moves fails its case.

use std::sync::Arc;

use quern::{Backend, SharedClock};
use quern_sqlite::{SqliteBackend, SqliteOptions};

async fn make(clock: SharedClock) -> Arc<dyn Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("quern.db").display());
    let opts = SqliteOptions::new(&url).expect("url").clock(clock);
    let backend = SqliteBackend::open_with(opts).await.expect("open sqlite");
    quern::testing::hold(dir);
    let checked = backend.clone();
    quern::testing::after_case(move || async move {
        let diffs = checked
            .queue_counts_check()
            .await
            .expect("queue counts check");
        assert!(
            diffs.is_empty(),
            "queue_counts disagrees with the jobs after the case:\n{}",
            diffs.join("\n")
        );
    });
    Arc::new(backend)
}

quern::conformance_suite!(make);
