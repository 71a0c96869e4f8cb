//! Workflow throughput on SQLite: tasks per second through a 1,000-task fan-out/fan-in of
//! no-op tasks, static (`root → 1,000 tasks → join`) and dynamic (`split → for_each over
//! 1,000 items → join`), compared with the same number of plain jobs
//! (`quern::testing::workflow_bench` has the measurement and its knobs).
//!
//! ```text
//! cargo run --release -p quern-sqlite --example workflow_bench -- [N] [CONCURRENCY] [ROUNDS]
//! ```
//!
//! Each measurement uses a fresh database file in a temporary directory.

use std::sync::Arc;

use quern::Backend;
use quern::testing::workflow_bench::{BenchStore, run};
use quern_sqlite::SqliteBackend;

#[tokio::main]
async fn main() {
    run(
        "SQLite",
        Box::new(|| {
            Box::pin(async {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let backend: Arc<dyn Backend> =
                    Arc::new(SqliteBackend::open(&url).await.expect("open sqlite"));
                BenchStore {
                    backend,
                    cleanup: Box::pin(async move { drop(dir) }),
                }
            })
        }),
    )
    .await;
}
