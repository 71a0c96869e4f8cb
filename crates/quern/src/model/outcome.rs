use std::fmt;
use std::time::Duration;

/// How a handler says its attempt went wrong; the variant chooses the job's next state.
///
/// Any `std::error::Error` converts into [`TaskError::Retryable`] with `?`, so the default
/// is "try again according to the retry policy".
pub enum TaskError {
    /// Try again after the retry policy's delay; `dead` once attempts are used up.
    Retryable(String),
    /// Do not try again: straight to `dead` (the DLQ).
    Fatal(String),
    /// Not a failure: run again after this delay without counting an attempt.
    Snooze(Duration),
    /// Give up without failing: the job ends `cancelled`.
    Cancel(String),
    /// An upstream said "slow down": run again after `retry_after` without counting an
    /// attempt (as a snooze), and admit no job of the same group (or, for a job without a
    /// group, of the same kind) from this queue until then.
    RateLimited { retry_after: Duration },
}

impl TaskError {
    /// A retryable failure with this message.
    pub fn retryable(msg: impl fmt::Display) -> Self {
        TaskError::Retryable(msg.to_string())
    }
    /// A fatal failure with this message.
    pub fn fatal(msg: impl fmt::Display) -> Self {
        TaskError::Fatal(msg.to_string())
    }
    /// Run again after `d`, without counting an attempt.
    pub fn snooze(d: Duration) -> Self {
        TaskError::Snooze(d)
    }
    /// An upstream rate limit: snooze for `retry_after` and hold the job's group (or kind)
    /// in its queue until then ([`TaskError::RateLimited`]).
    pub fn rate_limited(retry_after: Duration) -> Self {
        TaskError::RateLimited { retry_after }
    }
    /// Cancel the job.
    pub fn cancel(reason: impl fmt::Display) -> Self {
        TaskError::Cancel(reason.to_string())
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::Retryable(e.to_string())
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Retryable(m) => write!(f, "retryable: {m}"),
            TaskError::Fatal(m) => write!(f, "fatal: {m}"),
            TaskError::Snooze(d) => write!(f, "snooze for {d:?}"),
            TaskError::Cancel(m) => write!(f, "cancel: {m}"),
            TaskError::RateLimited { retry_after } => {
                write!(f, "rate limited; retry after {retry_after:?}")
            }
        }
    }
}
