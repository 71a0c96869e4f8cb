//! Injected time. Backends and services ask a [`Clock`] for "now" instead of reading the
//! system clock, so that tests can move time forward without sleeping (STYLE.md §9).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the unit of every timestamp Quern stores.
pub type Millis = i64;

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now_ms(&self) -> Millis;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        system_now_ms()
    }
}

/// Reads the system clock directly.
pub fn system_now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A clock that only moves when told to. The conformance suite uses it to make leases
/// expire and delayed jobs become due without sleeping.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A manual clock starting at `start_ms`.
    pub fn new(start_ms: Millis) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicI64::new(start_ms),
        })
    }

    /// A manual clock starting at a fixed, realistic instant (2026-01-01T00:00:00Z).
    pub fn at_fixed_start() -> Arc<Self> {
        Self::new(1_767_225_600_000)
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Sets the time.
    pub fn set(&self, to: Millis) {
        self.now.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// A clock driven by tokio's timer: wall time at creation plus the tokio time elapsed since.
/// Under `tokio::time::pause()` it advances exactly as tokio's auto-advancing timer does, so
/// worker tests that wait for a lease or a backoff finish instantly yet see consistent time.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base_ms: Millis,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// Starts now.
    pub fn new() -> Self {
        Self {
            base_ms: system_now_ms(),
            base: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> Millis {
        self.base_ms + self.base.elapsed().as_millis() as i64
    }
}
