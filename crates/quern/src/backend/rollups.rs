//! `stats_minutes`: outcomes per queue and minute, counted by the store as they happen (in
//! the same transaction or script as the transition), so a restart loses nothing and a
//! pruned job still counts. The dashboard's throughput charts read them.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// A rollup row covers one minute of the store's clock: `[at, at + MINUTE_MS)`.
pub const MINUTE_MS: Millis = 60_000;
/// How long a store keeps rollup rows: eight days (the charts show the last one; the
/// margin covers a week-over-week look and clocks that disagree).
pub const ROLLUP_KEEP_MS: Millis = 8 * 24 * 60 * MINUTE_MS;

/// `stats_minutes`: the rows of minutes starting at or after `since` (rounded down to its
/// minute), of every queue or of `queue`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MinutesParams {
    pub since: Millis,
    /// Only this queue.
    pub queue: Option<String>,
}

/// One queue's outcomes in one minute. A minute with none has no row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// The minute's start, ms since the epoch (a multiple of [`MINUTE_MS`]).
    pub at: Millis,
    pub queue: String,
    /// Jobs completed (`job_complete`).
    pub succeeded: u64,
    /// Attempts that ended in an error: `job_fail` with a retry or dead action, and leases
    /// the rescuer took back (expired, or held by a lost worker). Snoozes, cancels, skips
    /// and spawns are not failures.
    pub failed: u64,
    /// Of those, the ones after which the job was dead.
    pub dead: u64,
}

impl MinuteCounts {
    /// The start of the minute `t` falls in.
    pub fn minute_of(t: Millis) -> Millis {
        t.div_euclid(MINUTE_MS) * MINUTE_MS
    }
}
