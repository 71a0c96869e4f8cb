//! The post-claim pipeline: what happens to a claimed job between the claim and its
//! handler, and after the handler, in one place. The Rust [`Worker`] drives it; anything
//! else that hands claimed jobs to handlers calls the same three steps, so it gets the same
//! semantics.
//!
//! - **Before** ([`Pipeline::before`]): a workflow task is prepared — its templates rendered
//!   from stored upstream results, its `when:` condition checked (a false one skips it), a
//!   `for_each` task fanned out into instances or, once they are done, fanned in, and the
//!   `max_parallel` gate applied. Either the handler runs (with the rendered payload) or the
//!   outcome is decided without one.
//! - **Terms** ([`Pipeline::terms`]): the retry policy that applies (the job's own, else the
//!   handler's, else the queue's default, else the worker's default) and how long a result
//!   is kept (the job's own, else the worker's).
//! - **After** ([`Pipeline::after`]): how the attempt ended ([`Attempt`]) and whether the
//!   worker was told to stop ([`Stop`]) become the backend call to make ([`Next`]): complete,
//!   fail with retry / dead / snooze / cancel / skip / spawn, give the lease back, or nothing
//!   (the lease is lost). The decision is a pure function, tested without a backend.
//!
//! [`Worker`]: crate::Worker

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, Completion, FailAction, Failure, LeaseToken};
use crate::clock::Millis;
use crate::model::{ErrorKind, Job, Payload, RetryPolicy, TaskError, format_duration};
use crate::workflow::{EnvSource, Prepared, Preparer};

/// How one attempt ended, before deciding what to tell the backend.
#[derive(Debug)]
pub enum Attempt {
    /// The handler returned `Ok`.
    Succeeded(Option<Payload>),
    /// The handler returned an error.
    Failed(TaskError),
    /// The handler ran past its time limit and was dropped.
    TimedOut(Duration),
    /// The handler panicked; the message is the panic payload.
    Panicked(String),
    /// No handler is registered for the job's kind.
    UnknownKind,
    /// The job was cancelled (lease lost or forced shutdown) and the handler did not
    /// return within the cancel grace, so it was dropped.
    Interrupted,
    /// A workflow job skipped when it came to run (its condition was false): the reason.
    Skipped(String),
    /// A workflow `for_each` job handed its work to these instances.
    Spawned {
        children: Vec<crate::model::NewJob>,
        checkpoint: Payload,
    },
}

impl Attempt {
    /// What the workflow preparer decided, for every outcome but "run the handler".
    fn from_prepared(p: Prepared) -> Option<Attempt> {
        match p {
            Prepared::Run(_) => None,
            Prepared::Complete(result) => Some(Attempt::Succeeded(result)),
            Prepared::Fail(e) => Some(Attempt::Failed(e)),
            Prepared::Skip(reason) => Some(Attempt::Skipped(reason)),
            Prepared::Spawn {
                children,
                checkpoint,
            } => Some(Attempt::Spawned {
                children,
                checkpoint,
            }),
        }
    }
}

/// What to tell the backend, before it is addressed to a lease.
#[derive(Debug)]
enum Decision {
    /// Nothing: the lease is gone (someone else owns the job now).
    Discard,
    /// Give the lease back without counting the attempt (shutdown).
    Release,
    Complete(Option<Payload>),
    Fail {
        action: FailAction,
        kind: ErrorKind,
        message: String,
    },
}

/// Why the job's context was cancelled, if it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Not cancelled (or only by its own timeout).
    No,
    /// The lease was lost: re-delivered, cancelled by an operator, or finished elsewhere.
    LeaseLost,
    /// The worker is shutting down past its grace period.
    Forced,
}

/// Maps an attempt to the backend call, given the policy that applies to it.
fn decide(
    attempt: Attempt,
    stop: Stop,
    policy: &RetryPolicy,
    attempt_no: u32,
    now: Millis,
) -> Decision {
    let retry = |kind, message| Decision::Fail {
        action: FailAction::Retry {
            retry_at: policy
                .delay(attempt_no)
                .map(|d| now.saturating_add(d.as_millis() as i64)),
        },
        kind,
        message,
    };
    match (stop, attempt) {
        (Stop::LeaseLost, _) => Decision::Discard,
        // Work that finished despite the shutdown is kept; anything else is not the job's
        // fault, so the attempt is given back rather than counted.
        (Stop::Forced, Attempt::Succeeded(r)) => Decision::Complete(r),
        (Stop::Forced, _) => Decision::Release,
        (Stop::No, Attempt::Succeeded(r)) => Decision::Complete(r),
        (Stop::No, Attempt::Failed(TaskError::Retryable(m))) => retry(ErrorKind::Retryable, m),
        (Stop::No, Attempt::Failed(TaskError::Fatal(m))) => Decision::Fail {
            action: FailAction::Dead,
            kind: ErrorKind::Fatal,
            message: m,
        },
        (Stop::No, Attempt::Failed(TaskError::Snooze(d))) => Decision::Fail {
            action: FailAction::Snooze {
                run_at: now.saturating_add(d.as_millis() as i64),
            },
            kind: ErrorKind::Retryable,
            message: format!("snoozed for {}", format_duration(d)),
        },
        (Stop::No, Attempt::Failed(TaskError::RateLimited { retry_after })) => Decision::Fail {
            action: FailAction::RateLimited {
                run_at: now.saturating_add(retry_after.as_millis() as i64),
            },
            kind: ErrorKind::Retryable,
            message: format!("rate limited for {}", format_duration(retry_after)),
        },
        (Stop::No, Attempt::Failed(TaskError::Cancel(m))) => Decision::Fail {
            action: FailAction::Cancel,
            kind: ErrorKind::Cancelled,
            message: m,
        },
        (Stop::No, Attempt::TimedOut(d)) => retry(
            ErrorKind::Timeout,
            format!("timed out after {}", format_duration(d)),
        ),
        (Stop::No, Attempt::Panicked(m)) => retry(ErrorKind::Panic, format!("panicked: {m}")),
        // Retried like Sidekiq does: a newer worker that knows the kind may pick it up, and
        // max_attempts bounds the cost.
        (Stop::No, Attempt::UnknownKind) => retry(
            ErrorKind::UnknownKind,
            "no handler registered for this kind on the worker that claimed it".into(),
        ),
        // Cancelled without a recorded reason: only `Context` itself does that, after a
        // `LeaseLost` answer to a progress or checkpoint call.
        (Stop::No, Attempt::Interrupted) => Decision::Discard,
        (Stop::No, Attempt::Skipped(reason)) => Decision::Fail {
            action: FailAction::Skip,
            kind: ErrorKind::Skipped,
            message: reason,
        },
        (
            Stop::No,
            Attempt::Spawned {
                children,
                checkpoint,
            },
        ) => Decision::Fail {
            message: format!("spawned {} instances", children.len()),
            action: FailAction::Spawn {
                children,
                checkpoint: Some(checkpoint),
            },
            kind: ErrorKind::Retryable,
        },
    }
}

/// What to tell the backend about an attempt, addressed to its lease.
#[derive(Debug)]
pub enum Next {
    /// Nothing: the lease is gone (someone else owns the job now).
    Discard,
    /// Give the lease back without counting the attempt (shutdown).
    Release(LeaseToken),
    /// `job_complete` with this item.
    Complete(Completion),
    /// `job_fail` with this item.
    Fail(Failure),
}

/// How one attempt ended, as the pipeline's [`Pipeline::after`] takes it.
#[derive(Debug)]
pub struct AttemptEnd {
    /// The lease the attempt ran under.
    pub token: LeaseToken,
    pub attempt: Attempt,
    pub stop: Stop,
    /// When the handler started (stored as `started_at`).
    pub started_at: Option<Millis>,
}

/// The terms an attempt runs under, fixed before its handler runs (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Terms {
    /// The retry policy that applies to this job.
    pub policy: RetryPolicy,
    /// How long a result is kept; `None` until the job is pruned.
    pub result_ttl: Option<Duration>,
}

/// The post-claim pipeline of one worker (see the module docs).
#[derive(Debug)]
pub struct Pipeline {
    preparer: Preparer,
    backend: Arc<dyn Backend>,
    default_retry: RetryPolicy,
    result_ttl: Option<Duration>,
    /// Each queue's default retry policy (`QueueSettings::retry`) and when it was read.
    queue_retry: Mutex<HashMap<String, (tokio::time::Instant, Option<RetryPolicy>)>>,
}

/// How long a queue's default retry policy read from the store is used before it is read
/// again (a change by `quern queues set` reaches running workers within this).
pub const QUEUE_RETRY_REFRESH: Duration = Duration::from_secs(5);

impl Pipeline {
    /// A pipeline over `backend`: `env` is what `${env.NAME}` may read in workflow
    /// templates; `default_retry` and `result_ttl` are the worker's defaults.
    pub fn new(
        backend: Arc<dyn Backend>,
        env: EnvSource,
        default_retry: RetryPolicy,
        result_ttl: Option<Duration>,
    ) -> Self {
        Pipeline {
            preparer: Preparer::new(backend.clone(), env),
            backend,
            default_retry,
            result_ttl,
            queue_retry: Mutex::new(HashMap::new()),
        }
    }

    /// Before the handler: `None` to run it (a workflow task's payload is replaced by its
    /// rendered parameters), or the attempt's outcome decided without a handler (a skip, a
    /// fan-out, a fan-in, a failed render).
    pub async fn before(&self, job: &mut Job) -> Option<Attempt> {
        if !Preparer::wants(job) {
            return None;
        }
        match self.preparer.prepare(job).await {
            Prepared::Run(payload) => {
                job.payload = payload;
                None
            }
            other => Attempt::from_prepared(other),
        }
    }

    /// The terms of this attempt: the job's own retry policy, else the handler's
    /// (`handler_policy`), else the queue's default (`QueueSettings::retry`, read from the
    /// store at most every [`QUEUE_RETRY_REFRESH`]), else the worker's default; the job's own
    /// result retention, else the worker's.
    pub async fn terms(&self, job: &Job, handler_policy: Option<RetryPolicy>) -> Terms {
        let policy = match job.retry.clone().or(handler_policy) {
            Some(p) => p,
            None => self
                .queue_retry(&job.queue)
                .await
                .unwrap_or_else(|| self.default_retry.clone()),
        };
        Terms {
            policy,
            result_ttl: job.result_ttl.or(self.result_ttl),
        }
    }

    /// The queue's default retry policy, from the cache or the store. A store without queue
    /// settings, or a failed read, gives none (the worker's default applies).
    async fn queue_retry(&self, queue: &str) -> Option<RetryPolicy> {
        let now = tokio::time::Instant::now();
        if let Some((at, p)) = self.lock_retry().get(queue)
            && now.duration_since(*at) < QUEUE_RETRY_REFRESH
        {
            return p.clone();
        }
        let p = match self.backend.queue_get(queue.into()).await {
            Ok(u) => u.settings.retry,
            Err(e) => {
                if !matches!(
                    e,
                    crate::Error::Unsupported(_) | crate::Error::QueueNotFound(_)
                ) {
                    tracing::debug!(queue, error = %e, "reading the queue's retry policy failed");
                }
                None
            }
        };
        self.lock_retry()
            .insert(queue.to_string(), (now, p.clone()));
        p
    }

    fn lock_retry(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (tokio::time::Instant, Option<RetryPolicy>)>>
    {
        self.queue_retry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After the handler (or the decision made instead of it): the backend call to make,
    /// at `now` (retry and snooze times count from it).
    pub fn after(&self, terms: &Terms, end: AttemptEnd, now: Millis) -> Next {
        let AttemptEnd {
            token,
            attempt,
            stop,
            started_at,
        } = end;
        match decide(attempt, stop, &terms.policy, token.attempt, now) {
            Decision::Discard => Next::Discard,
            Decision::Release => Next::Release(token),
            Decision::Complete(result) => Next::Complete(Completion {
                token,
                result,
                result_ttl: terms.result_ttl,
                started_at,
            }),
            Decision::Fail {
                action,
                kind,
                message,
            } => Next::Fail(Failure {
                token,
                action,
                error_kind: kind,
                message,
                started_at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000;

    fn fixed(ms: u64) -> RetryPolicy {
        RetryPolicy::Fixed {
            delay: Duration::from_millis(ms),
        }
    }

    fn fail_parts(n: Decision) -> (FailAction, ErrorKind, String) {
        match n {
            Decision::Fail {
                action,
                kind,
                message,
            } => (action, kind, message),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn outcomes_map_to_backend_actions() {
        let p = fixed(500);
        let d = |a| decide(a, Stop::No, &p, 3, NOW);
        assert!(matches!(
            d(Attempt::Succeeded(None)),
            Decision::Complete(None)
        ));
        let (a, k, m) = fail_parts(d(Attempt::Failed(TaskError::retryable("boom"))));
        assert_eq!(
            a,
            FailAction::Retry {
                retry_at: Some(NOW + 500)
            }
        );
        assert_eq!((k, m.as_str()), (ErrorKind::Retryable, "boom"));
        let (a, k, _) = fail_parts(d(Attempt::Failed(TaskError::fatal("bad input"))));
        assert_eq!((a, k), (FailAction::Dead, ErrorKind::Fatal));
        let (a, _, _) = fail_parts(d(Attempt::Failed(TaskError::snooze(Duration::from_secs(
            7,
        )))));
        assert_eq!(a, FailAction::Snooze { run_at: NOW + 7000 });
        let (a, _, _) = fail_parts(d(Attempt::Failed(TaskError::rate_limited(
            Duration::from_secs(3),
        ))));
        assert_eq!(a, FailAction::RateLimited { run_at: NOW + 3000 });
        let (a, k, _) = fail_parts(d(Attempt::Failed(TaskError::cancel("nope"))));
        assert_eq!((a, k), (FailAction::Cancel, ErrorKind::Cancelled));
        let (_, k, m) = fail_parts(d(Attempt::TimedOut(Duration::from_secs(2))));
        assert_eq!((k, m.as_str()), (ErrorKind::Timeout, "timed out after 2s"));
        let (_, k, m) = fail_parts(d(Attempt::Panicked("oops".into())));
        assert_eq!((k, m.as_str()), (ErrorKind::Panic, "panicked: oops"));
        let (a, k, _) = fail_parts(d(Attempt::UnknownKind));
        assert_eq!(k, ErrorKind::UnknownKind);
        assert!(matches!(a, FailAction::Retry { retry_at: Some(_) }));
    }

    #[test]
    fn a_policy_that_stops_retrying_means_dead() {
        let (a, _, _) = fail_parts(decide(
            Attempt::Failed(TaskError::retryable("x")),
            Stop::No,
            &RetryPolicy::None,
            1,
            NOW,
        ));
        assert_eq!(a, FailAction::Retry { retry_at: None });
    }

    #[test]
    fn lost_leases_discard_and_forced_stops_release() {
        let p = fixed(1);
        for a in [
            Attempt::Succeeded(None),
            Attempt::Failed(TaskError::fatal("x")),
            Attempt::Interrupted,
        ] {
            assert!(matches!(
                decide(a, Stop::LeaseLost, &p, 1, NOW),
                Decision::Discard
            ));
        }
        assert!(matches!(
            decide(Attempt::Succeeded(None), Stop::Forced, &p, 1, NOW),
            Decision::Complete(None)
        ));
        assert!(matches!(
            decide(Attempt::Interrupted, Stop::Forced, &p, 1, NOW),
            Decision::Release
        ));
        assert!(matches!(
            decide(
                Attempt::Failed(TaskError::retryable("x")),
                Stop::Forced,
                &p,
                1,
                NOW
            ),
            Decision::Release
        ));
    }

    #[tokio::test]
    async fn after_addresses_the_decision_to_the_lease_with_the_terms() {
        let terms = Terms {
            policy: fixed(250),
            result_ttl: Some(Duration::from_secs(60)),
        };
        let token = LeaseToken {
            job_id: crate::model::JobId::new(),
            epoch: 4,
            attempt: 2,
        };
        let end = |attempt, stop| AttemptEnd {
            token: token.clone(),
            attempt,
            stop,
            started_at: Some(NOW - 5),
        };
        let p = Pipeline::new(
            Arc::new(crate::test_util::mem::MemBackend::new(
                crate::ManualClock::new(0),
            )),
            EnvSource::default(),
            RetryPolicy::None,
            None,
        );
        match p.after(&terms, end(Attempt::Succeeded(None), Stop::No), NOW) {
            Next::Complete(c) => {
                assert_eq!(c.token, token);
                assert_eq!(c.result_ttl, Some(Duration::from_secs(60)));
                assert_eq!(c.started_at, Some(NOW - 5));
            }
            other => panic!("{other:?}"),
        }
        match p.after(
            &terms,
            end(Attempt::Failed(TaskError::retryable("x")), Stop::No),
            NOW,
        ) {
            Next::Fail(f) => {
                assert_eq!(
                    f.action,
                    FailAction::Retry {
                        retry_at: Some(NOW + 250)
                    }
                );
                assert_eq!(f.error_kind, ErrorKind::Retryable);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p.after(&terms, end(Attempt::Interrupted, Stop::Forced), NOW),
            Next::Release(t) if t == token
        ));
        let job = crate::Job::from_new(
            crate::model::NewJob::new("k", Payload::default()).retry(fixed(9)),
            crate::model::JobState::Queued,
            0,
        );
        assert_eq!(
            p.terms(&job, Some(fixed(1))).await.policy,
            fixed(9),
            "the job's own first"
        );
        let plain = crate::Job::from_new(
            crate::model::NewJob::new("k", Payload::default()),
            crate::model::JobState::Queued,
            0,
        );
        assert_eq!(
            p.terms(&plain, Some(fixed(1))).await.policy,
            fixed(1),
            "then the handler's"
        );
        assert_eq!(
            p.terms(&plain, None).await.policy,
            RetryPolicy::None,
            "then the default"
        );
    }
}
