//! The shared backend conformance suite (`quern::testing`) against SQLite: every case gets a
//! fresh database file in its own temp dir (WAL, read pool and writer thread, as in
//! production), reading time from the case's manual clock.

use std::sync::Arc;

use quern::{Backend, SharedClock};
use quern_sqlite::{SqliteBackend, SqliteOptions};

async fn make(clock: SharedClock) -> Arc<dyn Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("quern.db").display());
    let opts = SqliteOptions::new(&url).expect("url").clock(clock);
    let backend = SqliteBackend::open_with(opts).await.expect("open sqlite");
    quern::testing::hold(dir);
    Arc::new(backend)
}

quern::conformance_suite!(make);
