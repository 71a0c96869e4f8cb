//! Selecting dead-letter jobs: the one place the CLI (`quern dlq replay|delete`) and the
//! server (`POST /v1/dlq/replay|delete`) decide which jobs an operator's request names.

use crate::backend::{Backend, JobFilter, ListParams};
use crate::model::{Job, JobId, JobState};
use crate::{Error, Result};

/// Checks that every id names a dead job, all or nothing: an unknown id is
/// [`Error::JobNotFound`], a job in another state [`Error::InvalidTransition`] with `action`.
/// Duplicates are dropped (first occurrence kept), so the ids returned are each named once.
pub async fn require_dead(
    backend: &dyn Backend,
    ids: &[JobId],
    action: &'static str,
) -> Result<Vec<JobId>> {
    let mut unique: Vec<JobId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    let jobs = backend.job_get_many((&unique).into()).await?;
    for (id, job) in unique.iter().zip(&jobs) {
        match job {
            None => return Err(Error::JobNotFound(*id)),
            Some(j) if j.state != JobState::Dead => {
                return Err(Error::InvalidTransition {
                    id: *id,
                    from: j.state,
                    action,
                });
            }
            Some(_) => {}
        }
    }
    Ok(unique)
}

/// The dead jobs in `queue` and of `kind` (each optional) that `keep` accepts, newest first,
/// up to `limit`. The store narrows by queue and kind (its DLQ index); `keep` matches
/// whatever it cannot (error text, time of death).
pub async fn select_dead(
    backend: &dyn Backend,
    queue: Option<&str>,
    kind: Option<&str>,
    limit: usize,
    keep: impl Fn(&Job) -> bool,
) -> Result<Vec<JobId>> {
    let mut ids = Vec::new();
    let mut before = None;
    while ids.len() < limit {
        let page = backend
            .job_list(ListParams {
                filter: JobFilter {
                    queue: queue.map(str::to_owned),
                    state: Some(JobState::Dead),
                    kind: kind.map(str::to_owned),
                    workflow_id: None,
                },
                limit: 500,
                before,
            })
            .await?;
        for j in page.jobs.iter().filter(|j| keep(j)) {
            ids.push(j.id);
            if ids.len() >= limit {
                break;
            }
        }
        match page.next {
            Some(n) if !page.jobs.is_empty() => before = Some(n),
            _ => break,
        }
    }
    Ok(ids)
}
