//! `job_prune_bytes`: retention by bytes. A store-wide budget for finished jobs: when the
//! finished jobs' bytes are over it, the oldest finished jobs (by `finished_at`) are deleted
//! until they are within it, the way `job_prune` deletes them.
//!
//! What counts: each finished job's stored payload, result and checkpoint, in bytes as
//! stored (after compression). On Redis the payload is stored in one blob with the job's
//! other fixed fields (kind, tags, meta, retry, trace context), so a job counts a few dozen
//! bytes more there. Ids, timestamps, error history, logs and index entries are not counted:
//! the store's file or memory is larger than the total. Each backend keeps the total as jobs
//! finish and leave, so checking the budget reads one number, not the jobs.

use serde::{Deserialize, Serialize};

/// `job_prune_bytes`: bring the finished jobs' bytes down to `max_bytes`, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneBytesParams {
    /// The budget: the bytes finished jobs may take (see the module docs for what counts).
    pub max_bytes: u64,
    /// Most jobs deleted by this call; the pruner calls again while calls come back full.
    pub limit: usize,
    /// Count only: the report says what the call would delete, and nothing changes.
    pub dry_run: bool,
}

/// What `job_prune_bytes` did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneBytesReport {
    /// The finished jobs' bytes before the call.
    pub finished_bytes: u64,
    pub jobs_deleted: u64,
    /// The bytes the deleted jobs counted.
    pub bytes_freed: u64,
}
