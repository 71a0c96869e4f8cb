//! What the library-level workflow tests shared with quern-sqlite (`workflow/`) expect from
//! `crate::worker`, on the machine's Redis: a fresh store per test (a random key prefix,
//! its keys deleted when the test binary exits), a fast worker builder, the wait bound and
//! a concurrency gauge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use quern::{Backend, Worker, WorkerBuilder};

use crate::common;

/// Long enough for any single test step on a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// Stores opened by this process, deleted at exit (a test's backend may outlive its
/// runtime, so its keys cannot be deleted when the test returns).
static OPENED: Mutex<Vec<common::Cleanup>> = Mutex::new(Vec::new());

extern "C" fn delete_opened() {
    if let Ok(mut v) = OPENED.lock() {
        v.clear();
    }
}

/// A fresh Redis store (the directory is unused: the signature is the SQLite one's).
pub async fn open(_dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(delete_opened);
    });
    let b = common::connect(Arc::new(quern::SystemClock))
        .await
        .unwrap_or_else(|| panic!("Redis is unreachable; these tests need it"));
    OPENED.lock().unwrap().push(common::Cleanup(b.clone()));
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
