//! What the library-level workflow tests shared with quern-sqlite (`workflow/`) expect from
//! `crate::worker`, on the machine's Redis: a fresh store per test (a random key prefix,
//! its keys deleted when the test is done with it), a fast worker builder, the wait bound
//! and a concurrency gauge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quern::{Backend, Worker, WorkerBuilder};

use crate::common;

/// Long enough for any single test step on a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh Redis store (the directory is unused: the signature is the SQLite one's). Its
/// keys are deleted once the test has dropped every handle to it (a watcher thread).
pub async fn open(_dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    let b = common::connect(Arc::new(quern::SystemClock))
        .await
        .unwrap_or_else(|| panic!("Redis is unreachable; these tests need it"));
    let out: Arc<dyn Backend> = Arc::new(b.clone());
    let alive = Arc::downgrade(&out);
    std::thread::spawn(move || {
        while alive.strong_count() > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(common::Cleanup(b));
    });
    out
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
