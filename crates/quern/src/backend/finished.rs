//! `job_finished`: the stored timestamps of jobs that finished since a cutoff, the input of
//! [`crate::stats`].

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::model::{JobId, JobState};

/// `job_finished`: jobs in a terminal state whose `finished_at` is at or after `since`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishedParams {
    pub since: Millis,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
}

/// What the stats need of one finished job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedJob {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    /// Succeeded, dead, cancelled or skipped.
    pub state: JobState,
    /// Attempts made (1 for a job that ran once; 0 for one that never ran).
    pub attempt: u32,
    pub created_at: Millis,
    /// When the last attempt was due.
    pub run_at: Millis,
    /// When the last attempt's handler started; `None` for a job that never ran.
    pub started_at: Option<Millis>,
    pub finished_at: Millis,
}
