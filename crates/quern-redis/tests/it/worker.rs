//! What the library-level workflow tests shared with quern-sqlite (`workflow/`) expect from
//! `crate::worker`, on the machine's Redis: a fresh store per test (a random key prefix,
//! its keys deleted after the run), a fast worker builder, the wait bound and a concurrency
//! gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use quern::{Backend, Worker, WorkerBuilder};

use crate::common;

/// Long enough for any single test step on a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh Redis store (the directory is unused: the signature is the SQLite one's).
///
/// Its keys are deleted by a small shell process once this test binary has exited: a test's
/// backend can outlive the test's runtime, and the binary exits without waiting for
/// threads, so an in-process cleanup would lose the last tests' keys.
pub async fn open(_dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    let b = common::connect(Arc::new(quern::SystemClock))
        .await
        .unwrap_or_else(|| panic!("Redis is unreachable; these tests need it"));
    let url = common::redis_url();
    let url = url.split('?').next().unwrap_or("");
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         redis-cli -u '{url}' --scan --pattern '{prefix}:*' | xargs -r -n 1000 redis-cli -u '{url}' unlink > /dev/null",
        pid = std::process::id(),
        prefix = b.prefix()
    );
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    Arc::new(b)
}

/// A worker builder with settings that keep tests fast.
pub fn worker(backend: &Arc<dyn Backend>) -> WorkerBuilder {
    Worker::builder(backend.clone())
        .shutdown_grace(Duration::from_secs(5))
        .cancel_grace(Duration::from_millis(200))
}

/// Counts concurrent entries and remembers the maximum.
#[derive(Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    pub fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    pub fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}
