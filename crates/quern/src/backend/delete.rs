//! `job_delete`: an operator deletes finished jobs by id (the DLQ's delete), the way the
//! pruner deletes them: the job, its logs, its dependency edges and its unique key.

use serde::{Deserialize, Serialize};

use crate::model::JobId;

/// `job_delete`: delete these jobs, all or nothing. Every id must name a job in a terminal
/// state (succeeded, dead, cancelled, skipped); an unknown id is
/// [`Error::JobNotFound`](crate::Error::JobNotFound), a live one
/// [`Error::InvalidTransition`](crate::Error::InvalidTransition) with action `delete`, and
/// then nothing is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDeleteParams {
    pub ids: Vec<JobId>,
    /// Check and count only: the report says how many would be deleted, nothing changes.
    pub dry_run: bool,
}

/// What `job_delete` did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDeleteReport {
    pub deleted: u64,
}
