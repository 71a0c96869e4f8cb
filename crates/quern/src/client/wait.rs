//! Waiting for a job to finish, by polling with a backoff.
//!
//! Polling keeps this backend-agnostic and cheap: one indexed read per poll, and the backoff
//! caps the rate at one read per `max_interval` for long jobs while short jobs are seen
//! within milliseconds.

use std::time::Duration;

use crate::backend::Backend;
use crate::model::{Job, JobId};
use crate::{Error, Result};

/// How [`Client::wait_with`](super::Client::wait_with) polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// The first pause between polls. Default 10 ms.
    pub initial_interval: Duration,
    /// The longest pause between polls; the pause doubles up to it. Default 1 s.
    pub max_interval: Duration,
}

impl WaitOptions {
    /// The default schedule with this timeout.
    pub fn new(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            initial_interval: Duration::from_millis(10),
            max_interval: Duration::from_secs(1),
        }
    }
}

pub(super) async fn wait_terminal(
    backend: &dyn Backend,
    id: JobId,
    opts: WaitOptions,
) -> Result<Job> {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut pause = opts.initial_interval.max(Duration::from_millis(1));
    loop {
        let job = backend
            .job_get(id.into())
            .await?
            .ok_or(Error::JobNotFound(id))?;
        if job.state.is_terminal() {
            return Ok(job);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Timeout(format!(
                "job {id} is still {} after {:?}",
                job.state, opts.timeout
            )));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(opts.max_interval.max(pause));
    }
}
