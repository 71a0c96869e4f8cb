//! Workflow throughput on Redis: tasks per second through a 1,000-task fan-out/fan-in of
//! no-op tasks, static (`root → 1,000 tasks → join`) and dynamic (`split → for_each over
//! 1,000 items → join`), compared with the same number of plain jobs. The same measurement
//! as `quern-sqlite/examples/workflow_bench.rs` (`quern::testing::workflow_bench` has it and
//! its knobs), so the two can be compared.
//!
//! ```text
//! QUERN_BENCH_REDIS=redis://127.0.0.1:6379 \
//!   cargo run --release -p quern-redis --example redis_workflow_bench -- [N] [CONCURRENCY] [ROUNDS]
//! ```
//!
//! Each measurement uses a fresh random key prefix, whose keys are deleted afterwards.

use std::sync::Arc;

use quern::Backend;
use quern::testing::workflow_bench::{BenchStore, run};
use quern_redis::RedisBackend;

#[tokio::main]
async fn main() {
    run(
        "Redis",
        Box::new(|| {
            Box::pin(async {
                let base = std::env::var("QUERN_BENCH_REDIS")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}prefix=wfbench{:016x}", fastrand::u64(..));
                let redis = RedisBackend::connect(&url, Arc::new(quern::SystemClock))
                    .await
                    .expect("connect to redis");
                let backend: Arc<dyn Backend> = Arc::new(redis.clone());
                BenchStore {
                    backend,
                    cleanup: Box::pin(async move {
                        redis.destroy_all_keys().await.expect("delete keys");
                    }),
                }
            })
        }),
    )
    .await;
}
